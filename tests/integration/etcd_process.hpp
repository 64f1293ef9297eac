// A real etcd (Debian's etcd-server, /usr/bin/etcd) for the naming tests: client and peer
// URLs on free 127.0.0.1 ports, a temporary --data-dir removed afterwards, stopped by PID.
// If it cannot start, the test FAILS (it never skips).
#pragma once

#include <occams_rpc/naming/detail/etcd_http.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace test {

inline std::uint16_t free_loopback_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

class etcd_process {
 public:
  etcd_process() {
    char tmpl[] = "/tmp/occams-etcd-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    client_port_ = free_loopback_port();
    peer_port_ = free_loopback_port();
    start();
  }
  etcd_process(const etcd_process&) = delete;
  ~etcd_process() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::uint16_t port() const { return client_port_; }
  std::string url(std::string_view prefix) const {
    return "etcd://127.0.0.1:" + std::to_string(client_port_) + std::string(prefix);
  }

  /// Starts etcd (again, on the same ports and data) and waits until it answers.
  void start() {
    std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::string log = dir_ + "/etcd.log";
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      std::freopen(log.c_str(), "a", stdout);
      std::freopen(log.c_str(), "a", stderr);
      std::string data = dir_ + "/data", cluster = "t=" + peer;
      ::execl("/usr/bin/etcd", "etcd", "--name", "t", "--data-dir", data.c_str(), "--listen-client-urls",
              client.c_str(), "--advertise-client-urls", client.c_str(), "--listen-peer-urls", peer.c_str(),
              "--initial-advertise-peer-urls", peer.c_str(), "--initial-cluster", cluster.c_str(), (char*)nullptr);
      std::_Exit(127);
    }
    for (int i = 0; i < 200; ++i) {  // up to 20 s on a loaded machine
      if (answers()) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("etcd exited at start (is etcd-server installed? see " << log << ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("etcd did not answer within 20 s (see " << log << ")");
  }
  /// SIGTERM (graceful) and wait.
  void stop() { signal_and_wait(SIGTERM); }
  /// SIGKILL: as a crash.
  void kill() { signal_and_wait(SIGKILL); }

  /// One unary request to the gateway, synchronously (test set-up); the response body.
  std::string post(std::string_view target, const std::string& body) const {
    namespace http = boost::beast::http;
    boost::asio::io_context io;
    boost::beast::tcp_stream s(io);
    s.expires_after(std::chrono::seconds(5));
    s.connect({boost::asio::ip::make_address("127.0.0.1"), client_port_});
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    return res.body();
  }

 private:
  bool answers() const {
    try {
      return post("/v3/kv/range", R"({"key":"AA=="})").find("header") != std::string::npos;
    } catch (...) {
      return false;
    }
  }
  void signal_and_wait(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  std::string dir_;
  std::uint16_t client_port_ = 0, peer_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace test
