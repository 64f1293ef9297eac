// Plain POSIX sockets for raw_bench: TCP or Unix-domain, non-blocking, owned by one fd. No
// library transport and no Asio socket: the ceiling must not depend on the code it is the
// ceiling for, nor on a reactor's per-operation cost.
#pragma once

#include "bench_options.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace bench {

/// Owns one file descriptor.
class raw_fd {
 public:
  raw_fd() = default;
  explicit raw_fd(int fd) noexcept : fd_(fd) {}
  raw_fd(raw_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  raw_fd& operator=(raw_fd&& o) noexcept {
    if (this != &o) { reset(); fd_ = std::exchange(o.fd_, -1); }
    return *this;
  }
  ~raw_fd() { reset(); }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

[[noreturn]] inline void throw_errno(const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

/// Small frames must leave at once, and reads and writes must report "would block".
inline void configure(int fd, bool tcp) {
  int one = 1;
  if (tcp && ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) throw_errno("TCP_NODELAY");
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno("O_NONBLOCK");
}

inline sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) throw std::runtime_error("unix socket path too long");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

/// The first address of host:port (numeric or by name).
inline addrinfo* resolve(const std::string& host, std::uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0 || !res)
    throw std::runtime_error(fmt::format("resolve {}:{}: {}", host, port, ::gai_strerror(rc)));
  return res;
}

/// Connects (blocking) to the Unix socket if the options name one, else to host:port; returns
/// the socket configured.
inline raw_fd raw_connect(const options& o) {
  if (o.has_unix()) {
    raw_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) throw_errno("socket");
    auto a = unix_address(o.unix_path);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw_errno("connect " + o.unix_path);
    configure(s.get(), false);
    return s;
  }
  addrinfo* res = resolve(o.host, *o.port, false);
  raw_fd s(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int rc = s ? ::connect(s.get(), res->ai_addr, res->ai_addrlen) : -1;
  ::freeaddrinfo(res);
  if (rc != 0) throw_errno(fmt::format("connect {}:{}", o.host, *o.port));
  configure(s.get(), true);
  return s;
}

/// A non-blocking TCP listener on host:port; `reuse_port`: SO_REUSEPORT, one listener per
/// thread on the same port.
inline raw_fd raw_listen_tcp(const options& o, std::uint16_t port, bool reuse_port = false) {
  addrinfo* res = resolve(o.host, port, true);
  raw_fd s(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  int one = 1;
  bool ok = s && ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            (!reuse_port || ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0) &&
            ::bind(s.get(), res->ai_addr, res->ai_addrlen) == 0 && ::listen(s.get(), SOMAXCONN) == 0;
  ::freeaddrinfo(res);
  if (!ok) throw_errno(fmt::format("listen on {}:{}", o.host, port));
  return s;
}

inline raw_fd raw_listen_unix(const options& o) {
  ::unlink(o.unix_path.c_str());  // a socket file left by an earlier run
  raw_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  auto a = unix_address(o.unix_path);
  if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(s.get(), SOMAXCONN) != 0)
    throw_errno("listen on " + o.unix_path);
  return s;
}

/// The port a TCP listener is bound to (the kernel's choice for port 0).
inline std::uint16_t bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

}  // namespace bench
