// client_pool: calls to one address through a few connections, kept healthy.
//
// Each connection has a keeper coroutine: it connects, pings every health_check_period, and
// after a failure (connect refused or timed out, a failed ping, a lost connection) waits a
// backoff (reconnect_backoff, doubling up to reconnect_backoff_max) and connects again. A
// connection is healthy again as soon as a reconnect succeeds. Calls go round robin over the
// healthy connections. While none is up, a call waits for one (at most the connect timeout,
// then it fails with `unreachable`; beyond max_waiting waiting calls it fails with
// `overloaded`) or, with wait_for_connection = false, fails with `unreachable` at once: nothing
// hangs, and nothing piles up without bound. A connect that fails in a way a retry will not
// cure (not is_retriable: a TLS certificate refused, a plaintext server...) fails the waiting
// calls with its own error at once, and so the calls made until a connect succeeds.
//
// The keeper's decisions (when to connect, back off, ping, drop) are session::pool_keeper_fsm;
// the coroutine here only carries them out. Calls waiting for a connection wait in a
// proto::waiter_queue, the intrusive queue the window's waiters use too.
//
// On several executors (a runtime::context_pool's, say), the pool is one sub-pool ("shard")
// per executor, each with its share of the connections, its keepers and its waiting calls,
// touched only on its executor. A call made on one of those executors' threads goes to that
// thread's shard, with no hop to another thread; a call from any other thread goes to the
// shards in turn. A shard with no connection up hands its calls to one that has one.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/proto/waiter_queue.hpp>
#include <occams_rpc/session/pool_keeper_fsm.hpp>
#include <occams_rpc/stream/call_response.hpp>
#include <occams_rpc/stream/client_stream.hpp>
#include <occams_rpc/stream/detail/forwarding_handler.hpp>
#include <occams_rpc/stream/detail/running_here.hpp>
#include <occams_rpc/stream/detail/shutdown_hook.hpp>
#include <occams_rpc/stream/detail/stored_handler.hpp>
#include <occams_rpc/stream/detail/ticker.hpp>
#include <occams_rpc/transport/address.hpp>
#include <occams_rpc/transport/socket_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace occams_rpc {

template <transport Transport = socket_transport>
class basic_client_pool {
  using stream = basic_client_stream<Transport>;
  using clock = std::chrono::steady_clock;

  struct member {
    stream s;
    session::pool_keeper_fsm fsm;
    asio::steady_timer timer;
    member(const asio::any_io_executor& ex, const pool_config& p) : fsm(p), timer(ex) {}
    bool up() const noexcept { return fsm.healthy() && s.is_open(); }
  };

  /// A call made while no connection was up. Allocated when it starts to wait; owned by the
  /// queue's holder (state) while queued, by whoever took it out afterwards.
  struct waiting_call : proto::waiter_node {
    action act{0u};
    std::span<const char> msg, blob;
    call_response buffers;
    detail::call_handler handler;
    clock::time_point deadline;
    asio::cancellation_slot slot;  // the caller's, if any: cancels the wait, then the call
  };
  using waiting_queue = proto::waiter_queue<waiting_call>;

  /// One shard: the connections on one executor, touched only there (but up_now).
  struct state final : detail::shutdown_hook, std::enable_shared_from_this<state> {
    asio::any_io_executor ex;
    detail::thread_check here{ex};  // whether the calling thread runs `ex` now
    Transport transport;
    address where;
    client_config ccfg;
    pool_config pcfg;
    logger log;
    std::vector<std::unique_ptr<member>> members;
    std::size_t next = 0;
    waiting_queue waiting;  // its calls are owned here: see take_waiting
    detail::ticker sweeper;  // fails waiting calls past their connect timeout
    bool closed = false;
    // The last connect's error when a retry cannot cure it (a TLS certificate refused...):
    // calls fail with it at once, not with `unreachable` after the connect timeout.
    std::error_code setup_error;
    // Connections up, as last counted on the executor (count_up): for healthy() from any
    // thread, and for routing calls away from a shard with none.
    std::atomic<std::size_t> up_now{0};

    state(asio::any_io_executor e, Transport t, address a, const client_config& c, const pool_config& p, logger l)
        : shutdown_hook(e), ex(e), transport(std::move(t)), where(std::move(a)), ccfg(c), pcfg(p), log(std::move(l)), sweeper(e) {}
    ~state() {
      // Normally empty (close() failed them all). Their slots are left alone: a caller's
      // signal may be gone by now.
      while (std::unique_ptr<waiting_call> w{waiting.pop_front()}) {
      }
    }

    /// Takes the first waiting call out, detached from its cancellation slot; null if none.
    std::unique_ptr<waiting_call> take_waiting() noexcept {
      std::unique_ptr<waiting_call> w(waiting.pop_front());
      if (w && w->slot.is_connected()) w->slot.clear();
      return w;
    }

    void on_context_shutdown() noexcept override {
      auto self = this->weak_from_this().lock();
      if (!self) return;
      closed = true;
      for (auto& m : members) m->fsm.close();
      while (take_waiting()) {  // destroyed unrun, like Asio's own operations
      }
    }
  };

 public:
  using executor_type = asio::any_io_executor;

  /// Starts connecting at once, through `transport` for every connection. Throws
  /// std::system_error(errc::invalid_config) for a bad config. The executor must be serial
  /// (see client_stream).
  basic_client_pool(executor_type ex, address where, const client_config& ccfg = {}, const pool_config& pcfg = {},
                    logger log = {}, Transport transport = {})
      : basic_client_pool(std::vector<executor_type>{std::move(ex)}, std::move(where), ccfg, pcfg, std::move(log),
                          std::move(transport)) {}

  /// The connections spread over `executors` (each serial: one thread, or a strand), as
  /// evenly as pcfg.connections allows: connection i on executors[i % N] (with fewer
  /// connections than executors, the last executors get none). Each executor's share is a
  /// shard of its own: its waiting calls (at most pcfg.max_waiting each), its reconnects.
  /// Give it a runtime::context_pool's executors() to use the pool's threads.
  basic_client_pool(std::vector<executor_type> executors, address where, const client_config& ccfg = {},
                    const pool_config& pcfg = {}, logger log = {}, Transport transport = {})
      : g_(std::make_shared<group>()) {
    validate(ccfg);
    validate(pcfg);
    if (executors.empty()) throw std::system_error(make_error_code(errc::invalid_config), "client_pool: no executor");
    std::size_t n = std::min(executors.size(), pcfg.connections);
    for (std::size_t k = 0; k < n; ++k) {
      pool_config share = pcfg;
      share.connections = pcfg.connections / n + (k < pcfg.connections % n ? 1 : 0);
      auto st = std::make_shared<state>(executors[k], transport, where, ccfg, share, log);
      for (std::size_t i = 0; i < share.connections; ++i) st->members.push_back(std::make_unique<member>(st->ex, share));
      g_->shards.push_back(std::move(st));
    }
    g_->where = std::move(where);
    for (auto& st : g_->shards) asio::dispatch(st->ex, [st] { start_keepers(st); });
  }
  basic_client_pool(const basic_client_pool&) = delete;
  basic_client_pool& operator=(const basic_client_pool&) = delete;
  /// close(): calls in flight still complete.
  ~basic_client_pool() { close(); }

  /// As client_stream::async_call, on one of the pool's healthy connections. Completion
  /// signature: void(std::error_code, call_response); errc::unreachable when no connection
  /// came up in time, errc::overloaded past max_waiting, errc::closed after close().
  /// Cancellation: terminal, partial and total are honoured, while the call waits for a
  /// connection and once it is sent (errc::cancelled). Executor: the handler runs on its
  /// associated executor, else the executor of the shard that made the call. Thread safety:
  /// may be called from any thread; on a thread running one of the pool's executors the call
  /// uses that executor's connections (no thread hop) while any is up, else it is queued to
  /// the next shard in turn.
  template <class Token = asio::deferred_t>
  auto async_call(action act, std::span<const char> msg, std::span<const char> blob = {}, call_response buffers = {},
                  Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code, call_response)>(
        [g = g_](auto handler, action act, std::span<const char> msg, std::span<const char> blob,
                 call_response buffers) {
          const std::shared_ptr<state>& st = route(*g);
          if (st->here()) return start(st, act, msg, blob, std::move(buffers), std::move(handler));
          asio::dispatch(st->ex, [st, act, msg, blob, buffers = std::move(buffers), h = std::move(handler)]() mutable {
            start(st, act, msg, blob, std::move(buffers), std::move(h));
          });
        },
        token, act, msg, blob, std::move(buffers));
  }

  /// Stops reconnecting and health checks, fails waiting calls with errc::closed, and closes
  /// every connection gracefully (calls in flight complete). Does not wait; see async_close.
  /// Thread safety: any thread, any number of times (each shard closes on its executor).
  void close() {
    for (auto& st : g_->shards) asio::dispatch(st->ex, [st] { shut(st); });
  }

  /// close(), then completes once every connection is closed. Completion signature:
  /// void(std::error_code). Cancellation: not supported (the close goes on; the token's slot
  /// is left alone). Executor: the handler runs on its associated executor, else the first
  /// shard's. Thread safety: may be called from any thread.
  template <class Token = asio::deferred_t>
  auto async_close(Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [g = g_](auto handler) {
          auto work = [g]() -> asio::awaitable<void> {
            for (auto& st : g->shards) co_await asio::co_spawn(st->ex, close_shard(st), asio::deferred);
          };
          asio::co_spawn(g->shards.front()->ex, std::move(work),
                         detail::forward_to(detail::without_cancellation(std::move(handler)),
                                            detail::unpack_coroutine_result{errc::internal}));
        },
        token);
  }

  /// Connections up now, a snapshot: each shard counts its own on its executor when a
  /// connection comes up, is dropped or closes. healthy() is true when there is at least one.
  /// Thread safety: any thread.
  std::size_t healthy_connections() const noexcept {
    std::size_t n = 0;
    for (auto& st : g_->shards) n += st->up_now.load(std::memory_order_relaxed);
    return n;
  }
  bool healthy() const noexcept { return healthy_connections() > 0; }
  const address& where() const noexcept { return g_->where; }
  /// The first shard's executor (the pool's only one when given one).
  executor_type get_executor() const { return g_->shards.front()->ex; }
  /// How many executors the connections are spread over.
  std::size_t shard_count() const noexcept { return g_->shards.size(); }

 private:
  static constexpr auto tok = asio::as_tuple(asio::deferred);

  /// The shards, fixed once made; what any thread may read.
  struct group {
    std::vector<std::shared_ptr<state>> shards;
    std::atomic<std::size_t> turn{0};  // calls from other threads go round
    address where;
  };

  /// The shard a call goes to: the calling thread's own, else the next in turn; one with a
  /// connection up in preference (the first found from there), else that one anyway (the call
  /// waits there for a connection).
  static const std::shared_ptr<state>& route(group& g) {
    std::size_t n = g.shards.size();
    if (n == 1) return g.shards.front();
    std::size_t k = n;
    for (std::size_t i = 0; i < n; ++i)
      if (g.shards[i]->here()) {
        k = i;
        break;
      }
    if (k == n) k = g.turn.fetch_add(1, std::memory_order_relaxed) % n;
    for (std::size_t i = 0; i < n; ++i) {
      auto& st = g.shards[(k + i) % n];
      if (st->up_now.load(std::memory_order_relaxed) > 0) return st;
    }
    return g.shards[k];
  }

  /// Recounts the shard's connections up (on its executor).
  static void count_up(state& st) {
    st.up_now.store(static_cast<std::size_t>(std::count_if(st.members.begin(), st.members.end(),
                                                           [](auto& m) { return m->up(); })),
                    std::memory_order_relaxed);
  }

  static asio::awaitable<void> close_shard(std::shared_ptr<state> st) {
    shut(st);
    for (auto& m : st->members) co_await m->s.async_close(asio::as_tuple(asio::deferred));
  }

  /// Spawned as function objects, not as awaitable<void> + detached: GCC 12 at -O3 places the
  /// frame of that shared co_spawn instantiation, once inlined here, in a section the linker
  /// may discard while another object still refers to it (a link error in Release builds).
  static void start_keepers(const std::shared_ptr<state>& st) {
    for (auto& m : st->members) asio::co_spawn(st->ex, [st, m = m.get()] { return keep(st, m); }, asio::detached);
    asio::co_spawn(
        st->ex,
        [st] {
          return st->sweeper.run(std::min<clock::duration>(st->ccfg.timeout_tick, st->ccfg.connect_timeout),
                                 [s = st.get()](clock::time_point now) {
                                   fail_overdue(*s, now);
                                   return !s->closed;
                                 });
        },
        asio::detached);
  }

  static stream* pick(const std::shared_ptr<state>& st) {
    std::size_t n = st->members.size();
    for (std::size_t i = 0; i < n; ++i) {
      auto& m = *st->members[(st->next + i) % n];
      if (m.up()) {
        st->next = (st->next + i + 1) % n;
        return &m.s;
      }
    }
    return nullptr;
  }

  template <class Handler>
  static void start(const std::shared_ptr<state>& st, action act, std::span<const char> msg,
                    std::span<const char> blob, call_response buffers, Handler&& handler) {
    if (!st->closed) {
      if (stream* s = pick(st)) return s->async_call(act, msg, blob, std::move(buffers), std::forward<Handler>(handler));
    }
    auto slot = asio::get_associated_cancellation_slot(handler);
    detail::call_handler h;
    h.template emplace<detail::complete_with_response>(std::forward<Handler>(handler), st->ex);
    std::error_code why = st->closed || !st->setup_error ? std::error_code{} : st->setup_error;
    if (!why) why = session::admit_waiting_call(st->pcfg, st->closed, st->waiting.size());
    if (why) {
      h.post(why, &buffers);
      return;
    }
    auto w = std::make_unique<waiting_call>();
    w->act = act;
    w->msg = msg;
    w->blob = blob;
    w->buffers = std::move(buffers);
    w->handler = std::move(h);
    w->deadline = clock::now() + st->ccfg.connect_timeout;
    w->slot = slot;
    st->waiting.push_back(*w);
    if (slot.is_connected()) slot.template emplace<waiting_cancel>(st.get(), w.get());
    w.release();  // owned by the state while queued
  }

  /// Cancelling a call that waits for a connection takes it out and completes it.
  struct waiting_cancel {
    state* st;
    waiting_call* w;
    waiting_cancel(state* s, waiting_call* c) : st(s), w(c) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none || !st->waiting.remove(*w)) return;
      std::unique_ptr<waiting_call> owned(w);  // owned->slot is not cleared: it is being invoked
      owned->handler.post(make_error_code(errc::cancelled), &owned->buffers);
    }
  };

  /// Sends the waiting calls on the connections that are up.
  static void flush_waiting(const std::shared_ptr<state>& st) {
    while (!st->waiting.empty()) {
      stream* s = pick(st);
      if (!s) return;
      std::unique_ptr<waiting_call> w = st->take_waiting();
      // The caller's cancellation slot goes with the call, which it can still cancel. The
      // stored handler refers to st->ex: the state lives until it has run.
      s->async_call(w->act, w->msg, w->blob, std::move(w->buffers),
                    asio::bind_cancellation_slot(w->slot, [st, h = std::move(w->handler)](std::error_code ec, call_response r) mutable {
                      h.dispatch(ec, &r);
                    }));
    }
  }

  /// Fails the waiting calls whose connect timeout has passed (once a tick).
  static void fail_overdue(state& st, clock::time_point now) {
    while (!st.waiting.empty() && st.waiting.front()->deadline <= now) {
      std::unique_ptr<waiting_call> w = st.take_waiting();
      w->handler.post(make_error_code(errc::unreachable), &w->buffers);
    }
  }

  /// A connect failed in a way a retry will not cure: the waiting calls and the calls made
  /// until a connect succeeds fail with its error (failover_pool does not retry it).
  static void fail_waiting_with(const std::shared_ptr<state>& st, std::error_code ec) {
    if (st->setup_error != ec)
      st->log.warn("pool: connect to {} failed: {}; calls fail with this until a connect succeeds",
                   st->where.to_string(), ec.message());
    st->setup_error = ec;
    while (std::unique_ptr<waiting_call> w = st->take_waiting()) w->handler.post(ec, &w->buffers);
  }

  /// One connection's keeper: carries out what its pool_keeper_fsm decides.
  static asio::awaitable<void> keep(std::shared_ptr<state> st, member* m) {
    session::pool_keeper_fsm& fsm = m->fsm;
    session::keeper_action next = fsm.start(clock::now());
    bool connected_before = false;  // a later connect is a reconnect (call_observer::on_event)
    for (;;) {
      switch (next.step) {
        case session::keeper_step::connect: {
          auto [ec, s] = co_await stream::async_connect(st->transport, st->ex, st->where, st->ccfg, st->log, tok);
          auto now = clock::now();
          if (ec) {
            if (!is_retriable(ec) && ec != errc::cancelled && !st->closed) fail_waiting_with(st, ec);
            next = fsm.on_connect_failed(now);
            if (next.step == session::keeper_step::wait)
              st->log.debug("pool: connect to {} failed: {}; retrying in {} ms", st->where.to_string(), ec.message(),
                            std::chrono::duration_cast<std::chrono::milliseconds>(next.until - now).count());
            break;
          }
          next = fsm.on_connected(now);
          if (next.step == session::keeper_step::done) {  // closed while connecting
            s.close();
            co_return;
          }
          m->s = std::move(s);
          if (std::exchange(connected_before, true) && st->ccfg.observer)
            st->ccfg.observer->on_event(call_side::client, observer_event::reconnect);
          count_up(*st);
          // A connection lost between health checks leaves the count at once.
          m->s.async_wait_closed([w = std::weak_ptr<state>(st)](std::error_code) {
            if (auto alive = w.lock()) count_up(*alive);
          });
          st->setup_error = {};
          st->log.debug("pool: connected to {}", st->where.to_string());
          flush_waiting(st);
          break;
        }
        case session::keeper_step::wait: {
          m->timer.expires_at(next.until);
          co_await m->timer.async_wait(tok);
          // A connection that closed by itself while up is noticed here, at the latest when
          // its next ping is due; calls skip it at once (up() reads is_open()).
          if (fsm.healthy() && !m->s.is_open())
            next = fsm.on_connection_lost(clock::now());
          else
            next = fsm.on_timer(clock::now());
          count_up(*st);
          break;
        }
        case session::keeper_step::ping: {
          auto [pec] = co_await m->s.async_ping(tok);
          next = pec ? fsm.on_ping_failed(clock::now()) : fsm.on_ping_ok(clock::now());
          if (next.step == session::keeper_step::drop)
            st->log.info("pool: health check of {} failed: {}", st->where.to_string(), pec.message());
          break;
        }
        case session::keeper_step::drop:
          m->s.abort(make_error_code(errc::io_err));  // calls still on it fail, retriable
          next = fsm.on_dropped(clock::now());
          count_up(*st);
          break;
        case session::keeper_step::done:
          co_return;
      }
    }
  }

  static void shut(const std::shared_ptr<state>& st) {
    if (st->closed) return;
    st->closed = true;
    st->sweeper.stop();
    for (auto& m : st->members) {
      m->fsm.close();
      m->timer.cancel();
      m->s.close();
    }
    count_up(*st);
    while (std::unique_ptr<waiting_call> w = st->take_waiting())
      w->handler.post(make_error_code(errc::closed), &w->buffers);
  }

  std::shared_ptr<group> g_;
};

using client_pool = basic_client_pool<>;

}  // namespace occams_rpc
