// tls_transport: TLS 1.2 and 1.3 (OpenSSL 3, through Asio's ssl::stream) over TCP or Unix
// sockets. The frames inside are protocol v1 unchanged. Set-up, mutual TLS, errors and costs:
// docs/tls.md.
//
// A transport object is for one side: tls_transport::server(options) for basic_server,
// tls_transport::client(options) for client_stream, client_pool and failover_pool. Its
// ssl::context is built once, when the object is made, and shared by every copy and
// connection (the stream layer copies the transport into each). The handshake is the
// transport's start step: the server runs it per connection outside its accept loop, bounded
// by server_config::handshake_timeout; a client runs it within client_config::connect_timeout.
//
// Errors: a handshake that fails gives a tls_* error (core/error.hpp; is_tls_error): its own
// when the user can act on it, else tls_handshake_failed, whose log line names OpenSSL's
// reason (describe_failure). None is retried by failover_pool.
//
// Needs OpenSSL: link occams_rpc::tls (CMake), which brings OpenSSL::SSL; the plain library
// does not.
#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/transport/socket_transport.hpp>
#include <occams_rpc/transport/tls_options.hpp>
#include <occams_rpc/transport/tls_socket.hpp>
#include <occams_rpc/transport/transport.hpp>

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>

namespace occams_rpc {

class tls_transport {
 public:
  using socket_type = tls_socket;

  /// Listens and accepts as socket_transport does; each accepted socket gets its ssl::stream.
  class listener {
   public:
    listener(socket_transport::listener plain, std::shared_ptr<asio::ssl::context> ctx)
        : plain_(std::move(plain)), ctx_(std::move(ctx)) {}
    /// Accepts one connection onto `out` (see socket_transport::listener::accept); the
    /// handshake is the start step, not part of accept.
    OCCAMS_RPC_DECL asio::awaitable<std::error_code> accept(socket_type& out);
    address local_address() const { return plain_.local_address(); }
    void close() { plain_.close(); }

   private:
    socket_transport::listener plain_;
    std::shared_ptr<asio::ssl::context> ctx_;
  };
  using listener_type = listener;

  /// A server's transport. Throws std::system_error(errc::invalid_config) with OpenSSL's
  /// reason when a certificate, key or CA cannot be loaded or the key does not match.
  OCCAMS_RPC_DECL static tls_transport server(const tls_server_options& options);
  /// A client's transport. Throws std::system_error(errc::invalid_config) as server() does.
  OCCAMS_RPC_DECL static tls_transport client(const tls_client_options& options);

  /// Connects the socket under TLS (as socket_transport::connect: the OS's error, timed_out
  /// after `timeout`) and sets the name to send as SNI and to verify. errc::invalid_config when
  /// hostname verification is on and there is no name (a Unix address without server_name),
  /// or when this is a server's transport.
  OCCAMS_RPC_DECL asio::awaitable<std::error_code> connect(asio::any_io_executor ex, const address& to,
                                                           std::chrono::milliseconds timeout, socket_type& out) const;
  /// Binds and listens (see socket_transport::listener); throws std::system_error on failure.
  listener listen(asio::any_io_executor ex, const address& where, const listen_options& options = {}) const {
    return listener(socket_transport{}.listen(std::move(ex), where, options), st_->ctx);
  }
  static constexpr bool has_start_step = true;
  /// The TLS handshake, as `role`. A client offers the session the same address gave it last
  /// (resumption: no certificate exchange), which the server may refuse (a full handshake). Completes with a tls_* error for the failures the user can
  /// act on (docs/tls.md, "Errors"), else OpenSSL's error; operation_aborted when cancelled
  /// (the caller bounds it: the server by handshake_timeout, a client by connect_timeout).
  OCCAMS_RPC_DECL asio::awaitable<std::error_code> start(socket_type& s, transport_role role) const;
  /// "127.0.0.1:4242" or "unix:/path", as socket_transport.
  OCCAMS_RPC_DECL std::string describe_peer(const socket_type& s) const;
  /// The log text of a start step's error: for tls_handshake_failed, with OpenSSL's reason
  /// ("TLS: handshake failed (unsupported protocol (SSL routines))").
  OCCAMS_RPC_DECL std::string describe_failure(const socket_type& s, std::error_code ec) const;
  /// After shutdown_send(): sends close_notify and waits for the peer's (at most the
  /// options' close_notify_timeout) in the background, then closes the socket. Otherwise
  /// closes the socket at once (the peer's reads fail: its stream was truncated).
  OCCAMS_RPC_DECL void close(socket_type& s) const noexcept;
  /// Asks close() to end the session gracefully with close_notify (TLS has no half-close of
  /// its own: after close_notify no more bytes are sent).
  OCCAMS_RPC_DECL void shutdown_send(socket_type& s) const noexcept;
  /// Bytes received and not yet read: in the socket, plus those OpenSSL holds (records read
  /// but not yet decrypted or not yet handed out). Ciphertext, so an upper bound.
  OCCAMS_RPC_DECL std::size_t available(socket_type& s) const noexcept;

  /// The shared context (e.g. to tune ciphers before the first connection).
  asio::ssl::context& context() const noexcept { return *st_->ctx; }

 private:
  struct shared {
    std::shared_ptr<asio::ssl::context> ctx;  // a client's also holds its session cache
    transport_role role;
    tls_client_options client;  // a client's name checks (role == client)
    std::chrono::milliseconds close_notify_timeout;
  };
  explicit tls_transport(std::shared_ptr<const shared> st) : st_(std::move(st)) {}

  std::shared_ptr<const shared> st_;
};

static_assert(transport<tls_transport>);

}  // namespace occams_rpc

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/transport/impl/tls_transport.ipp>
#endif
