#pragma once

#include <occams_rpc/transport/socket_transport.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace occams_rpc {
namespace detail {

inline void configure_socket(socket_transport::socket_type& s, bool is_tcp) {
  boost::system::error_code ignored;
  if (is_tcp) s.set_option(asio::ip::tcp::no_delay(true), ignored);
}

inline address to_address(const socket_transport::protocol_type::endpoint& ep, const address& asked) {
  if (asked.is_unix()) return asked;
  const sockaddr* sa = ep.data();
  char text[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return address::tcp(text, ntohs(in->sin_port));
  }
  auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
  ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
  return address::tcp(text, ntohs(in6->sin6_port));
}

/// Removes a Unix socket file that nobody listens on any more.
inline void remove_stale_unix_socket(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  asio::io_context probe_ctx;
  asio::local::stream_protocol::socket probe(probe_ctx);
  boost::system::error_code ec;
  probe.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (ec == asio::error::connection_refused) ::unlink(path.c_str());
}

/// Resolves and tries each endpoint in turn (the caller races this against a timer).
inline asio::awaitable<boost::system::error_code> connect_attempt(asio::any_io_executor ex, const address& to,
                                                                  socket_transport::socket_type& s) {
  using protocol_type = socket_transport::protocol_type;
  if (to.is_unix()) {
    auto [ec] = co_await s.async_connect(asio::local::stream_protocol::endpoint(to.path),
                                         asio::as_tuple(asio::use_awaitable));
    co_return ec;
  }
  asio::ip::tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(to.host, std::to_string(to.port),
                                                        asio::ip::tcp::resolver::numeric_service,
                                                        asio::as_tuple(asio::use_awaitable));
  if (rec) co_return rec;
  boost::system::error_code last = asio::error::host_not_found;
  for (const auto& entry : results) {
    boost::system::error_code ignored;
    s.close(ignored);
    auto [ec] = co_await s.async_connect(protocol_type::endpoint(entry.endpoint()), asio::as_tuple(asio::use_awaitable));
    if (!ec) co_return ec;
    last = ec;
  }
  co_return last;
}

}  // namespace detail

OCCAMS_RPC_DECL socket_transport::listener::listener(asio::any_io_executor ex, const address& where,
                                                     const listen_options& options)
    : acceptor_(ex), local_(where) {
  protocol_type::endpoint ep;
  if (where.is_unix()) {
    detail::remove_stale_unix_socket(where.path);
    ep = asio::local::stream_protocol::endpoint(where.path);
  } else {
    asio::io_context resolve_ctx;
    asio::ip::tcp::resolver resolver(resolve_ctx);
    auto results = resolver.resolve(where.host, std::to_string(where.port),
                                    asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service);
    ep = results.begin()->endpoint();
  }
  acceptor_.open(ep.protocol());
  if (!where.is_unix()) {
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    if (options.reuse_port) acceptor_.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  }
  acceptor_.bind(ep);
  acceptor_.listen(options.backlog);
  local_ = detail::to_address(acceptor_.local_endpoint(), where);
}

OCCAMS_RPC_DECL socket_transport::listener::~listener() {
  if (acceptor_.is_open()) close();
}

OCCAMS_RPC_DECL asio::awaitable<std::error_code> socket_transport::listener::accept(socket_type& out) {
  // Onto `out` itself: the new socket is registered with out's context, not the acceptor's.
  auto [ec] = co_await acceptor_.async_accept(out, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return ec;
  detail::configure_socket(out, !local_.is_unix());
  co_return std::error_code{};
}

OCCAMS_RPC_DECL void socket_transport::listener::close() {
  boost::system::error_code ignored;
  bool was_open = acceptor_.is_open();
  acceptor_.close(ignored);
  if (was_open && local_.is_unix()) ::unlink(local_.path.c_str());
}

OCCAMS_RPC_DECL asio::awaitable<std::error_code> socket_transport::connect(asio::any_io_executor ex, const address& to,
                                                                           std::chrono::milliseconds timeout,
                                                                           socket_type& out) const {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(ex, timeout);
  socket_type s(ex);
  auto result = co_await (detail::connect_attempt(ex, to, s) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  // The OS's reason as it is: the stream layer logs it and reports errc::unreachable.
  if (result.index() == 1) co_return make_error_code(std::errc::timed_out);
  if (auto ec = std::get<0>(result); ec.failed()) co_return ec;
  detail::configure_socket(s, !to.is_unix());
  out = std::move(s);
  co_return std::error_code{};
}

OCCAMS_RPC_DECL asio::awaitable<std::error_code> socket_transport::start(socket_type&, transport_role) const {
  co_return std::error_code{};
}

OCCAMS_RPC_DECL std::string socket_transport::describe_peer(const socket_type& s) const {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  if (ep.protocol().family() == AF_UNIX) {
    auto local = s.local_endpoint(ec);
    auto* sun = reinterpret_cast<const sockaddr_un*>(local.data());
    return ec ? "unix:?" : std::string("unix:") + sun->sun_path;
  }
  return detail::to_address(ep, address{}).to_string();
}

OCCAMS_RPC_DECL void socket_transport::close(socket_type& s) const noexcept {
  boost::system::error_code ignored;
  s.close(ignored);
}

OCCAMS_RPC_DECL std::size_t socket_transport::available(socket_type& s) const noexcept {
  boost::system::error_code ec;
  std::size_t n = s.available(ec);
  return ec ? 0 : n;
}

OCCAMS_RPC_DECL void socket_transport::shutdown_send(socket_type& s) const noexcept {
  boost::system::error_code ignored;
  s.shutdown(asio::socket_base::shutdown_send, ignored);
}

}  // namespace occams_rpc
