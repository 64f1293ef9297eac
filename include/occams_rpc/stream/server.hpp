// server: listens on any number of TCP and Unix addresses and hands each request to a
// user-defined dispatch. Per connection, one reader and one writer coroutine. A transport
// object (socket_transport by default) listens, accepts, runs each connection's start step
// in a coroutine of its own, and closes.
//
// A dispatch is callable as either
//   void(server_request)                   - runs inline in the reader: for cheap handlers, or
//                                            ones that hand the request elsewhere;
//   asio::awaitable<void>(server_request)  - runs as its own coroutine: a slow call never
//                                            delays the others on its connection.
// Pings are answered by the server itself and never reach the dispatch.
//
// Against hostile or broken peers (docs/stream.md, "Limits and hostile peers"): accept backs
// off on resource errors (EMFILE, ENFILE, ENOBUFS, ENOMEM: 5 ms doubling to 1 s, as Go's
// net/http does, and at once when a connection closes); large request frames draw on one
// server-wide memory budget; each connection has idle, read and write timeouts. A connection
// is listed in O(1) and unlisted in O(1), so closing many at once costs each one the same.
//
// Threads (docs/threads.md): a server given several executors (a runtime::context_pool's)
// hands accepted connections to them in turn; each connection then lives wholly on its executor
// (its reads, writes, ticks, dispatch and answers), and the server keeps one list of
// connections per executor, touched only there (detail/server_shard.hpp). The counters, the
// stop flags and the memory budget are shared and thread-safe.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/stream/detail/exception_text.hpp>
#include <occams_rpc/session/memory_budget.hpp>
#include <occams_rpc/stream/detail/server_connection.hpp>
#include <occams_rpc/stream/detail/server_shard.hpp>
#include <occams_rpc/stream/detail/shutdown_hook.hpp>
#include <occams_rpc/stream/detail/stored_handler.hpp>
#include <occams_rpc/stream/server_request.hpp>
#include <occams_rpc/transport/socket_transport.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <mutex>

#include <chrono>
#include <exception>
#include <list>
#include <memory>
#include <string_view>
#include <vector>

namespace occams_rpc {

template <class Dispatch, transport Transport = socket_transport>
class basic_server {
  using connection = detail::server_connection<Dispatch, Transport>;
  using listener = typename Transport::listener_type;
  using socket_type = typename Transport::socket_type;

  /// A listener, where its accept loop runs (the server's executor), and the timer of its
  /// accept back-off. Touched on that executor only (closing it is dispatched there).
  struct listening {
    std::unique_ptr<listener> l;
    asio::any_io_executor ex;
    asio::steady_timer retry;
    std::atomic<bool> backing_off{false};
    listening(std::unique_ptr<listener> lst, const asio::any_io_executor& e) : l(std::move(lst)), ex(e), retry(e) {}
    void close() {
      l->close();
      retry.cancel();
    }
  };
  using shard = detail::server_shard<connection>;  // the connections on one executor

  struct state;

  /// Watches the server's own context. Handlers queued on the other executors may hold the
  /// state past that context's destruction, so when it shuts down, whatever the state keeps on
  /// it goes first: the listeners and their timers, and the shutdown waiters' handlers (unrun:
  /// they may own the coroutine that owns the server); then this watch, which nothing may
  /// refer to once the context's registry is gone.
  struct context_watch final : detail::shutdown_hook {
    state* st;
    explicit context_watch(state* s) : shutdown_hook(s->ex), st(s) {}
    void on_context_shutdown() noexcept override {
      auto self = st->weak_from_this().lock();
      if (!self) return;  // being destroyed: its destructor does it all
      st->stopping = st->stopped = true;
      auto waiters = std::move(st->stop_waiters);
      std::list<listening> listeners;
      {
        std::lock_guard lock(st->listeners_mutex);
        listeners.splice(listeners.end(), st->listeners);
      }
      auto me = std::move(st->watch);  // destroyed first, while the registry lives
    }
  };

  struct state final : std::enable_shared_from_this<state> {
    asio::any_io_executor ex;  // the server's own: round-robin accept loops, shutdown, its waiters
    Transport transport;
    std::shared_ptr<Dispatch> dispatch;
    server_config cfg;
    logger log;
    std::shared_ptr<session::memory_budget> budget;
    std::vector<std::unique_ptr<shard>> shards;  // fixed at construction
    std::mutex listeners_mutex;                  // guards the list, not the listeners
    std::list<listening> listeners;              // never erased while ex runs: entries outlive their loops
    std::atomic<std::size_t> backing_off{0};     // listeners backing off from EMFILE and the like
    std::atomic<std::size_t> next_shard{0};
    std::atomic<bool> stopping{false};  // graceful shutdown under way
    std::atomic<bool> stopped{false};   // closed at once
    std::atomic<std::size_t> accepted{0};
    std::atomic<std::size_t> open{0};  // connections started and not closed yet
    // On ex only:
    std::vector<std::unique_ptr<detail::stored_handler<std::error_code>>> stop_waiters;
    std::unique_ptr<context_watch> watch;  // null once ex's context shut down

    state(std::vector<asio::any_io_executor> exs, Dispatch d, const server_config& c, logger l, Transport t)
        : ex(exs.at(0)),
          transport(std::move(t)),
          dispatch(std::make_shared<Dispatch>(std::move(d))),
          cfg(c),
          log(std::move(l)),
          budget(std::make_shared<session::memory_budget>(c.max_buffered_bytes)) {
      for (auto& e : exs) shards.push_back(std::make_unique<shard>(std::move(e)));
      watch = std::make_unique<context_watch>(this);
    }
  };

 public:
  using executor_type = asio::any_io_executor;

  /// Throws std::system_error(errc::invalid_config) for a bad config. The executor must not
  /// run handlers concurrently (an io_context run by one thread, or a strand). `transport`
  /// listens, accepts, starts and closes every connection (each connection keeps a copy).
  basic_server(executor_type ex, Dispatch dispatch, const server_config& cfg = {}, logger log = {},
               Transport transport = {})
      : basic_server(std::vector<executor_type>{std::move(ex)}, std::move(dispatch), cfg, std::move(log),
                     std::move(transport)) {}
  /// A server on several executors (runtime::context_pool::executors()): accepted connections
  /// are handed to them in turn, and each lives wholly on its own. The first executor is
  /// the server's own. Each must be serial (one thread, or a strand). The dispatch is then
  /// called from every executor's thread at once: it must be safe to call concurrently.
  /// Throws std::system_error(errc::invalid_config) for a bad config or no executor.
  basic_server(std::vector<executor_type> executors, Dispatch dispatch, const server_config& cfg = {},
               logger log = {}, Transport transport = {})
      : st_(std::make_shared<state>((validate(cfg, executors), std::move(executors)), std::move(dispatch), cfg,
                                    std::move(log), std::move(transport))) {}
  basic_server(const basic_server&) = delete;
  basic_server& operator=(const basic_server&) = delete;
  /// Closes the listeners and every connection at once (use async_shutdown to be graceful).
  ~basic_server() {
    asio::dispatch(st_->ex, [st = st_] { hard_stop(st); });
  }

  /// Listens on `where` ("host:port", "[v6]:port", "/path" or "unix:/path") with `options`
  /// (backlog, SO_REUSEPORT) and starts accepting. Returns the address listened on (with the
  /// real port for port 0). Throws std::system_error if the address is invalid or cannot be
  /// bound. Any thread.
  ///
  /// On several executors, the one listener (on the server's executor) hands accepted
  /// connections to the executors in turn: an exact balance of long-lived connections, which
  /// one SO_REUSEPORT listener per executor (the kernel hashing each connection's addresses to
  /// one) would not give (docs/threads.md, "Which accept").
  address listen(std::string_view where, const listen_options& options = {}) {
    return listen(parse_address(where), options);
  }
  address listen(const address& where, const listen_options& options = {}) {
    std::unique_ptr<listener> l;
    try {
      l = std::make_unique<listener>(st_->transport.listen(st_->ex, where, options));
    } catch (const boost::system::system_error& e) {
      throw std::system_error(e.code(), "listen on " + where.to_string());
    }
    address local = l->local_address();
    listening* entry;
    {
      std::lock_guard lock(st_->listeners_mutex);
      entry = &st_->listeners.emplace_back(std::move(l), st_->ex);
    }
    asio::co_spawn(st_->ex, accept_loop(st_, entry), log_failure{st_->log, "accept loop"});
    st_->log.info("listening on {}", local.to_string());
    return local;
  }

  /// Graceful shutdown: stops accepting, stops reading, answers the requests already read
  /// (within cfg.close_wait), then closes every connection.
  /// Completion signature: void(std::error_code), once every connection is closed.
  template <class Token = asio::deferred_t>
  auto async_shutdown(Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [st = st_](auto handler) {
          asio::dispatch(st->ex, [st, h = std::move(handler)]() mutable {
            auto w = std::make_unique<detail::stored_handler<std::error_code>>();
            w->emplace(std::move(h), st->ex);
            st->stop_waiters.push_back(std::move(w));
            begin_shutdown(st);
          });
        },
        token);
  }

  /// Connections open now, counting those still in their start step (a TLS handshake),
  /// which hold a socket too (a snapshot; any thread).
  std::size_t connection_count() const noexcept { return st_->open.load(std::memory_order_relaxed); }
  std::size_t accepted_count() const noexcept { return st_->accepted.load(std::memory_order_relaxed); }
  /// Bytes of the request memory budget (server_config::max_buffered_bytes) in use now.
  std::size_t buffered_bytes() const noexcept { return st_->budget->used(); }
  /// The server's own executor (the first one).
  executor_type get_executor() const { return st_->ex; }
  Dispatch& dispatcher() noexcept { return *st_->dispatch; }

 private:
  /// Logs an exception that ended one of the server's own coroutines.
  struct log_failure {
    logger log;
    const char* which;
    void operator()(std::exception_ptr e) const {
      if (e) log.error("server {} failed: {}", which, detail::exception_text(e));
    }
  };

  /// Errors that say the process or the system is out of something: retrying at once would
  /// spin (the pending connection stays in the backlog), so accept backs off.
  static bool resource_exhausted(std::error_code ec) noexcept {
    return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
           ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory;
  }

  static constexpr std::chrono::milliseconds accept_backoff_first{5};
  static constexpr std::chrono::milliseconds accept_backoff_max{1000};
  static constexpr std::chrono::seconds accept_log_interval{1};

  static void validate(const server_config& cfg, const std::vector<executor_type>& executors) {
    occams_rpc::validate(cfg);
    if (executors.empty()) throw std::system_error(make_error_code(errc::invalid_config), "a server needs an executor");
  }

  /// Where the next accepted connection lives: the executors in turn.
  static const executor_type& next_executor(state& st) noexcept {
    return st.shards[st.next_shard.fetch_add(1, std::memory_order_relaxed) % st.shards.size()]->ex;
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> st, listening* entry) {
    using clock = std::chrono::steady_clock;
    std::chrono::milliseconds delay{0};
    std::size_t failures = 0, unreported = 0;  // in the current run of resource errors
    clock::time_point last_report{};
    for (;;) {
      executor_type conn_ex = next_executor(*st);
      socket_type s(conn_ex);  // the executor chosen for this connection
      std::error_code ec = co_await entry->l->accept(s);
      if (st->stopping) co_return;
      if (!ec) {
        try {
          // The start step (a TLS handshake) runs on its own, on the connection's executor: a
          // slow one delays no accept. Without one (TCP, Unix, memory), no coroutine or timer.
          if constexpr (has_start_step<Transport>())
            asio::co_spawn(conn_ex, start_then_run(st, std::move(s)), log_failure{st->log, "connection start"});
          else
            asio::dispatch(conn_ex, [st, s = std::move(s)]() mutable { run_unstarted(st, std::move(s)); });
          st->accepted.fetch_add(1, std::memory_order_relaxed);
        } catch (const std::bad_alloc&) {
          ec = std::make_error_code(std::errc::not_enough_memory);  // the socket closed with `s`
        }
      }
      if (!ec) {
        if (failures > 0) {
          st->log.warn("accepting on {} again after {} failed accepts", entry->l->local_address().to_string(), failures);
          failures = unreported = 0;
          delay = std::chrono::milliseconds{0};
        }
        continue;
      }
      if (ec == std::errc::operation_canceled) co_return;
      if (!resource_exhausted(ec)) {
        st->log.warn("accept failed: {}", ec.message());
        if (ec == std::errc::bad_file_descriptor) co_return;
        continue;  // e.g. a connection reset before it was accepted: the next one may be fine
      }
      // Out of fds or memory: wait 5 ms, doubling to 1 s, or until a connection closes; log
      // once per interval, with a count.
      delay = delay.count() == 0 ? accept_backoff_first : std::min(delay * 2, accept_backoff_max);
      ++failures;
      ++unreported;
      auto now = clock::now();
      if (now - last_report >= accept_log_interval) {
        st->log.error("accept on {} failed {} times since the last report: {}; retrying in {} ms (up to {} ms "
                      "apart, sooner when a connection closes); open connections are served meanwhile",
                      entry->l->local_address().to_string(), unreported, ec.message(), delay.count(),
                      accept_backoff_max.count());
        unreported = 0;
        last_report = now;
      }
      entry->backing_off = true;
      st->backing_off.fetch_add(1);
      entry->retry.expires_after(delay);
      co_await entry->retry.async_wait(asio::as_tuple(asio::deferred));
      st->backing_off.fetch_sub(1);
      entry->backing_off = false;
      if (st->stopping) co_return;
    }
  }

  /// Runs the transport's start step for an accepted connection, on its executor, then starts
  /// the connection. The step is bounded by cfg.handshake_timeout (a silent peer is closed
  /// then, and logged); while it runs the connection counts in connection_count(), and a stop
  /// (graceful or not) cancels it and closes the socket.
  static asio::awaitable<void> start_then_run(std::shared_ptr<state> st, socket_type s) {
    using namespace asio::experimental::awaitable_operators;
    shard& sh = shard_of(*st, s.get_executor());
    if (!admit(st, s)) co_return;
    detail::starting_connection entry(sh.ex, st->cfg.handshake_timeout);
    sh.starting.push_back(entry);
    auto result = co_await (st->transport.start(s, transport_role::server) ||
                            entry.deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
    entry.unlink();
    std::error_code ec = result.index() == 0 ? std::get<0>(result) : std::error_code{};
    if (!st->stopping && result.index() == 1)
      st->log.info("connection from {} closed: its start step (TLS handshake) did not finish within {} ms",
                   st->transport.describe_peer(s), st->cfg.handshake_timeout.count());
    else if (!st->stopping && ec)
      st->log.info("connection from {} failed to start: {}", st->transport.describe_peer(s),
                   describe_start_failure(st->transport, s, ec));
    if (st->stopping || result.index() == 1 || ec) {
      if (!st->stopping && st->cfg.observer)
        st->cfg.observer->on_event(call_side::server, observer_event::connection_rejected);
      st->transport.close(s);
      connection_gone(st);
      co_return;
    }
    start_or_log(st, sh, std::move(s));
  }

  /// As start_then_run, for a transport without a start step: the connection starts at once.
  static void run_unstarted(const std::shared_ptr<state>& st, socket_type s) {
    if (admit(st, s)) start_or_log(st, shard_of(*st, s.get_executor()), std::move(s));
  }

  /// Counts an accepted connection in st->open, on its executor, unless a shutdown is under way
  /// (then closes it). Counted from here: a shutdown either sees this connection (open > 0, and
  /// its pass over the shard cancels the start step) or is seen by it (stopping, checked here
  /// on the same executor, after the count).
  static bool admit(const std::shared_ptr<state>& st, socket_type& s) {
    st->open.fetch_add(1);
    if (!st->stopping) return true;
    st->transport.close(s);  // the shutdown's pass over the shard may be over
    connection_gone(st);
    return false;
  }

  static void start_or_log(const std::shared_ptr<state>& st, shard& sh, socket_type s) {
    try {
      start_connection(st, sh, std::move(s));
    } catch (const std::bad_alloc&) {  // the socket closed with `s`
      st->log.error("could not start a connection: out of memory");
    }
  }

  /// On the connection's executor, once its start step is done (and counted in st->open).
  static void start_connection(const std::shared_ptr<state>& st, shard& sh, socket_type s) {
    std::string peer = st->transport.describe_peer(s);
    std::weak_ptr<state> weak = st;
    std::shared_ptr<connection> c;
    try {
      c = std::make_shared<connection>(std::move(s), st->transport, st->dispatch, st->cfg, st->log, peer, st->budget,
                                       [weak, &sh](connection* c) {
                                         if (auto st = weak.lock()) on_connection_closed(st, sh, *c);
                                       });
    } catch (...) {  // std::bad_alloc: the socket closed with `s`
      connection_gone(st);
      throw;
    }
    sh.connections.push_back(*c);
    st->log.debug("accepted a connection from {}", peer);
    c->start();  // if it throws, the connection closed first (on_connection_closed ran)
  }

  static shard& shard_of(state& st, const executor_type& ex) noexcept {
    for (auto& sh : st.shards)
      if (sh->ex == ex) return *sh;
    return *st.shards.front();  // unreachable: every socket is made on a shard's executor
  }

  /// On the connection's executor (sh's), when its transport closes.
  static void on_connection_closed(const std::shared_ptr<state>& st, shard&, connection& c) {
    if (c.is_linked()) c.unlink();
    // Its fd is free again: a listener backing off from EMFILE may accept now.
    if (st->backing_off.load() > 0) {
      std::lock_guard lock(st->listeners_mutex);
      for (auto& e : st->listeners)
        if (e.backing_off) asio::post(e.ex, [st, &e] { e.retry.cancel(); });
    }
    connection_gone(st);
  }

  /// One connection fewer: the last one during a shutdown finishes it (on the server's executor).
  static void connection_gone(const std::shared_ptr<state>& st) {
    if (st->open.fetch_sub(1) == 1 && st->stopping) asio::post(st->ex, [st] { finish_shutdown(st); });
  }

  /// Runs `f(connection&)` on every open connection, each on its own executor.
  template <class F>
  static void for_each_connection(const std::shared_ptr<state>& st, F f) {
    for (auto& sh : st->shards) asio::dispatch(sh->ex, [st, sh = sh.get(), f]() mutable { sh->for_each_connection(f); });
  }

  /// Ends every start step under way (each on its executor): their connections close.
  static void cancel_starting(const std::shared_ptr<state>& st) {
    for (auto& sh : st->shards) asio::dispatch(sh->ex, [st, sh = sh.get()] { sh->cancel_starting(); });
  }

  static void close_listeners(const std::shared_ptr<state>& st) {
    std::lock_guard lock(st->listeners_mutex);
    for (auto& e : st->listeners) asio::dispatch(e.ex, [st, &e] { e.close(); });
  }

  /// On the server's executor.
  static void begin_shutdown(const std::shared_ptr<state>& st) {
    if (!st->stopping.exchange(true)) {
      st->log.info("shutting down: {} connections", st->open.load());
      close_listeners(st);
      for_each_connection(st, [](connection& c) { c.stop_reading(); });
      cancel_starting(st);
    }
    if (st->open.load() == 0) finish_shutdown(st);
  }

  /// On the server's executor; once more does nothing.
  static void finish_shutdown(const std::shared_ptr<state>& st) {
    auto waiters = std::move(st->stop_waiters);
    for (auto& w : waiters) w->post(std::error_code{});
  }

  static void hard_stop(const std::shared_ptr<state>& st) {
    st->stopping = st->stopped = true;
    close_listeners(st);
    cancel_starting(st);
    for_each_connection(st, [](connection& c) { c.force_close("server destroyed"); });
    finish_shutdown(st);
  }

  std::shared_ptr<state> st_;
};

template <class Dispatch>
using server = basic_server<Dispatch>;

}  // namespace occams_rpc
