// Plain Asio sockets for raw_bench: TCP or Unix-domain, both held as a generic stream socket.
// No library transport: the ceiling must not depend on the code it is the ceiling for.
#pragma once

#include "bench_options.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include <string>

namespace bench {

namespace asio = boost::asio;
using raw_socket = asio::generic::stream_protocol::socket;
using raw_acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

/// Small frames must leave at once, and reads below must be able to report "would block".
inline void configure(raw_socket& s, bool tcp) {
  if (tcp) s.set_option(asio::ip::tcp::no_delay(true));
  s.non_blocking(true);
}

/// Connects to the Unix socket if the options name one, else to host:port.
inline raw_socket raw_connect(asio::io_context& io, const options& o) {
  if (o.has_unix()) {
    asio::local::stream_protocol::socket s(io);
    s.connect(asio::local::stream_protocol::endpoint(o.unix_path));
    raw_socket g(std::move(s));
    configure(g, false);
    return g;
  }
  asio::ip::tcp::socket s(io);
  asio::ip::tcp::resolver resolver(io);
  asio::connect(s, resolver.resolve(o.host, std::to_string(*o.port)));
  raw_socket g(std::move(s));
  configure(g, true);
  return g;
}

/// `port` overrides the options' (the real port of a first listener bound to port 0);
/// `reuse_port`: SO_REUSEPORT, one listener per thread on the same port.
inline raw_acceptor raw_listen_tcp(asio::io_context& io, const options& o, std::uint16_t port, bool reuse_port = false) {
  asio::ip::tcp::resolver resolver(io);
  asio::ip::tcp::endpoint ep = *resolver.resolve(o.host, std::to_string(port)).begin();
  raw_acceptor a(io);
  asio::generic::stream_protocol::endpoint g(ep);
  a.open(g.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  if (reuse_port) a.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  a.bind(g);
  a.listen();
  return a;
}

inline raw_acceptor raw_listen_unix(asio::io_context& io, const options& o) {
  ::unlink(o.unix_path.c_str());  // a socket file left by an earlier run
  asio::generic::stream_protocol::endpoint g(asio::local::stream_protocol::endpoint(o.unix_path));
  raw_acceptor a(io);
  a.open(g.protocol());
  a.bind(g);
  a.listen();
  return a;
}

}  // namespace bench
