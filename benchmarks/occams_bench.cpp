// occams_bench: the project's benchmark tool (see BENCHMARK.md and benchmarks/README.md).
//
//   occams_bench server --port P [--host H] [--threads T] [--lifetime S] [--unix PATH]
//   occams_bench client --port P --connections N --inflight W --payload B --duration S
//                       [--warmup S] [--workload NAME] [--server-pid PID] [--host H]
//                       [--unix PATH] [--api | --pool | --failover] [--threads T]
//   occams_bench client ... --calls C      (exactly C calls, no timed window: for callgrind)
//   Metrics: server or client --metrics HOST:PORT (a metrics::registry observes every call,
//            served at http://HOST:PORT/metrics from a thread of its own)
//   TLS: server --tls-cert FILE --tls-key FILE [--tls-client-ca FILE];
//        client --tls-ca FILE [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]
//
// The server echoes numeric action 1 (msg and blob), answers other numeric actions
// rpc_method_notfound, and serves the typed method Bench.echo (bytes in, the same bytes out);
// the library answers pings. With --api the client calls Bench.echo through a stub. The client keeps exactly W calls in flight
// on each of N connections and prints one JSON line; with --threads T it runs on T threads (a
// runtime::context_pool), connection i and its W loops on thread i % T.

#include "bench_main.hpp"
#include "echo_payload.hpp"
#include "measurement.hpp"
#include "server_lifetime.hpp"

#include <occams_rpc.hpp>
#include <occams_rpc/metrics/exporter.hpp>
#include <occams_rpc/transport/tls_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace asio = boost::asio;
using namespace occams_rpc;
using bench::bench_clock;

namespace {

constexpr auto tok = asio::as_tuple(asio::deferred);
constexpr std::uint32_t echo_action = 1;

}  // namespace

// The API layer's workload: bytes in, the same bytes out (msgpack bin both ways).
OCCAMS_RPC_SERVICE(Bench, (echo, bytes(bytes)));

namespace {

struct bench_service {
  bytes echo(bytes payload) { return payload; }
};

/// Serves the stream layer's action 1 and, through the router, Bench.echo.
struct bench_dispatch {
  api::router routes;
  void operator()(server_request req) const {
    if (req.has_string_action()) routes(std::move(req));
    else if (req.numeric_action() == echo_action) req.respond(req.msg(), req.blob());
    else req.respond_error(errc::method_not_found);
  }
};

/// --metrics ADDR: a registry that observes every call, served by an exporter on a thread of
/// its own (a scrape never runs on a benchmark thread). Off (no observer) without the flag.
struct metrics_endpoint {
  metrics::registry registry;
  asio::io_context io{1};
  std::optional<metrics::exporter> exporter;
  std::thread thread;

  explicit metrics_endpoint(const address& where) {
    exporter.emplace(io.get_executor(), registry, metrics::exporter_config{.log = logger::to_stderr(log_level::warn)});
    fmt::print(stderr, "occams_bench: metrics on {}\n", exporter->listen(where).to_string());
    thread = std::thread([this] { io.run(); });
  }
  ~metrics_endpoint() {
    io.stop();
    thread.join();
  }
};

/// The --metrics address, or why it is wrong (a usage error).
std::optional<address> metrics_address(const bench::options& opt, bool& bad) {
  bad = false;
  if (opt.metrics.empty()) return std::nullopt;
  address a;
  if (parse_address(opt.metrics, a) || a.is_unix()) {
    fmt::print(stderr, "occams_bench: --metrics needs host:port, not '{}'\n", opt.metrics);
    bad = true;
    return std::nullopt;
  }
  return a;
}

// --- server ---------------------------------------------------------------------------

/// --threads T: the server on a runtime::context_pool of T threads (T = 1 too: one thread
/// besides main, as before); its one listener hands connections to the threads in turn.
template <class Transport>
int serve(const bench::options& opt, Transport transport, const std::optional<address>& metrics_on) {
  std::optional<metrics_endpoint> metrics;  // outlives the server
  if (metrics_on) metrics.emplace(*metrics_on);
  runtime::context_pool pool(opt.threads);
  // A short close wait: at the end of a run nothing should still be in flight.
  server_config cfg{.close_wait = std::chrono::seconds(2)};
  bench_dispatch dispatch;
  dispatch.routes.add<Bench>(bench_service{});
  if (metrics) {
    metrics->registry.declare_methods(dispatch.routes);
    cfg.observer = &metrics->registry;
  }
  basic_server<bench_dispatch, Transport> srv(pool.executors(), std::move(dispatch), cfg,
                                              logger::to_stderr(log_level::warn), std::move(transport));
  if (opt.has_tcp()) fmt::print("listening on {}\n", srv.listen(address::tcp(opt.host, *opt.port)).to_string());
  if (opt.has_unix()) fmt::print("listening on {}\n", srv.listen(address::unix_socket(opt.unix_path)).to_string());
  std::fflush(stdout);

  bench::server_lifetime lifetime(pool.context(0), opt.lifetime, [&] {
    srv.async_shutdown([&](std::error_code) { pool.stop(); });
  });
  pool.start();
  pool.join();
  return bench::exit_ok;
}

int run_server(const bench::options& opt) {
  bool bad = false;
  auto metrics_on = metrics_address(opt, bad);
  if (bad) return bench::exit_usage;
  if (opt.tls_cert.empty()) return serve(opt, socket_transport{}, metrics_on);
  return serve(opt, tls_transport::server(tls_server_options::from_files(opt.tls_cert, opt.tls_key, opt.tls_client_ca)),
               metrics_on);
}

// --- client ---------------------------------------------------------------------------

// How to make one call. A Call has
//   auto start(std::span<const char> payload);     // an operation for co_await (deferred)
//   bool finish(Outcome&, echo_payload&, std::string& why);  // checks what came back
// and the request loop below is the same for every layer. API mode adds one Call type.

/// One call of numeric action 1 on the stream layer, the payload as its blob. The response
/// goes into storage this loop owns (async_call_into), so steady-state calls allocate nothing.
template <class Stream>
struct stream_echo_call {
  Stream* client;
  call_response response;

  auto start(std::span<const char> payload) { return client->async_call_into(echo_action, {}, payload, response, tok); }
  bool finish(std::tuple<std::error_code>& outcome, bench::echo_payload& payload, std::string& why) {
    auto& [ec] = outcome;
    if (ec) {
      why = fmt::format("call failed: {}", ec.message());
      return false;
    }
    return response.msg.empty() ? payload.check(response.blob.span(), why)
                                : (why = fmt::format("echo carries a {}-byte msg, expected none", response.msg.size()), false);
  }
};

/// One call of Bench.echo through a typed stub, the payload as its argument.
template <class Stream>
struct api_echo_call {
  api::stub<Bench, Stream> stub;

  auto start(std::span<const char> payload) { return stub.echo(payload); }
  bool finish(Bench::echo::result_type& outcome, bench::echo_payload& payload, std::string& why) {
    if (!outcome) {
      why = fmt::format("call failed: {}", outcome.framework_error().message());
      return false;
    }
    auto& got = *outcome;
    return payload.check(std::span<const char>(got.data(), got.size()), why);
  }
};

/// One call of action 1 through a client_pool (which has no async_call_into): the response
/// buffers go in with each call and come back with its answer, so they are reused.
template <class Pool>
struct pool_echo_call {
  Pool* pool;
  call_response response;

  auto start(std::span<const char> payload) {
    return pool->async_call(echo_action, {}, payload, std::move(response), tok);
  }
  bool finish(std::tuple<std::error_code, call_response>& outcome, bench::echo_payload& payload, std::string& why) {
    auto& [ec, r] = outcome;
    response = std::move(r);
    if (ec) {
      why = fmt::format("call failed: {}", ec.message());
      return false;
    }
    return response.msg.empty() ? payload.check(response.blob.span(), why)
                                : (why = fmt::format("echo carries a {}-byte msg, expected none", response.msg.size()), false);
  }
};

struct client_run {
  bench::measurement m;
  bench::echo_payload payload;
  std::uint64_t live_loops = 0;
  explicit client_run(const bench::options& o) : m(o), payload(o.payload) {}
};

/// One of the W loops of a connection: call, check, record, until the window ends.
template <class Call>
asio::awaitable<void> request_loop(client_run& run, Call call) {
  ++run.live_loops;
  auto start = bench_clock::now();
  while (run.m.issuing()) {
    run.m.sent();
    auto outcome = co_await call.start(run.payload.bytes());
    run.m.received();
    std::string why;
    if (!call.finish(outcome, run.payload, why)) {
      if (!run.m.finished()) run.m.fail(why);  // after the drain, connections are cut on purpose
      break;
    }
    auto now = bench_clock::now();  // also the next call's start: one clock read per call
    run.m.record(start, now);
    start = now;
  }
  --run.live_loops;
}

/// The client's --metrics registry (null without the flag), set by run_client.
call_observer* client_observer = nullptr;

/// Client thread k of T: connections k, k + T, k + 2T, ... and their loops, all on this
/// thread's executor, with this thread's measured window (`run`).
template <class Transport>
asio::awaitable<int> run_stream_client(const bench::options& opt, Transport transport, client_run& run, std::uint32_t k) {
  using stream = basic_client_stream<Transport>;
  auto ex = co_await asio::this_coro::executor;
  address to = opt.has_unix() ? address::unix_socket(opt.unix_path) : address::tcp(opt.host, *opt.port);
  client_config cfg{.window = opt.inflight};
  cfg.observer = client_observer;
  // OCCAMS_BENCH_EXTENSIONS=1: the client negotiates the v1 extensions, so every request
  // carries its deadline (measures their cost; docs/protocol.md, "v1 extensions").
  cfg.extensions = std::getenv("OCCAMS_BENCH_EXTENSIONS") != nullptr;

  std::deque<stream> clients;  // stable addresses for the loops
  for (std::uint32_t i = k; i < opt.connections; i += opt.threads) {
    auto [ec, c] = co_await stream::async_connect(transport, ex, to, cfg, logger::to_stderr(log_level::warn), tok);
    if (ec) {
      fmt::print(stderr, "occams_bench: cannot connect to {}: {}\n", to.to_string(), ec.message());
      co_return bench::exit_failed;
    }
    auto [pec] = co_await c.async_ping(tok);
    if (pec) {
      fmt::print(stderr, "occams_bench: ping failed: {}\n", pec.message());
      co_return bench::exit_failed;
    }
    clients.push_back(std::move(c));
  }

  for (auto& c : clients)
    for (std::uint32_t w = 0; w < opt.inflight; ++w)
      if (opt.api) asio::co_spawn(ex, request_loop(run, api_echo_call<stream>{api::stub<Bench, stream>(c)}), asio::detached);
      else asio::co_spawn(ex, request_loop(run, stream_echo_call<stream>{&c, {}}), asio::detached);

  bool drained = co_await run.m.run();
  asio::steady_timer timer(ex);
  if (!drained)
    for (auto& c : clients) c.abort();  // fails what is left; the loops then end
  while (run.live_loops > 0) {
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(tok);
  }
  for (auto& c : clients) co_await c.async_close(tok);
  co_return bench::exit_ok;
}

/// Whether the pool's connections are up: all N of a client_pool; a failover_pool's one
/// address (its other connections come up during the warm-up).
template <class Pool>
bool pool_ready(Pool& pool, std::uint32_t connections) {
  if constexpr (requires { pool.healthy_connections(); }) return pool.healthy_connections() >= connections;
  else return !pool.healthy_addresses().empty();
}

/// --pool, client thread k of T: once the pool's N connections are up, W loops per connection
/// of this thread's share (i % T == k), calling the pool from this thread; the last thread
/// to finish closes the pool.
template <class Pool>
asio::awaitable<int> run_pool_client(const bench::options& opt, Pool& pool, client_run& run, std::uint32_t k,
                                     std::atomic<std::uint32_t>& running) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  for (int i = 0; i < 10'000 && !pool_ready(pool, opt.connections); ++i) {
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(tok);
  }
  int status = bench::exit_ok;
  if (!pool_ready(pool, opt.connections)) {
    fmt::print(stderr, "occams_bench: the pool did not connect\n");
    status = bench::exit_failed;
  } else {
    for (std::uint32_t i = k; i < opt.connections; i += opt.threads)
      for (std::uint32_t w = 0; w < opt.inflight; ++w)
        asio::co_spawn(ex, request_loop(run, pool_echo_call<Pool>{&pool, {}}), asio::detached);
    co_await run.m.run();
    while (run.live_loops > 0) {  // the pool's calls all complete: no abort needed
      timer.expires_after(std::chrono::milliseconds(1));
      co_await timer.async_wait(tok);
    }
  }
  if (running.fetch_sub(1) == 1) co_await pool.async_close(tok);
  co_return status;
}

/// Makes the --pool client's pool: on the one executor through the one-executor constructor
/// (so that this file also builds against a client_pool that has only that one, for
/// side-by-side runs), else over every executor.
template <class Pool, class... Args>
void make_pool(std::optional<Pool>& pool, const std::vector<asio::any_io_executor>& executors, Args&&... args) {
  if (executors.size() == 1) pool.emplace(executors.front(), std::forward<Args>(args)...);
  else if constexpr (std::is_constructible_v<Pool, std::vector<asio::any_io_executor>, Args...>)
    pool.emplace(executors, std::forward<Args>(args)...);
  else throw std::runtime_error("this client_pool runs on one executor only (no --threads with --pool)");
}

/// --threads 1: everything on the main thread, as before. --threads T: a runtime::context_pool
/// of T threads, thread k running run_stream_client(k) (or run_pool_client); thread 0's window
/// reports for all.
int run_client(const bench::options& opt) {
  bool bad = false;
  auto metrics_on = metrics_address(opt, bad);
  if (bad) return bench::exit_usage;
  std::optional<metrics_endpoint> metrics;  // outlives the streams
  if (metrics_on) client_observer = &metrics.emplace(*metrics_on).registry;
  std::vector<std::unique_ptr<client_run>> runs;
  for (std::uint32_t k = 0; k < opt.threads; ++k) runs.push_back(std::make_unique<client_run>(opt));
  std::vector<int> status(opt.threads, bench::exit_failed);
  std::optional<tls_client_options> tls;
  if (!opt.tls_ca.empty()) tls = tls_client_options::from_files(opt.tls_ca, opt.tls_cert, opt.tls_key, opt.tls_server_name);
  std::optional<asio::io_context> io;
  std::optional<runtime::context_pool> threads;
  std::vector<asio::any_io_executor> executors;
  if (opt.threads == 1) executors.push_back(io.emplace(1).get_executor());
  else executors = threads.emplace(opt.threads, runtime::context_pool_options{.name_prefix = "bench-client-"}).executors();

  address to = opt.has_unix() ? address::unix_socket(opt.unix_path) : address::tcp(opt.host, *opt.port);
  client_config cfg{.window = opt.inflight};
  cfg.observer = client_observer;
  pool_config pcfg{.connections = opt.connections};
  std::optional<client_pool> plain_pool;
  std::optional<basic_client_pool<tls_transport>> tls_pool;
  std::optional<failover_pool> fo_pool;
  std::atomic<std::uint32_t> running{opt.threads};
  for (std::uint32_t k = 0; k < opt.threads; ++k) {
    auto done = [&status, k](std::exception_ptr e, int s) {
      if (e) std::rethrow_exception(e);
      status[k] = s;
    };
    auto& ex = executors[k];
    if (opt.failover && !tls) {
      if (!fo_pool)
        make_pool(fo_pool, executors, std::vector<address>{to}, cfg, failover_config{.pool = pcfg},
                  logger::to_stderr(log_level::warn));
      asio::co_spawn(ex, run_pool_client(opt, *fo_pool, *runs[k], k, running), done);
    } else if (opt.failover) {
      throw std::runtime_error("--failover runs without TLS");
    } else if (opt.pool && !tls) {
      if (!plain_pool) make_pool(plain_pool, executors, to, cfg, pcfg, logger::to_stderr(log_level::warn));
      asio::co_spawn(ex, run_pool_client(opt, *plain_pool, *runs[k], k, running), done);
    } else if (opt.pool) {
      if (!tls_pool) make_pool(tls_pool, executors, to, cfg, pcfg, logger::to_stderr(log_level::warn), tls_transport::client(*tls));
      asio::co_spawn(ex, run_pool_client(opt, *tls_pool, *runs[k], k, running), done);
    } else if (!tls) {
      asio::co_spawn(ex, run_stream_client(opt, socket_transport{}, *runs[k], k), done);
    } else {
      asio::co_spawn(ex, run_stream_client(opt, tls_transport::client(*tls), *runs[k], k), done);
    }
  }
  if (io) {
    io->run();
  } else {
    threads->start();
    threads->finish();
    threads->join();
  }
  for (int s : status)
    if (s != bench::exit_ok) return s;
  for (std::uint32_t k = 1; k < opt.threads; ++k) runs[0]->m.absorb(runs[k]->m);
  return runs[0]->m.conclude(opt.failover ? "occams-failover" : opt.pool ? "occams-pool" : "occams");
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, "occams_bench", "", run_server, run_client);
}
