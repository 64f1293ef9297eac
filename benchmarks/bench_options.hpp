// The command line shared by occams_bench and raw_bench (BENCHMARK.md, "Command line").
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace bench {

/// Exit statuses: 0 success, 1 a protocol, echo or I/O error, 2 a usage error.
inline constexpr int exit_ok = 0, exit_failed = 1, exit_usage = 2;

enum class mode { server, client };

struct options {
  mode role = mode::client;
  std::string host = "127.0.0.1";
  std::optional<std::uint16_t> port;
  std::string unix_path;
  std::uint32_t threads = 1;
  double lifetime = 900;  // server: seconds before it exits by itself
  std::uint32_t connections = 1;
  std::uint32_t inflight = 1;
  std::uint64_t payload = 64;
  double duration = 5;
  std::uint64_t calls = 0;  // client: > 0 makes exactly this many calls instead of a timed window
  double warmup = 0.5;
  std::string workload;  // empty: named after the matching BENCHMARK.md row, else "custom"
  long server_pid = 0;   // 0: no server CPU figure
  bool api = false;
  bool pool = false;  // client (occams_bench): calls through one client_pool of N connections
  bool failover = false;  // client (occams_bench): calls through one failover_pool (one address, N connections)
  // TLS (occams_bench only): the server's certificate, key and client CA; the client's CA,
  // certificate, key and server name. The server speaks TLS with tls_cert, the client with tls_ca.
  std::string tls_cert, tls_key, tls_client_ca, tls_ca, tls_server_name;
  std::string metrics;  // occams_bench: host:port of the Prometheus endpoint (empty: metrics off)

  bool has_tcp() const noexcept { return port.has_value(); }
  bool has_unix() const noexcept { return !unix_path.empty(); }
};

/// The BENCHMARK.md workload these parameters describe, or "custom".
inline std::string workload_name(const options& o) {
  if (!o.workload.empty()) return o.workload;
  struct row { const char* name; std::uint32_t n, w; std::uint64_t b; };
  constexpr row rows[] = {{"W1", 1, 128, 64}, {"W2", 8, 32, 64}, {"W3", 1, 8, 256 * 1024}, {"W4", 1, 1, 64}};
  for (const auto& r : rows)
    if (o.connections == r.n && o.inflight == r.w && o.payload == r.b) return r.name;
  return "custom";
}

inline void usage(std::FILE* to, std::string_view prog) {
  fmt::print(to,
             "usage: {0} server --port P [--host H] [--threads T] [--lifetime S] [--unix PATH]\n"
             "       {0} client --port P --connections N --inflight W --payload B --duration S\n"
             "                  [--warmup S] [--workload NAME] [--server-pid PID] [--host H]\n"
             "                  [--unix PATH] [--api | --pool | --failover] [--threads T]\n"
             "TLS (occams_bench): server --tls-cert FILE --tls-key FILE [--tls-client-ca FILE];\n"
             "                    client --tls-ca FILE [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]\n"
             "       {0} client ... --calls C   (instead of --duration and --warmup)\n"
             "--metrics ADDR (occams_bench, server or client): count every call in a metrics::registry\n"
             "and serve it at http://ADDR/metrics (host:port; port 0: a free one, printed on stderr).\n"
             "The server needs --port or --unix (or both); the client uses --unix if given, else TCP.\n"
             "--threads T: server threads (raw_bench: one SO_REUSEPORT listener each; occams_bench: one\n"
             "listener handing connections to the threads in turn); client threads (connection i and its\n"
             "W loops on thread i % T, each thread with its own measured window, the counts summed).\n"
             "--pool (occams_bench): the calls go through one client_pool of N connections (over the T\n"
             "threads), each thread's W x (its share of N) loops calling it from that thread.\n"
             "--failover (occams_bench): the same through one failover_pool of the one address (default\n"
             "failover_config, N connections): the failover layer's own cost over --pool.\n"
             "--calls C: exactly C calls in all (at least N x W), no warm-up, then stop (for callgrind).\n",
             prog);
}

namespace detail {
template <class T>
bool parse_number(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size();
}
}  // namespace detail

/// Parses argv; on failure prints why and the usage on stderr and returns nothing.
inline std::optional<options> parse_options(int argc, char** argv, std::string_view prog) {
  options o;
  auto fail = [&](std::string_view why) -> std::optional<options> {
    fmt::print(stderr, "{}: {}\n", prog, why);
    usage(stderr, prog);
    return std::nullopt;
  };
  if (argc < 2) return fail("missing mode (server or client)");
  std::string_view m = argv[1];
  if (m == "server") o.role = mode::server;
  else if (m == "client") o.role = mode::client;
  else return fail(fmt::format("unknown mode '{}'", m));

  bool have_conn = false, have_inflight = false, have_payload = false, have_duration = false, have_warmup = false;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--api") { o.api = true; continue; }
    if (arg == "--pool") { o.pool = true; continue; }
    if (arg == "--failover") { o.pool = o.failover = true; continue; }
    if (i + 1 >= argc) return fail(fmt::format("'{}' needs a value or is unknown", arg));
    std::string_view v = argv[++i];
    bool ok = true;
    if (arg == "--host") o.host = v;
    else if (arg == "--port") { std::uint16_t p = 0; ok = detail::parse_number(v, p); o.port = p; }
    else if (arg == "--unix") o.unix_path = v;
    else if (arg == "--threads") ok = detail::parse_number(v, o.threads) && o.threads > 0;
    else if (arg == "--lifetime") ok = detail::parse_number(v, o.lifetime) && o.lifetime > 0;
    else if (arg == "--connections") ok = have_conn = detail::parse_number(v, o.connections) && o.connections > 0;
    else if (arg == "--inflight") ok = have_inflight = detail::parse_number(v, o.inflight) && o.inflight > 0;
    else if (arg == "--payload") ok = have_payload = detail::parse_number(v, o.payload) && o.payload <= 0x7fff'ffffu;
    else if (arg == "--duration") ok = have_duration = detail::parse_number(v, o.duration) && o.duration > 0;
    else if (arg == "--warmup") ok = have_warmup = detail::parse_number(v, o.warmup) && o.warmup >= 0;
    else if (arg == "--calls") ok = detail::parse_number(v, o.calls) && o.calls > 0;
    else if (arg == "--workload") o.workload = v;
    else if (arg == "--server-pid") ok = detail::parse_number(v, o.server_pid) && o.server_pid > 0;
    else if (arg == "--tls-cert") o.tls_cert = v;
    else if (arg == "--tls-key") o.tls_key = v;
    else if (arg == "--tls-client-ca") o.tls_client_ca = v;
    else if (arg == "--tls-ca") o.tls_ca = v;
    else if (arg == "--tls-server-name") o.tls_server_name = v;
    else if (arg == "--metrics") ok = !(o.metrics = v).empty();
    else return fail(fmt::format("unknown option '{}'", arg));
    if (!ok) return fail(fmt::format("invalid value '{}' for {}", v, arg));
  }
  if (!o.has_tcp() && !o.has_unix()) return fail("--port or --unix is required");
  if (o.calls > 0 && (have_duration || have_warmup)) return fail("--calls excludes --duration and --warmup");
  bool any_tls = !(o.tls_cert.empty() && o.tls_key.empty() && o.tls_client_ca.empty() && o.tls_ca.empty() &&
                   o.tls_server_name.empty());
  if (any_tls && prog != "occams_bench") return fail("the --tls-* options are occams_bench's");
  if (!o.metrics.empty() && prog != "occams_bench") return fail("--metrics is occams_bench's");
  if (o.tls_cert.empty() != o.tls_key.empty()) return fail("--tls-cert and --tls-key go together");
  if (o.role == mode::server && (!o.tls_ca.empty() || !o.tls_server_name.empty()))
    return fail("--tls-ca and --tls-server-name are client options");
  if (o.role == mode::client && !o.tls_client_ca.empty()) return fail("--tls-client-ca is a server option");
  if (o.role == mode::client && o.tls_ca.empty() && (!o.tls_cert.empty() || !o.tls_server_name.empty()))
    return fail("the client's TLS options need --tls-ca");
  if (o.role == mode::client && !(have_conn && have_inflight && have_payload && (have_duration || o.calls > 0)))
    return fail("the client needs --connections, --inflight, --payload and --duration (or --calls)");
  return o;
}

}  // namespace bench
