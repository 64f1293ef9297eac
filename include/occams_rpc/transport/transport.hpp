// The transport concept: what the stream layer needs from a byte stream and its listener.
// A new transport (TLS, QUIC, RDMA...) is one adapter type modelling `transport`.
//
// A transport is an object, so it can hold state (an ssl::context, socket options, a policy):
// the stream layer copies it into every pool, server and connection that uses it, so it must be
// cheap to copy (put shared state behind a shared_ptr). Its operations are const.
#pragma once

#include <occams_rpc/transport/address.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include <chrono>
#include <concepts>
#include <span>
#include <string>
#include <system_error>

namespace occams_rpc {

namespace asio = boost::asio;

/// Which end of a connection a transport's start step runs for.
enum class transport_role { client, server };

/// How a transport listens.
struct listen_options {
  /// The kernel's queue of connections not accepted yet (listen(2)'s backlog).
  int backlog = 1024;
  /// SO_REUSEPORT on a TCP listener: several listeners (in this process or others, of the same
  /// user) may bind the same address and port, and the kernel spreads new connections over them
  /// (e.g. one listener per core). Every listener sharing the port must set it. Ignored for
  /// Unix sockets and the in-memory transport.
  bool reuse_port = false;
};

template <class T>
concept transport = std::copy_constructible<T> && requires {
  typename T::socket_type;    // AsyncReadStream + AsyncWriteStream, constructed from an executor
  typename T::listener_type;  // see socket_transport::listener
} && std::move_constructible<typename T::listener_type> &&
    requires(const T& t, typename T::socket_type& s, typename T::listener_type& l, const address& a,
             asio::any_io_executor ex, std::chrono::milliseconds timeout, const listen_options& options,
             transport_role role) {
  // Connects `s` (made on `ex`) within `timeout`. Its error may be the OS's own (connection
  // refused, timed out...): async_connect logs it and reports any error outside rpc_category()
  // as errc::unreachable.
  { t.connect(ex, a, timeout, s) } -> std::same_as<asio::awaitable<std::error_code>>;
  // Binds and listens on `a`; throws std::system_error on failure.
  { t.listen(ex, a, options) } -> std::same_as<typename T::listener_type>;
  // Accepts one connection onto `s`, which the caller made on the executor it chose for that
  // connection (it may differ from the listener's).
  { l.accept(s) } -> std::same_as<asio::awaitable<std::error_code>>;
  { l.local_address() } -> std::same_as<address>;
  l.close();
  // The per-connection start step, run once a connection is made or accepted, before any
  // byte of the protocol: nothing for TCP, Unix and memory; a TLS handshake.
  { t.start(s, role) } -> std::same_as<asio::awaitable<std::error_code>>;
  t.close(s);
  t.shutdown_send(s);
  // Bytes received and not yet read (0 if unknown): a read timeout spares a peer whose bytes
  // have arrived but whose read completion has not run yet.
  { t.available(s) } -> std::convertible_to<std::size_t>;
  { t.describe_peer(s) } -> std::convertible_to<std::string>;
};

/// The log text of `ec`, an error of t.start(s, ...): the transport's own account when it
/// declares `std::string describe_failure(const socket_type&, std::error_code) const`
/// (tls_transport adds OpenSSL's reason), else ec.message().
template <class T>
std::string describe_start_failure(const T& t, const typename T::socket_type& s, std::error_code ec) {
  if constexpr (requires { { t.describe_failure(s, ec) } -> std::convertible_to<std::string>; })
    return t.describe_failure(s, ec);
  else
    return ec.message();
}

/// Whether T can write without waiting: it declares
/// `std::size_t try_write(socket_type&, std::span<const asio::const_buffer>, std::error_code&) const`,
/// a non-blocking gathered write of what the socket takes now (0 bytes and no error when it
/// takes nothing). A connection's reader then writes the batch of a read's event itself, with
/// no trip through the writer coroutine and the scheduler (a posted completion and, with
/// nothing else to run, one more epoll_wait per batch); the writer writes what is left.
template <class T>
concept can_try_write = requires(const T& t, typename T::socket_type& s, std::span<const asio::const_buffer> b,
                                 std::error_code& ec) {
  { t.try_write(s, b, ec) } -> std::same_as<std::size_t>;
};

/// Whether T's start step does anything. A transport whose start completes at once with no
/// error declares `static constexpr bool has_start_step = false;` and the stream layer skips
/// the step: a server then starts an accepted connection without a coroutine or a handshake
/// timer for it. Undeclared: true (the step runs).
template <class T>
constexpr bool has_start_step() noexcept {
  if constexpr (requires { T::has_start_step; }) return T::has_start_step;
  else return true;
}

}  // namespace occams_rpc
