// raw_bench: the ceiling for occams_bench. The same flags and JSON line ("system":"raw"),
// over a hand-written pipelined echo with the PROTOCOL.md frame headers: no codec, no
// library connection classes, no Asio sockets: epoll, read and writev (raw_loop.hpp,
// raw_pipe.hpp). The server on --threads T threads, each with its own SO_REUSEPORT listener;
// the client on --threads T threads, connection i on thread i % T. Asio runs only the clock:
// the measured windows and the lifetime.

#include "bench_main.hpp"
#include "echo_payload.hpp"
#include "measurement.hpp"
#include "raw_client.hpp"
#include "raw_loop.hpp"
#include "raw_server.hpp"
#include "raw_socket.hpp"
#include "server_lifetime.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;

namespace {

/// One server thread: its loop, its listener(s) and its connections, touched only by the
/// thread that runs it (the same shape as the library's server on a context pool).
struct server_thread {
  asio::io_context io{1};
  bench::raw_loop loop;
  bench::raw_server srv{loop};
  bool stop = false;
  void close() {
    srv.close_all();
    stop = true;
  }
  void run() { loop.run(io, stop); }
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
      auto l = bench::raw_listen_tcp(opt, port, reuse_port);
      port = bench::bound_port(l.get());  // port 0: the others join the port the first one got
      t->srv.listen(std::move(l), true);
    }
    fmt::print("listening on {}:{}\n", opt.host, port);  // the real port for --port 0
  }
  if (opt.has_unix()) {
    threads[0]->srv.listen(bench::raw_listen_unix(opt), false);
    fmt::print("listening on unix:{}\n", opt.unix_path);
  }
  std::fflush(stdout);
  bench::server_lifetime lifetime(threads[0]->io, opt.lifetime, [&] {
    for (auto& t : threads) asio::post(t->io, [one = t.get()] { one->close(); });
  });
  std::vector<std::thread> runners;
  for (std::size_t i = 1; i < threads.size(); ++i) runners.emplace_back([one = threads[i].get()] { one->run(); });
  threads[0]->run();
  for (auto& r : runners) r.join();
  return bench::exit_ok;
}

/// One client thread: its clock, its loop, its connections (i % T == its index) and its own
/// measured window, touched only by the thread that runs it.
struct client_thread {
  asio::io_context io{1};
  bench::raw_loop loop;
  bench::measurement m;
  bench::echo_payload payload;
  std::vector<std::unique_ptr<bench::raw_client_connection>> conns;  // outlive the loop
  bool done = false;
  explicit client_thread(const bench::options& opt) : m(opt), payload(opt.payload) {}
  void run() {
    for (auto& c : conns) c->begin();
    asio::co_spawn(io, m.run(), [this](std::exception_ptr e, bool) {
      for (auto& c : conns) c->close();
      done = true;
      if (e) std::rethrow_exception(e);
    });
    loop.run(io, done);
  }
};

/// --threads T: T threads, thread k with connections k, k + T, ...; thread 0's window reports
/// for all (the same shape as occams_bench's client).
int run_client(const bench::options& opt) {
  std::vector<std::unique_ptr<client_thread>> threads;
  for (std::uint32_t k = 0; k < opt.threads; ++k) threads.push_back(std::make_unique<client_thread>(opt));
  for (std::uint32_t i = 0; i < opt.connections; ++i) {
    auto& t = *threads[i % opt.threads];
    t.conns.push_back(std::make_unique<bench::raw_client_connection>(t.loop, bench::raw_connect(opt), opt.inflight, t.m, t.payload));
  }
  std::vector<std::thread> runners;
  for (std::size_t k = 1; k < threads.size(); ++k) runners.emplace_back([one = threads[k].get()] { one->run(); });
  threads[0]->run();
  for (auto& r : runners) r.join();
  for (std::size_t k = 1; k < threads.size(); ++k) threads[0]->m.absorb(threads[k]->m);
  return threads[0]->m.conclude("raw");
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, "raw_bench", "the raw baseline has no API layer", run_server, run_client);
}
