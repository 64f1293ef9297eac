// failover_pool: calls to a service served at several addresses, with failover.
//
// One client_pool per address. Each request goes to a healthy address, in turn (round robin)
// or the first healthy one in the list (primary/backup). A retriable failure (unreachable,
// io_err, timeout) is retried on the next address, up to retry_limit more attempts; any other
// error, a user error included, is returned as it is. Retrying means a request may run more
// than once (at-least-once): retry only what is safe to repeat, or set retry_limit to 0.
// update_addresses() changes the set at run time; calls in flight on a removed address finish
// there (its pool closes gracefully) or are retried elsewhere. With every address down, a
// call fails with `unreachable` within about (retry_limit + 1) connect timeouts at most.
//
// The choices (which address, retry or not, when to stop) are session::failover_fsm; each
// call's coroutine here only makes the attempts it names.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/session/failover_fsm.hpp>
#include <occams_rpc/stream/call_response.hpp>
#include <occams_rpc/stream/client_pool.hpp>
#include <occams_rpc/stream/detail/forwarding_handler.hpp>
#include <occams_rpc/transport/address.hpp>
#include <occams_rpc/transport/socket_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <tuple>
#include <vector>

namespace occams_rpc {

template <transport Transport = socket_transport>
class basic_failover_pool {
  using pool = basic_client_pool<Transport>;

  struct state {
    asio::any_io_executor ex;
    Transport transport;
    client_config ccfg;
    failover_config fcfg;
    logger log;
    std::vector<std::shared_ptr<pool>> pools;  // in the order given
    std::size_t turn = 0;                       // round robin: one step per request
    bool closed = false;
  };

 public:
  using executor_type = asio::any_io_executor;

  /// Starts connecting to every address, through `transport` (every pool gets a copy).
  /// Throws std::system_error(errc::invalid_config) for a bad config. The executor must be
  /// serial (see client_stream).
  basic_failover_pool(executor_type ex, const std::vector<address>& addresses, const client_config& ccfg = {},
                      const failover_config& fcfg = {}, logger log = {}, Transport transport = {})
      : st_(std::make_shared<state>(state{ex, std::move(transport), (validate(ccfg), ccfg), (validate(fcfg), fcfg),
                                          std::move(log), {}})) {
    for (auto& a : addresses) st_->pools.push_back(make_pool(*st_, a));
  }
  basic_failover_pool(const basic_failover_pool&) = delete;
  basic_failover_pool& operator=(const basic_failover_pool&) = delete;
  ~basic_failover_pool() { close(); }

  /// As client_stream::async_call, with failover. The msg and blob must stay valid until
  /// completion (a retry sends them again). Completion signature: void(std::error_code,
  /// call_response). Cancellation: terminal, partial and total are honoured: the attempt in
  /// flight is cancelled and no further attempt is made (errc::cancelled). Executor: the
  /// handler runs on its associated executor, else the pool's. Thread safety: may be called
  /// from any thread; the attempts run on the pool's executor.
  template <class Token = asio::deferred_t>
  auto async_call(action act, std::span<const char> msg, std::span<const char> blob = {}, call_response buffers = {},
                  Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code, call_response)>(
        [st = st_](auto handler, action act, std::span<const char> msg, std::span<const char> blob,
                   call_response buffers) {
          // The completion is the user's handler to Asio: co_spawn connects its cancellation
          // slot to the attempts and completes it on its associated executor.
          asio::co_spawn(st->ex, attempts(st, act, msg, blob, std::move(buffers)),
                         detail::forward_to(std::move(handler), detail::unpack_coroutine_result{errc::internal}));
        },
        token, act, msg, blob, std::move(buffers));
  }

  /// Replaces the set of addresses: new ones get a pool, removed ones' pools close gracefully.
  void update_addresses(std::vector<address> addresses) {
    asio::dispatch(st_->ex, [st = st_, addresses = std::move(addresses)] {
      if (st->closed) return;
      std::vector<std::shared_ptr<pool>> next;
      for (auto& a : addresses) {
        auto same = [&](auto& p) { return p->where() == a; };
        auto it = std::find_if(st->pools.begin(), st->pools.end(), same);
        next.push_back(it != st->pools.end() ? *it : make_pool(*st, a));
      }
      for (auto& p : st->pools)
        if (std::find(next.begin(), next.end(), p) == next.end()) p->close();
      st->pools = std::move(next);
    });
  }

  /// Closes every pool (calls in flight complete); later calls fail with errc::closed.
  void close() {
    asio::dispatch(st_->ex, [st = st_] {
      if (st->closed) return;
      st->closed = true;
      for (auto& p : st->pools) p->close();
    });
  }

  /// close(), then completes once every pool is closed. Completion signature:
  /// void(std::error_code). Cancellation: not supported (the close goes on; the token's slot
  /// is left alone). Executor: the handler runs on its associated executor, else the pool's.
  /// Thread safety: may be called from any thread.
  template <class Token = asio::deferred_t>
  auto async_close(Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [st = st_](auto handler) {
          auto work = [st]() -> asio::awaitable<void> {
            st->closed = true;
            auto pools = st->pools;
            for (auto& p : pools) co_await p->async_close(tok);
          };
          asio::co_spawn(st->ex, std::move(work),
                         detail::forward_to(detail::without_cancellation(std::move(handler)),
                                            detail::unpack_coroutine_result{errc::internal}));
        },
        token);
  }

  /// The addresses with at least one healthy connection (read on the executor).
  std::vector<address> healthy_addresses() const {
    std::vector<address> out;
    for (auto& p : st_->pools)
      if (p->healthy()) out.push_back(p->where());
    return out;
  }
  executor_type get_executor() const { return st_->ex; }

 private:
  static constexpr auto tok = asio::as_tuple(asio::deferred);

  static std::shared_ptr<pool> make_pool(state& st, const address& a) {
    return std::make_shared<pool>(st.ex, a, st.ccfg, st.fcfg.pool, st.log, st.transport);
  }

  /// The addresses as the failover_fsm sees them now, into `out` (reused across attempts).
  /// A pool is told apart by its address in memory: unique while it lives (the attempt in
  /// flight holds its pool). A new pool allocated where a removed one was can make one call
  /// take it for tried, and skip it once: harmless, and as before the FSM.
  static std::span<const session::failover_candidate> candidates(const state& st,
                                                                 std::vector<session::failover_candidate>& out) {
    out.clear();
    for (auto& p : st.pools) out.push_back({reinterpret_cast<std::uintptr_t>(p.get()), p->healthy()});
    return out;
  }

  static asio::awaitable<std::tuple<std::error_code, call_response>> attempts(std::shared_ptr<state> st, action act,
                                                                             std::span<const char> msg,
                                                                             std::span<const char> blob,
                                                                             call_response buffers) {
    // co_spawn passes on terminal cancellation only; honour every type, as a client_stream call
    // does. A cancelled attempt completes with errc::cancelled, which is never retried.
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    co_await asio::this_coro::throw_if_cancelled(false);
    // The caller's buffers stay out of the attempts: `msg` may point into them (a typed stub
    // encodes there), and an attempt's answer (an error string) would overwrite what a retry
    // must send again. Each attempt gets fresh buffers; the caller's go back on success.
    call_response callers = std::move(buffers);
    session::failover_fsm fsm(st->fcfg, st->turn++);
    std::vector<session::failover_candidate> seen;
    session::failover_action next = fsm.start(candidates(*st, seen), st->closed);
    while (next.step == session::failover_step::attempt) {
      std::shared_ptr<pool> p = st->pools[next.index];
      auto [ec, r] = co_await p->async_call(act, msg, blob, call_response{}, tok);
      asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
      next = fsm.on_result(ec, candidates(*st, seen), st->closed, cs.cancelled() != asio::cancellation_type::none);
      if (next.step == session::failover_step::complete) co_return std::tuple{ec, std::move(r)};
      if (next.step == session::failover_step::attempt)
        st->log.debug("failover: {} on {}; trying another address", ec.message(), p->where().to_string());
    }
    callers.msg.clear();
    callers.blob.clear();
    co_return std::tuple{next.ec, std::move(callers)};
  }

  std::shared_ptr<state> st_;
};

using failover_pool = basic_failover_pool<>;

}  // namespace occams_rpc
