// calculator_server: the typed API's server side (see calculator_services.hpp).
//
//   calculator_server [--listen ADDR] [--register etcd://HOST:PORT/PREFIX [--ttl S]]
//                     [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]] [--metrics ADDR]
//
// Serves CalService (inc, add, div) and EchoService (repeat, io_error) with one api::router,
// and the reflection service rpc_reflection (`occams list ADDR` prints the listing).
// ADDR is "host:port", "[v6]:port", "/path" or "unix:/path" (default 127.0.0.1:0, a free
// port). With --tls-cert and --tls-key it serves over TLS (docs/tls.md); --tls-client-ca also
// requires every client to present a certificate that CA signed (mutual TLS). Prints exactly
// one line to stdout, "listening on <address>", then serves until SIGINT or SIGTERM, and shuts
// down gracefully. With --register it registers its address under PREFIX in etcd with a lease
// of --ttl seconds (default 10) kept alive, and deregisters first when it shuts down
// (docs/discovery.md); a crashed server's key goes when its lease expires. With --metrics
// host:port it also serves Prometheus metrics at http://ADDR/metrics (docs/observability.md),
// on a thread of their own, and prints a second line, "metrics on <address>".

#include "calculator_services.hpp"

#include <occams_rpc/metrics/exporter.hpp>
#include <occams_rpc/naming/etcd_registration.hpp>
#include <occams_rpc/naming/url.hpp>
#include <occams_rpc/transport/tls_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <fmt/format.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace asio = boost::asio;
using namespace occams_rpc;

namespace {

constexpr std::string_view usage =
    "usage: calculator_server [--listen ADDR] [--register etcd://HOST:PORT/PREFIX [--ttl S]]\n"
    "                         [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]] [--metrics ADDR]\n"
    "  ADDR: host:port, [v6]:port, /path or unix:/path (default 127.0.0.1:0)\n"
    "  --register URL        register the address under PREFIX in etcd (lease + keep-alive)\n"
    "  --ttl S               the lease's time to live in seconds (default 10)\n"
    "  --tls-cert FILE       serve over TLS with this PEM certificate chain\n"
    "  --tls-key FILE        and this PEM private key\n"
    "  --tls-client-ca FILE  mutual TLS: clients need a certificate this CA signed\n"
    "  --metrics ADDR        serve Prometheus metrics at http://ADDR/metrics (host:port; port 0: a free one)\n";

struct registration_options {
  std::string url;  // empty: no registration
  std::int64_t ttl = 10;
};

/// Serves until SIGINT or SIGTERM through `transport`.
template <class Transport>
void serve(const address& where, const registration_options& reg_opt, Transport transport,
           const std::optional<address>& metrics_on) {
  asio::io_context io(1);
  auto log = logger::to_stderr(log_level::warn);
  // One router serves both services; it routes "CalService.add" to calculator::add. With
  // reflection, `occams list ADDR` shows their methods and signatures.
  api::router routes(log);
  routes.add<CalService>(calculator{}).add<EchoService>(echo{}).enable_reflection();
  metrics::registry registry({.log = log});
  registry.declare_methods(routes);  // other method names count as method="unknown"
  server_config cfg;
  if (metrics_on) cfg.observer = &registry;
  basic_server<api::router, Transport> srv(io.get_executor(), std::move(routes), cfg, log, std::move(transport));
  address local = srv.listen(where);
  // The exporter's scrapes run on their own thread, never on the server's.
  asio::io_context metrics_io(1);
  std::optional<metrics::exporter> exporter;
  std::optional<address> metrics_local;
  if (metrics_on) {
    exporter.emplace(metrics_io.get_executor(), registry, metrics::exporter_config{.log = log});
    metrics_local = exporter->listen(*metrics_on);
  }
  fmt::print("listening on {}\n", local.to_string());
  if (metrics_local) fmt::print("metrics on {}\n", metrics_local->to_string());
  std::fflush(stdout);
  std::thread metrics_thread;
  if (exporter) metrics_thread = std::thread([&] { metrics_io.run(); });
  struct joiner {  // stops the exporter's thread before the registry goes
    asio::io_context& io;
    std::thread& t;
    ~joiner() {
      io.stop();
      if (t.joinable()) t.join();
    }
  } stop_metrics{metrics_io, metrics_thread};
  // The address clients are given: the one bound (a port 0 resolved).
  std::optional<naming::etcd_registration> reg;
  if (!reg_opt.url.empty()) {
    // Registering and deregistering are rare and worth a line each: info.
    reg.emplace(io.get_executor(), reg_opt.url, local, naming::registration_config{.ttl_seconds = reg_opt.ttl},
                naming::naming_config{}, logger::to_stderr(log_level::info));
    reg->start();
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, signo] = co_await signals.async_wait(asio::as_tuple(asio::deferred));
        if (ec) co_return;
        fmt::print(stderr, "calculator_server: signal {}: shutting down\n", signo);
        // Deregister first: clients stop choosing this server before it stops serving.
        if (reg) co_await reg->async_stop(asio::as_tuple(asio::deferred));
        co_await srv.async_shutdown(asio::as_tuple(asio::deferred));
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_on = "127.0.0.1:0";
  std::string tls_cert, tls_key, tls_client_ca;
  std::optional<address> metrics_on;
  registration_options reg;
  std::string ttl_text;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--listen" && has_value) listen_on = argv[++i];
    else if (arg == "--register" && has_value) reg.url = argv[++i];
    else if (arg == "--ttl" && has_value) ttl_text = argv[++i];
    else if (arg == "--tls-cert" && has_value) tls_cert = argv[++i];
    else if (arg == "--tls-key" && has_value) tls_key = argv[++i];
    else if (arg == "--tls-client-ca" && has_value) tls_client_ca = argv[++i];
    else if (arg == "--metrics" && has_value) {
      address a;
      if (parse_address(argv[++i], a) || a.is_unix()) {
        fmt::print(stderr, "calculator_server: --metrics needs host:port, not '{}'\n{}", argv[i], usage);
        return 2;
      }
      metrics_on = a;
    }
    else {
      fmt::print(arg == "-h" || arg == "--help" ? stdout : stderr, "{}", usage);
      return arg == "-h" || arg == "--help" ? 0 : 2;
    }
  }
  if (tls_cert.empty() != tls_key.empty() || (tls_cert.empty() && !tls_client_ca.empty())) {
    fmt::print(stderr, "calculator_server: --tls-cert and --tls-key go together (and --tls-client-ca needs them)\n{}",
               usage);
    return 2;
  }
  if (!ttl_text.empty()) {
    auto [p, ec] = std::from_chars(ttl_text.data(), ttl_text.data() + ttl_text.size(), reg.ttl);
    if (ec != std::errc{} || p != ttl_text.data() + ttl_text.size() || reg.ttl < 1 || reg.url.empty()) {
      fmt::print(stderr, "calculator_server: --ttl takes seconds (at least 1) and goes with --register\n");
      return 2;
    }
  }
  if (!reg.url.empty()) {
    naming::naming_url u;
    std::string why;
    if (naming::parse_naming_url(reg.url, u, why) || u.type != naming::naming_url::kind::etcd) {
      fmt::print(stderr, "calculator_server: --register takes etcd://HOST:PORT/PREFIX, not '{}'{}\n", reg.url,
                 why.empty() ? "" : ": " + why);
      return 2;
    }
  }
  address where;
  if (parse_address(listen_on, where)) {
    fmt::print(stderr, "calculator_server: invalid address '{}'\n", listen_on);
    return 2;
  }

  try {
    if (tls_cert.empty()) {
      serve(where, reg, socket_transport{}, metrics_on);
    } else {
      serve(where, reg, tls_transport::server(tls_server_options::from_files(tls_cert, tls_key, tls_client_ca)),
            metrics_on);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "calculator_server: {}\n", e.what());
    return 1;
  }
  return 0;
}
