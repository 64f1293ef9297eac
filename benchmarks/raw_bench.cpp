// raw_bench: the ceiling for occams_bench. The same flags and JSON line ("system":"raw"),
// over a hand-written pipelined echo with the PROTOCOL.md frame headers: no codec, no
// library connection classes, plain Asio callbacks; the server on --threads T threads, each
// with its own SO_REUSEPORT listener; the client on --threads T threads, connection i on
// thread i % T.

#include "bench_main.hpp"
#include "echo_payload.hpp"
#include "measurement.hpp"
#include "raw_client.hpp"
#include "raw_server.hpp"
#include "raw_socket.hpp"
#include "server_lifetime.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <thread>
#include <cstdint>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace asio = boost::asio;

namespace {

/// The port a TCP acceptor is bound to (the kernel's choice for port 0).
std::uint16_t bound_port(bench::raw_acceptor& a) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(a.native_handle(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

/// One server thread: its io_context, its listener(s) and its connections, touched only by
/// the thread that runs it (the same shape as the library's server on a context pool).
struct server_thread {
  asio::io_context io{1};
  bench::raw_server srv;
  std::optional<bench::raw_acceptor> tcp, local;
  void close() {
    if (tcp) tcp->close();
    if (local) local->close();
    srv.close_all();
    io.stop();
  }
};

/// --threads T: T threads, each with its own SO_REUSEPORT listener on the one TCP port (the
/// kernel spreads connections over them); the Unix socket, if any, on thread 0 only.
int run_server(const bench::options& opt) {
  std::vector<std::unique_ptr<server_thread>> threads;
  for (std::uint32_t i = 0; i < opt.threads; ++i) threads.push_back(std::make_unique<server_thread>());
  bool reuse_port = opt.threads > 1;
  if (opt.has_tcp()) {
    std::uint16_t port = *opt.port;
    for (auto& t : threads) {
      t->tcp.emplace(bench::raw_listen_tcp(t->io, opt, port, reuse_port));
      port = bound_port(*t->tcp);  // port 0: the others join the port the first one got
      t->srv.accept_on(*t->tcp, true);
    }
    fmt::print("listening on {}:{}\n", opt.host, port);  // the real port for --port 0
  }
  if (opt.has_unix()) {
    auto& t = *threads[0];
    t.local.emplace(bench::raw_listen_unix(t.io, opt));
    t.srv.accept_on(*t.local, false);
    fmt::print("listening on unix:{}\n", opt.unix_path);
  }
  std::fflush(stdout);
  bench::server_lifetime lifetime(threads[0]->io, opt.lifetime, [&] {
    for (auto& t : threads) asio::post(t->io, [one = t.get()] { one->close(); });
  });
  std::vector<std::thread> runners;
  for (std::size_t i = 1; i < threads.size(); ++i) runners.emplace_back([one = threads[i].get()] { one->io.run(); });
  threads[0]->io.run();
  for (auto& r : runners) r.join();
  return bench::exit_ok;
}

/// One client thread: its io_context, its connections (i % T == its index) and its own
/// measured window.
struct client_thread {
  asio::io_context io{1};
  bench::measurement m;
  bench::echo_payload payload;
  std::vector<std::unique_ptr<bench::raw_client_connection>> conns;  // outlive io.run()
  client_thread(const bench::options& opt) : m(opt), payload(opt.payload) {}
};

/// --threads T: T threads, thread k with connections k, k + T, ...; thread 0's window reports
/// for all (the same shape as occams_bench's client).
int run_client(const bench::options& opt) {
  std::vector<std::unique_ptr<client_thread>> threads;
  for (std::uint32_t k = 0; k < opt.threads; ++k) threads.push_back(std::make_unique<client_thread>(opt));
  for (std::uint32_t i = 0; i < opt.connections; ++i) {
    auto& t = *threads[i % opt.threads];
    t.conns.push_back(std::make_unique<bench::raw_client_connection>(bench::raw_connect(t.io, opt), opt.inflight, t.m, t.payload));
  }
  for (auto& t : threads) {
    for (auto& c : t->conns) c->begin();
    asio::co_spawn(t->io, t->m.run(), [one = t.get()](std::exception_ptr e, bool) {
      for (auto& c : one->conns) c->close();  // the loops end with the pending reads
      if (e) std::rethrow_exception(e);
    });
  }
  std::vector<std::thread> runners;
  for (std::size_t k = 1; k < threads.size(); ++k) runners.emplace_back([one = threads[k].get()] { one->io.run(); });
  threads[0]->io.run();
  for (auto& r : runners) r.join();
  for (std::size_t k = 1; k < threads.size(); ++k) threads[0]->m.absorb(threads[k]->m);
  return threads[0]->m.conclude("raw");
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, "raw_bench", "the raw baseline has no API layer", run_server, run_client);
}
