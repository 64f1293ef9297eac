// TCP and Unix-domain sockets as one transport: both are a generic stream socket, so one
// socket type serves both and the stream layer is compiled once for them.
#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/transport/address.hpp>
#include <occams_rpc/transport/transport.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/socket_base.hpp>

#include <chrono>
#include <cstddef>
#include <span>
#include <system_error>

namespace occams_rpc {

class socket_transport {
 public:
  using protocol_type = asio::generic::stream_protocol;
  using socket_type = protocol_type::socket;

  class listener {
   public:
    /// Binds and listens. A TCP port 0 gets a free port (see local_address()); a stale Unix
    /// socket file (nobody accepts on it) is replaced. Throws std::system_error on failure.
    OCCAMS_RPC_DECL listener(asio::any_io_executor ex, const address& where, const listen_options& options = {});
    listener(listener&&) = default;
    OCCAMS_RPC_DECL ~listener();

    /// Accepts one connection onto `out`, a closed socket on the executor chosen for this
    /// connection (its context may differ from the listener's), and configures it (TCP_NODELAY
    /// on TCP).
    OCCAMS_RPC_DECL asio::awaitable<std::error_code> accept(socket_type& out);
    /// The address actually listened on (with the real port).
    address local_address() const { return local_; }
    OCCAMS_RPC_DECL void close();

   private:
    asio::basic_socket_acceptor<protocol_type> acceptor_;
    address local_;
  };
  using listener_type = listener;

  /// Resolves and connects within `timeout`; fails with the OS's error (std::errc::timed_out
  /// after `timeout`), which the stream layer logs and reports as errc::unreachable.
  OCCAMS_RPC_DECL asio::awaitable<std::error_code> connect(asio::any_io_executor ex, const address& to,
                                                           std::chrono::milliseconds timeout, socket_type& out) const;
  /// Binds and listens (see listener); throws std::system_error on failure.
  listener listen(asio::any_io_executor ex, const address& where, const listen_options& options = {}) const {
    return listener(std::move(ex), where, options);
  }
  /// Nothing to do: a connected socket is ready.
  static constexpr bool has_start_step = false;
  OCCAMS_RPC_DECL asio::awaitable<std::error_code> start(socket_type& s, transport_role role) const;
  /// "127.0.0.1:4242" for a TCP peer, "unix:/path" for a Unix one (for logs).
  OCCAMS_RPC_DECL std::string describe_peer(const socket_type& s) const;
  /// Closes both directions, ignoring errors.
  OCCAMS_RPC_DECL void close(socket_type& s) const noexcept;
  /// Sends FIN after the last write (the peer sees end of stream), ignoring errors.
  OCCAMS_RPC_DECL void shutdown_send(socket_type& s) const noexcept;
  /// A non-blocking gathered write (see can_try_write): the bytes the socket took now, 0 with
  /// no error when it took none. The socket is put in non-blocking mode for it (Asio's
  /// asynchronous operations work the same in either mode).
  std::size_t try_write(socket_type& s, std::span<const asio::const_buffer> buffers, std::error_code& ec) const {
    boost::system::error_code bec;
    if (!s.non_blocking()) s.non_blocking(true, bec);
    std::size_t n = bec ? 0 : s.write_some(buffers, bec);
    if (bec == asio::error::would_block || bec == asio::error::try_again) bec = {};
    ec = bec;
    return n;
  }
  /// Bytes received and not yet read (FIONREAD); 0 on error.
  OCCAMS_RPC_DECL std::size_t available(socket_type& s) const noexcept;
};

static_assert(transport<socket_transport>);

}  // namespace occams_rpc

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/transport/impl/socket_transport.ipp>
#endif
