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
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <occams_rpc/stream/detail/running_here.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <tuple>
#include <vector>

namespace occams_rpc {

template <transport Transport = socket_transport>
class basic_failover_pool {
  using pool = basic_client_pool<Transport>;

  /// The failover state on one executor, touched only there.
  struct state {
    asio::any_io_executor ex;
    detail::thread_check here{ex};
    failover_config fcfg;  // copies: the attempts may outlive the pool object
    logger log;
    std::vector<std::shared_ptr<pool>> pools;  // in the order given
    std::uint64_t generation = 0;               // of `pools`: a late update_addresses is ignored
    std::size_t turn = 0;                       // round robin: one step per request
    bool closed = false;
    state(asio::any_io_executor e, const failover_config& f, const logger& l) : ex(std::move(e)), fcfg(f), log(l) {}
  };

  /// What every executor shares: the configuration (fixed), and the set of pools under a lock
  /// (changed by update_addresses and close, from any thread).
  struct group {
    std::vector<asio::any_io_executor> executors;
    Transport transport;
    client_config ccfg;
    failover_config fcfg;
    logger log;
    std::vector<std::shared_ptr<state>> shards;  // one per executor, fixed once made
    std::atomic<std::size_t> turn{0};           // calls from other threads go round
    std::mutex m;
    std::vector<std::shared_ptr<pool>> pools;  // guarded by m
    std::uint64_t generation = 0;              // guarded by m
    bool closed = false;                       // guarded by m
    group(std::vector<asio::any_io_executor> e, Transport t, const client_config& c, const failover_config& f,
          logger l)
        : executors(std::move(e)), transport(std::move(t)), ccfg(c), fcfg(f), log(std::move(l)) {}
  };

 public:
  using executor_type = asio::any_io_executor;

  /// Starts connecting to every address, through `transport` (every pool gets a copy).
  /// Throws std::system_error(errc::invalid_config) for a bad config. The executor must be
  /// serial (see client_stream).
  basic_failover_pool(executor_type ex, const std::vector<address>& addresses, const client_config& ccfg = {},
                      const failover_config& fcfg = {}, logger log = {}, Transport transport = {})
      : basic_failover_pool(std::vector<executor_type>{std::move(ex)}, addresses, ccfg, fcfg, std::move(log),
                            std::move(transport)) {}

  /// Each address's connections spread over `executors` (each serial), as a client_pool
  /// given them spreads them; fcfg.pool.connections per address in all.
  basic_failover_pool(std::vector<executor_type> executors, const std::vector<address>& addresses,
                      const client_config& ccfg = {}, const failover_config& fcfg = {}, logger log = {},
                      Transport transport = {})
      : g_(std::make_shared<group>(std::move(executors), std::move(transport), (validate(ccfg), ccfg),
                                   (validate(fcfg), fcfg), std::move(log))) {
    if (g_->executors.empty())
      throw std::system_error(make_error_code(errc::invalid_config), "failover_pool: no executor");
    for (auto& a : addresses) g_->pools.push_back(make_pool(*g_, a));
    for (auto& ex : g_->executors) {
      auto st = std::make_shared<state>(ex, g_->fcfg, g_->log);
      st->pools = g_->pools;
      g_->shards.push_back(std::move(st));
    }
  }
  basic_failover_pool(const basic_failover_pool&) = delete;
  basic_failover_pool& operator=(const basic_failover_pool&) = delete;
  ~basic_failover_pool() { close(); }

  /// As client_stream::async_call, with failover. The msg and blob must stay valid until
  /// completion (a retry sends them again). Completion signature: void(std::error_code,
  /// call_response). Cancellation: terminal, partial and total are honoured: the attempt in
  /// flight is cancelled and no further attempt is made (errc::cancelled). Executor: the
  /// handler runs on its associated executor, else the executor the attempts ran on. Thread
  /// safety: may be called from any thread; on a thread running one of the pool's executors
  /// the attempts run there, else on the next executor in turn.
  template <class Token = asio::deferred_t>
  auto async_call(action act, std::span<const char> msg, std::span<const char> blob = {}, call_response buffers = {},
                  Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code, call_response)>(
        [g = g_](auto handler, action act, std::span<const char> msg, std::span<const char> blob,
                 call_response buffers) {
          const std::shared_ptr<state>& st = route(*g);
          // The completion is the user's handler to Asio: co_spawn connects its cancellation
          // slot to the attempts and completes it on its associated executor.
          asio::co_spawn(st->ex, attempts(st, act, msg, blob, std::move(buffers)),
                         detail::forward_to(std::move(handler), detail::unpack_coroutine_result{errc::internal}));
        },
        token, act, msg, blob, std::move(buffers));
  }

  /// Replaces the set of addresses: new ones get a pool, removed ones' pools close gracefully
  /// once no executor can start a call on them any more. Thread safety: any thread; of two
  /// concurrent updates, the one that takes the pool's lock last wins everywhere.
  void update_addresses(std::vector<address> addresses) {
    std::lock_guard lock(g_->m);
    if (g_->closed) return;
    std::vector<std::shared_ptr<pool>> next;
    for (auto& a : addresses) {
      auto same = [&](auto& p) { return p->where() == a; };
      auto it = std::find_if(g_->pools.begin(), g_->pools.end(), same);
      next.push_back(it != g_->pools.end() ? *it : make_pool(*g_, a));
    }
    struct retiring {
      std::atomic<std::size_t> left;
      std::vector<std::shared_ptr<pool>> pools;
    };
    auto removed = std::make_shared<retiring>();
    removed->left = g_->shards.size();
    for (auto& p : g_->pools)
      if (std::find(next.begin(), next.end(), p) == next.end()) removed->pools.push_back(p);
    g_->pools = next;
    std::uint64_t gen = ++g_->generation;
    // Posted, not dispatched: nothing runs inline under the lock.
    for (auto& st : g_->shards)
      asio::post(st->ex, [st, next, gen, removed] {
        if (!st->closed && gen > st->generation) {
          st->pools = next;
          st->generation = gen;
        }
        if (removed->left.fetch_sub(1, std::memory_order_acq_rel) == 1)
          for (auto& p : removed->pools) p->close();
      });
  }

  /// Closes every pool (calls in flight complete); later calls fail with errc::closed.
  /// Thread safety: any thread, any number of times.
  void close() { shut(*g_); }

  /// close(), then completes once every pool is closed. Completion signature:
  /// void(std::error_code). Cancellation: not supported (the close goes on; the token's slot
  /// is left alone). Executor: the handler runs on its associated executor, else the first
  /// executor's. Thread safety: may be called from any thread.
  template <class Token = asio::deferred_t>
  auto async_close(Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [g = g_](auto handler) {
          auto work = [g]() -> asio::awaitable<void> {
            auto pools = shut(*g);
            for (auto& p : pools) co_await p->async_close(tok);
          };
          asio::co_spawn(g->shards.front()->ex, std::move(work),
                         detail::forward_to(detail::without_cancellation(std::move(handler)),
                                            detail::unpack_coroutine_result{errc::internal}));
        },
        token);
  }

  /// The addresses with at least one healthy connection (a snapshot). Thread safety: any thread.
  std::vector<address> healthy_addresses() const {
    std::vector<address> out;
    std::lock_guard lock(g_->m);
    for (auto& p : g_->pools)
      if (p->healthy()) out.push_back(p->where());
    return out;
  }
  /// The first executor given.
  executor_type get_executor() const { return g_->shards.front()->ex; }

 private:
  static constexpr auto tok = asio::as_tuple(asio::deferred);

  static std::shared_ptr<pool> make_pool(group& g, const address& a) {
    return std::make_shared<pool>(g.executors, a, g.ccfg, g.fcfg.pool, g.log, g.transport);
  }

  /// The calling thread's executor's state, else the next in turn.
  static const std::shared_ptr<state>& route(group& g) {
    std::size_t n = g.shards.size();
    if (n == 1) return g.shards.front();
    for (auto& st : g.shards)
      if (st->here()) return st;
    return g.shards[g.turn.fetch_add(1, std::memory_order_relaxed) % n];
  }

  /// Marks every executor's state closed and closes every pool (once); the pools it closed.
  static std::vector<std::shared_ptr<pool>> shut(group& g) {
    std::vector<std::shared_ptr<pool>> pools;
    bool first = false;
    {
      std::lock_guard lock(g.m);
      pools = g.pools;
      if (!g.closed) {
        first = g.closed = true;
        for (auto& st : g.shards) asio::post(st->ex, [st] { st->closed = true; });
      }
    }
    if (first)
      for (auto& p : pools) p->close();  // outside the lock: a close may run code inline
    return pools;
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
      // An address removed meanwhile closes its pool once every executor has let it go; a
      // call that reached it only then (queued to another executor's connection) is retried.
      if (ec == errc::closed && !st->closed && std::find(st->pools.begin(), st->pools.end(), p) == st->pools.end())
        ec = make_error_code(errc::unreachable);
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

  std::shared_ptr<group> g_;
};

using failover_pool = basic_failover_pool<>;

}  // namespace occams_rpc
