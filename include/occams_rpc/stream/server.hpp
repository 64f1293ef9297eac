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
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/stream/detail/exception_text.hpp>
#include <occams_rpc/session/memory_budget.hpp>
#include <occams_rpc/stream/detail/server_connection.hpp>
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
#include <boost/intrusive/list.hpp>

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

  /// A listener and the timer of its accept back-off.
  struct listening {
    std::unique_ptr<listener> l;
    asio::steady_timer retry;
    bool backing_off = false;
    listening(std::unique_ptr<listener> lst, const asio::any_io_executor& ex) : l(std::move(lst)), retry(ex) {}
    void close() {
      l->close();
      retry.cancel();
    }
  };
  using connection_list = boost::intrusive::list<connection, boost::intrusive::base_hook<detail::connection_hook>,
                                                 boost::intrusive::constant_time_size<false>>;
  /// A connection in its start step (a TLS handshake): its deadline, which a stop cancels.
  /// It unlinks itself when destroyed (also when the context goes with the step suspended).
  struct starting_connection
      : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
    asio::steady_timer deadline;
    starting_connection(const asio::any_io_executor& ex, std::chrono::milliseconds limit) : deadline(ex, limit) {}
  };
  using starting_list = boost::intrusive::list<starting_connection, boost::intrusive::constant_time_size<false>>;

  struct state final : detail::shutdown_hook, std::enable_shared_from_this<state> {
    asio::any_io_executor ex;
    Transport transport;
    std::shared_ptr<Dispatch> dispatch;
    server_config cfg;
    logger log;
    std::shared_ptr<session::memory_budget> budget;
    std::list<listening> listeners;
    connection_list connections;  // the open ones; each unlinks itself when it closes
    starting_list starting;       // in their start step; each unlinks itself when it ends
    bool stopping = false;  // graceful shutdown under way
    bool stopped = false;   // closed at once
    std::vector<std::unique_ptr<detail::stored_handler<std::error_code>>> stop_waiters;
    std::size_t accepted = 0;
    std::vector<std::shared_ptr<connection>> live_scratch;

    state(asio::any_io_executor e, Dispatch d, const server_config& c, logger l, Transport t)
        : shutdown_hook(e),
          ex(e),
          transport(std::move(t)),
          dispatch(std::make_shared<Dispatch>(std::move(d))),
          cfg(c),
          log(std::move(l)),
          budget(std::make_shared<session::memory_budget>(c.max_buffered_bytes)) {}

    /// The context is being destroyed: drop the shutdown waiters' handlers unrun (they may own
    /// the coroutine that owns the server).
    void on_context_shutdown() noexcept override {
      auto self = this->weak_from_this().lock();
      if (!self) return;
      stopping = stopped = true;
      auto waiters = std::move(stop_waiters);
    }
  };

 public:
  using executor_type = asio::any_io_executor;

  /// Throws std::system_error(errc::invalid_config) for a bad config. The executor must not
  /// run handlers concurrently (an io_context run by one thread, or a strand). `transport`
  /// listens, accepts, starts and closes every connection (each connection keeps a copy).
  basic_server(executor_type ex, Dispatch dispatch, const server_config& cfg = {}, logger log = {},
               Transport transport = {})
      : st_(std::make_shared<state>(ex, std::move(dispatch), (validate(cfg), cfg), std::move(log),
                                    std::move(transport))) {
  }
  basic_server(const basic_server&) = delete;
  basic_server& operator=(const basic_server&) = delete;
  /// Closes the listeners and every connection at once (use async_shutdown to be graceful).
  ~basic_server() {
    asio::dispatch(st_->ex, [st = st_] { hard_stop(st); });
  }

  /// Listens on `where` ("host:port", "[v6]:port", "/path" or "unix:/path") with `options`
  /// (backlog, SO_REUSEPORT) and starts accepting. Returns the address listened on (with the
  /// real port for port 0). Throws std::system_error if the address is invalid or cannot be
  /// bound. Call it on the server's executor or before the executor runs.
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
    auto& entry = st_->listeners.emplace_back(std::move(l), st_->ex);
    asio::co_spawn(st_->ex, accept_loop(st_, &entry), log_failure{st_->log, "accept loop"});
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

  /// Connections open now, counting those still in their start step (a TLS handshake), which
  /// hold a socket too (read on the server's executor).
  std::size_t connection_count() const {
    std::size_t n = st_->starting.size();
    for (auto& c : st_->connections)
      if (!c.closed()) ++n;
    return n;
  }
  std::size_t accepted_count() const noexcept { return st_->accepted; }
  /// Bytes of the request memory budget (server_config::max_buffered_bytes) in use now.
  std::size_t buffered_bytes() const noexcept { return st_->budget->used(); }
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

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> st, listening* entry) {
    using clock = std::chrono::steady_clock;
    std::chrono::milliseconds delay{0};
    std::size_t failures = 0, unreported = 0;  // in the current run of resource errors
    clock::time_point last_report{};
    for (;;) {
      socket_type s(st->ex);  // the executor chosen for this connection
      std::error_code ec = co_await entry->l->accept(s);
      if (st->stopping) co_return;
      if (!ec) {
        try {
          // The start step (a TLS handshake) runs on its own: a slow one delays no accept.
          asio::co_spawn(st->ex, start_then_run(st, std::move(s)), log_failure{st->log, "connection start"});
          ++st->accepted;
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
      entry->retry.expires_after(delay);
      co_await entry->retry.async_wait(asio::as_tuple(asio::deferred));
      entry->backing_off = false;
      if (st->stopping) co_return;
    }
  }

  /// Runs the transport's start step for an accepted connection, then starts the connection.
  /// The step is bounded by cfg.handshake_timeout (a silent peer is closed then, and logged);
  /// while it runs the connection counts in connection_count(), and a stop (graceful or not)
  /// cancels it and closes the socket. A graceful shutdown completes once it has.
  static asio::awaitable<void> start_then_run(std::shared_ptr<state> st, socket_type s) {
    using namespace asio::experimental::awaitable_operators;
    starting_connection entry(st->ex, st->cfg.handshake_timeout);
    st->starting.push_back(entry);
    auto result = co_await (st->transport.start(s, transport_role::server) ||
                            entry.deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
    entry.unlink();
    std::error_code ec = result.index() == 0 ? std::get<0>(result) : std::error_code{};
    if (st->stopping) {
      st->transport.close(s);
      if (st->connections.empty() && st->starting.empty()) finish_shutdown(st);
      co_return;
    }
    if (result.index() == 1) {
      st->log.info("connection from {} closed: its start step (TLS handshake) did not finish within {} ms",
                   st->transport.describe_peer(s), st->cfg.handshake_timeout.count());
      st->transport.close(s);
      co_return;
    }
    if (ec) {
      st->log.info("connection from {} failed to start: {}", st->transport.describe_peer(s), ec.message());
      st->transport.close(s);
      co_return;
    }
    try {
      start_connection(st, std::move(s));
    } catch (const std::bad_alloc&) {  // the socket closed with `s`
      st->log.error("could not start a connection: out of memory");
    }
  }

  static void start_connection(const std::shared_ptr<state>& st, socket_type s) {
    std::string peer = st->transport.describe_peer(s);
    std::weak_ptr<state> weak = st;
    auto c = std::make_shared<connection>(std::move(s), st->transport, st->dispatch, st->cfg, st->log, peer, st->budget,
                                          [weak](connection* c) {
                                            if (auto st = weak.lock()) on_connection_closed(st, *c);
                                          });
    st->connections.push_back(*c);
    st->log.debug("accepted a connection from {}", peer);
    c->start();
  }

  static void on_connection_closed(const std::shared_ptr<state>& st, connection& c) {
    if (c.is_linked()) c.unlink();
    // Its fd is free again: a listener backing off from EMFILE may accept now.
    for (auto& e : st->listeners)
      if (e.backing_off) e.retry.cancel();
    if (st->stopping && st->connections.empty() && st->starting.empty()) finish_shutdown(st);
  }

  /// The open connections, in a list reused from call to call (closing one edits the list).
  static std::vector<std::shared_ptr<connection>>& live_connections(const std::shared_ptr<state>& st) {
    auto& live = st->live_scratch;
    live.clear();
    for (auto& c : st->connections)
      if (auto p = c.weak_from_this().lock()) live.push_back(std::move(p));
    return live;
  }

  static void begin_shutdown(const std::shared_ptr<state>& st) {
    if (!st->stopping) {
      st->stopping = true;
      auto& live = live_connections(st);
      st->log.info("shutting down: {} connections", live.size());
      for (auto& l : st->listeners) l.close();
      for (auto& c : live) c->stop_reading();
      live.clear();
      for (auto& e : st->starting) e.deadline.cancel();
    }
    if (st->connections.empty() && st->starting.empty()) finish_shutdown(st);
  }

  static void finish_shutdown(const std::shared_ptr<state>& st) {
    auto waiters = std::move(st->stop_waiters);
    for (auto& w : waiters) w->post(std::error_code{});
  }

  static void hard_stop(const std::shared_ptr<state>& st) {
    st->stopping = st->stopped = true;
    for (auto& l : st->listeners) l.close();
    for (auto& e : st->starting) e.deadline.cancel();
    auto& live = live_connections(st);
    for (auto& c : live) c->force_close("server destroyed");
    live.clear();
    finish_shutdown(st);
  }

  std::shared_ptr<state> st_;
};

template <class Dispatch>
using server = basic_server<Dispatch>;

}  // namespace occams_rpc
