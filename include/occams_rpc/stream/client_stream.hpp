// client_stream: one multiplexed, full-duplex client connection.
//
// Calls from many coroutines share the connection; each gets the next seq, and responses are
// matched by seq (they may arrive out of order). Requests are queued in order and flushed in
// batches: one writer coroutine writes everything queued in one gathered write. At most
// `window` requests are in flight; further callers wait in FIFO order. Timeouts are checked in
// one sweep per tick, with no timer per call.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/stream/call_response.hpp>
#include <occams_rpc/stream/detail/client_connection.hpp>
#include <occams_rpc/stream/detail/forwarding_handler.hpp>
#include <occams_rpc/stream/detail/running_here.hpp>
#include <occams_rpc/transport/socket_transport.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <span>
#include <type_traits>
#include <string_view>

namespace occams_rpc {

using proto::action;

template <transport Transport = socket_transport>
class basic_client_stream {
  using connection = detail::client_connection<Transport>;

 public:
  using transport_type = Transport;
  using socket_type = typename Transport::socket_type;
  using executor_type = asio::any_io_executor;

  /// A stream with no connection: every call fails with errc::closed.
  basic_client_stream() = default;

  /// Adopts a connected socket, ready for the protocol (the transport's start step, if any,
  /// has run); `transport` closes it. Throws std::system_error(errc::invalid_config) for a bad
  /// config. The socket's executor must not run handlers concurrently (an io_context run by
  /// one thread, or a strand).
  explicit basic_client_stream(socket_type socket, const client_config& cfg = {}, logger log = {},
                               Transport transport = {})
      : conn_(make(std::move(socket), std::move(transport), cfg, std::move(log))) {}

  basic_client_stream(basic_client_stream&&) noexcept = default;
  basic_client_stream& operator=(basic_client_stream&& o) noexcept {
    if (this != &o) {
      if (conn_) close();
      conn_ = std::move(o.conn_);
    }
    return *this;
  }
  /// Closes gracefully: calls already made still complete.
  ~basic_client_stream() {
    if (conn_) close();
  }

  /// Connects to `to` through `transport` (a copy is kept: it closes the connection), then
  /// runs the transport's start step for a client (nothing for TCP, Unix and memory; the TLS
  /// handshake), both within cfg.connect_timeout.
  ///
  /// With cfg.extensions, it completes once the server has answered the extensions' hello
  /// (a ping's round trip), so that the first call already carries its deadline.
  ///
  /// Completion signature: void(std::error_code, basic_client_stream); the error is
  /// errc::unreachable when no connection could be made and started in time (the log line, at
  /// info, names the transport's reason: "connection refused", "timed out"...), errc::cancelled when
  /// cancelled, or the start step's error. Cancellation: terminal, partial and total are
  /// honoured (no connection is left behind). Executor: the handler runs on its associated
  /// executor, else `ex`. Thread safety: may be called from any thread.
  template <class T, class Token = asio::deferred_t>
    requires(!std::is_convertible_v<const T&, executor_type>)
  static auto async_connect(const T& transport, executor_type ex, address to, client_config cfg = {},
                            logger log = {}, Token&& token = {}) {
    static_assert(std::is_same_v<T, Transport>,
                  "occams_rpc: async_connect's first argument must be the stream's transport object "
                  "(basic_client_stream<Transport>::async_connect(Transport, executor, address, ...))");
    validate(cfg);
    return asio::async_initiate<Token, void(std::error_code, basic_client_stream)>(
        [](auto handler, Transport t, executor_type ex, address to, client_config cfg, logger log) {
          auto work = [t = std::move(t), ex, to = std::move(to), cfg, log = std::move(log)]() mutable
              -> asio::awaitable<std::tuple<std::error_code, basic_client_stream>> {
            // co_spawn passes on terminal cancellation only; honour every type, as async_call does.
            co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
            co_await asio::this_coro::throw_if_cancelled(false);
            using namespace asio::experimental::awaitable_operators;
            socket_type s(ex);
            asio::steady_timer deadline(ex, cfg.connect_timeout);  // for the start step too
            // `why` keeps the transport's own reason (the OS's "connection refused"...) for the
            // log; the caller gets errc::unreachable, which retry logic and the pools act on.
            std::error_code why = co_await t.connect(ex, to, cfg.connect_timeout, s);
            std::error_code ec = why && why.category() != rpc_category() ? make_error_code(errc::unreachable) : why;
            if (!ec) {
              auto started = co_await (t.start(s, transport_role::client) ||
                                       deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
              why = started.index() == 0 ? std::get<0>(started) : make_error_code(std::errc::timed_out);
              ec = started.index() == 0 ? why : make_error_code(errc::unreachable);
              if (ec) t.close(s);
            }
            asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
            if (cs.cancelled() != asio::cancellation_type::none)
              co_return std::tuple{make_error_code(errc::cancelled), basic_client_stream()};
            if (ec) {
              if (ec == why) log.info("connect to {} failed: {}", to.to_string(), describe_start_failure(t, s, ec));
              else log.info("connect to {} failed: {} ({})", to.to_string(), ec.message(), why.message());
              co_return std::tuple{ec, basic_client_stream()};
            }
            basic_client_stream stream(std::move(s), cfg, std::move(log), std::move(t));
            if (cfg.extensions) {
              // Settle the v1 extensions before the first call: on a server of this library the
              // pong follows the hello's answer. Bounded by the connect timeout; past it, the
              // calls go out as plain v1 until the answer arrives.
              co_await (stream.async_ping(asio::as_tuple(asio::use_awaitable)) ||
                        deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
            }
            co_return std::tuple{std::error_code{}, std::move(stream)};
          };
          // The completion is the user's handler to Asio: its executor, allocator and
          // cancellation slot carry over to co_spawn.
          asio::co_spawn(ex, std::move(work),
                         detail::forward_to(std::move(handler), detail::unpack_coroutine_result{errc::unreachable}));
        },
        token, transport, std::move(ex), std::move(to), std::move(cfg), std::move(log));
  }

  /// async_connect(Transport{}, ex, to, cfg, log, token): through a default transport.
  template <class Token = asio::deferred_t>
  static auto async_connect(executor_type ex, address to, client_config cfg = {}, logger log = {},
                            Token&& token = {}) {
    return async_connect(Transport{}, std::move(ex), std::move(to), std::move(cfg), std::move(log),
                         std::forward<Token>(token));
  }

  /// Sends one request and completes with its response.
  ///
  /// - `act`: a numeric action (1..2^31-1) or an action string such as "Calculator.add".
  /// - `msg`, `blob`: the request body; like the buffers of asio::async_write, they (and an
  ///   action string) must stay valid until the operation completes. A small msg or blob is copied
  ///   into the batch; a large one is written from where it is.
  /// - `buffers`: optional storage for the response; pass back the call_response of an earlier
  ///   call and steady-state calls allocate nothing.
  ///
  /// Completion signature: void(std::error_code, call_response). Errors: errc::timeout (no
  /// response within cfg.call_timeout), errc::io_err (the connection failed), errc::closed
  /// (close() was called before this call), errc::cancelled (cancelled through
  /// the token's cancellation slot: the call's slot frees at once, a late response is dropped),
  /// a framework error sent by the server (errc::method_not_found...), a user error code
  /// (category remote_category()), or errc::remote_error with the string in msg.
  /// Cancellation: terminal, partial and total are honoured. Executor: the handler runs on
  /// its associated executor, else the connection's. Thread safety: may be called from any
  /// thread; the request is queued on the connection's executor. As with Asio's I/O objects,
  /// the stream must still exist, not moved from or reassigned, when the operation is
  /// launched (a deferred operation holds the connection only from then on).
  template <class Token = asio::deferred_t>
  auto async_call(action act, std::span<const char> msg, std::span<const char> blob = {},
                  call_response buffers = {}, Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code, call_response)>(
        // `buffers` by reference: moved once, into the call (a deferred operation launched as an
        // lvalue passes a const one, copied there).
        [conn = conn_.get()](auto&& handler, action act, std::span<const char> msg, std::span<const char> blob,
                             auto&& buffers) {
          using H = decltype(handler);
          if (!conn) {
            detail::call_handler h;
            h.emplace<detail::complete_with_response>(std::forward<H>(handler), detail::system_fallback());
            call_response r(std::forward<decltype(buffers)>(buffers));
            h.post(make_error_code(errc::closed), &r);
            return;
          }
          if (conn->running_here()) {
            conn->start_call(act, msg, blob, std::forward<decltype(buffers)>(buffers), std::forward<H>(handler));
            return;
          }
          asio::dispatch(conn->get_executor(), [conn = conn->shared_from_this(), act, msg, blob,
                                                buffers = call_response(std::forward<decltype(buffers)>(buffers)),
                                                h = std::forward<H>(handler)]() mutable {
            conn->start_call(act, msg, blob, std::move(buffers), std::move(h));
          });
        },
        token, act, msg, blob, std::move(buffers));
  }

  /// Like async_call, but the response is written into `response`, storage the caller owns
  /// (as asio::async_read writes into the caller's buffer), and the completion carries only
  /// the error: no response object is moved through the completion. Reusing one
  /// `call_response` for a caller's successive calls allocates nothing in steady state.
  ///
  /// `response` (like `msg`, `blob` and an action string) must stay valid until the operation
  /// completes; its previous contents are replaced when the response arrives. On an error it
  /// holds what async_call's response would: the error string for errc::remote_error, else
  /// unspecified contents.
  ///
  /// Completion signature: void(std::error_code), with the errors of async_call.
  template <class Token = asio::deferred_t>
  auto async_call_into(action act, std::span<const char> msg, std::span<const char> blob, call_response& response,
                       Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [conn = conn_.get()](auto handler, action act, std::span<const char> msg, std::span<const char> blob,
                             call_response* response) {
          if (!conn) {
            detail::call_handler h;
            h.emplace<detail::complete_without_response>(std::move(handler), detail::system_fallback());
            h.post(make_error_code(errc::closed), response);
            return;
          }
          if (conn->running_here()) {
            conn->start_call_into(act, msg, blob, *response, std::move(handler));
            return;
          }
          asio::dispatch(conn->get_executor(), [conn = conn->shared_from_this(), act, msg, blob, response,
                                                h = std::move(handler)]() mutable {
            conn->start_call_into(act, msg, blob, *response, std::move(h));
          });
        },
        token, act, msg, blob, &response);
  }

  /// Sends a ping (action 0, empty msg); completes when the pong arrives.
  /// Completion signature: void(std::error_code); errc::timeout after cfg.call_timeout.
  template <class Token = asio::deferred_t>
  auto async_ping(Token&& token = {}) {
    return on_connection(std::forward<Token>(token), [](connection& c, auto h) { c.start_ping(std::move(h)); });
  }

  /// Refuses new calls (they fail with errc::closed), lets the calls in flight finish (or
  /// time out), then closes the socket. Does not wait; see async_close.
  void close() {
    if (!conn_) return;
    asio::dispatch(conn_->get_executor(), [conn = conn_] { conn->close(); });
  }

  /// close(), then completes once the connection is closed. Signature: void(std::error_code).
  template <class Token = asio::deferred_t>
  auto async_close(Token&& token = {}) {
    return on_connection(std::forward<Token>(token), [](connection& c, auto h) {
      c.close();
      c.add_close_waiter(std::move(h));
    });
  }

  /// Completes once the connection has closed, by either side and for any reason, without
  /// closing it (a pool learns so of a connection lost between its health checks).
  /// Signature: void(std::error_code); errc::closed for a stream with no connection.
  /// Cancellation: not supported. Executor: the handler's associated executor, else the
  /// connection's. Thread safety: may be called from any thread.
  template <class Token = asio::deferred_t>
  auto async_wait_closed(Token&& token = {}) {
    return on_connection(std::forward<Token>(token),
                         [](connection& c, auto h) { c.add_close_waiter(std::move(h)); });
  }

  /// Closes now: every call in flight fails with errc::closed.
  void abort() { abort(make_error_code(errc::closed)); }
  /// Closes now: every call in flight, and every later one, fails with `reason` (a pool that
  /// finds a connection dead uses errc::io_err, which a failover may retry).
  void abort(std::error_code reason) {
    if (!conn_) return;
    asio::dispatch(conn_->get_executor(), [conn = conn_, reason] { conn->abort(reason); });
  }

  /// True until the connection is closed or failed (read on the connection's executor).
  bool is_open() const noexcept { return conn_ && conn_->current_state() == connection::state::open; }
  /// Requests in flight now (read on the connection's executor).
  std::size_t in_flight() const noexcept { return conn_ ? conn_->in_flight() : 0; }
  /// Whether the v1 extensions (client_config::extensions) are on: `on` once the server
  /// accepted the hello, one round trip after connecting (read on the connection's executor).
  session::client_session::extensions_state extensions() const noexcept {
    return conn_ ? conn_->extensions() : session::client_session::extensions_state::off;
  }
  /// The largest number of requests ever in flight at once (for tests and metrics).
  std::size_t max_in_flight_seen() const noexcept { return conn_ ? conn_->max_in_flight_seen() : 0; }
  /// The connection's executor (a default-constructed stream has none: check operator bool).
  executor_type get_executor() const { return conn_ ? conn_->get_executor() : executor_type{}; }
  explicit operator bool() const noexcept { return static_cast<bool>(conn_); }

 private:
  /// The shape of async_ping, async_close and async_wait_closed: a void(std::error_code)
  /// operation that runs `step(connection&, handler)` on the connection's executor (holding
  /// the connection until then), or completes with errc::closed for a stream with none.
  template <class Token, class Step>
  auto on_connection(Token&& token, Step step) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [conn = conn_, step](auto handler) {
          if (!conn) {
            detail::void_handler h;
            h.emplace(std::move(handler), detail::system_fallback());
            h.post(make_error_code(errc::closed));
            return;
          }
          asio::dispatch(conn->get_executor(),
                         [conn, step, h = std::move(handler)]() mutable { step(*conn, std::move(h)); });
        },
        token);
  }

  static std::shared_ptr<connection> make(socket_type socket, Transport transport, const client_config& cfg,
                                          logger log) {
    validate(cfg);
    auto c = std::make_shared<connection>(std::move(socket), std::move(transport), cfg, std::move(log));
    c->start();
    return c;
  }

  std::shared_ptr<connection> conn_;
};

using client_stream = basic_client_stream<>;

}  // namespace occams_rpc
