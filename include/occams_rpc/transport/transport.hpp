// The transport concept: what the stream layer needs from a byte stream and its listener.
// A new transport (TLS, QUIC, RDMA...) is one adapter type modelling `transport`.
#pragma once

#include <occams_rpc/transport/address.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <concepts>
#include <string>
#include <system_error>

namespace occams_rpc {

namespace asio = boost::asio;

template <class T>
concept transport = requires {
  typename T::socket_type;    // AsyncReadStream + AsyncWriteStream with close() and shutdown
  typename T::listener_type;  // see socket_transport::listener
} && requires(typename T::socket_type& s, typename T::listener_type& l, const address& a,
              asio::any_io_executor ex, std::chrono::milliseconds timeout) {
  // Connects, failing with errc::unreachable after `timeout`.
  { T::connect(ex, a, timeout, s) } -> std::same_as<asio::awaitable<std::error_code>>;
  { l.accept(s) } -> std::same_as<asio::awaitable<std::error_code>>;
  { l.local_address() } -> std::same_as<address>;
  l.close();
  T::close(s);
  T::shutdown_send(s);
  // Bytes received and not yet read (0 if unknown): a read timeout spares a peer whose bytes
  // have arrived but whose read completion has not run yet.
  { T::available(s) } -> std::convertible_to<std::size_t>;
  { T::describe_peer(s) } -> std::convertible_to<std::string>;
};

}  // namespace occams_rpc
