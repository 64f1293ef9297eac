// occams: call an occams-rpc server by hand (docs/cli.md).
//
//   occams call ADDR SERVICE.METHOD JSON [--timeout S] [TLS flags]
//   occams ping ADDR [--count N] [--timeout S] [TLS flags]
//   occams list ADDR [--timeout S] [TLS flags]
//
// Exit status: 0 done; 1 the call failed (the method's own error, a framework error, no
// connection, a timeout), with one line on stderr naming it; 2 bad usage or bad JSON.

#include "json_msgpack.hpp"

#include <occams_rpc.hpp>
#include <occams_rpc/api/reflection.hpp>
#include <occams_rpc/naming/make_source.hpp>
#include <occams_rpc/transport/tls_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace asio = boost::asio;
using namespace occams_rpc;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view usage =
    "usage: occams call ADDR SERVICE.METHOD JSON [--timeout S] [TLS flags]\n"
    "       occams ping ADDR [--count N] [--timeout S] [TLS flags]\n"
    "       occams list ADDR [--timeout S] [TLS flags]\n"
    "  ADDR            HOST:PORT, [V6]:PORT or unix:PATH, or a naming URL (etcd://HOST:PORT/PREFIX,\n"
    "                  list://A,B, file:///PATH, dns://HOST:PORT): its addresses are tried in turn\n"
    "  JSON            the method's argument: an array for several ([1,2]), null for none;\n"
    "                  {\"$bin\": \"BASE64\"}, {\"$ext\": [T, \"BASE64\"]}, {\"$map\": [[K, V], ...]} (docs/cli.md)\n"
    "  --timeout S     seconds for the connect and for each call (default 10; decimals allowed)\n"
    "  --count N       pings to send (default 4)\n"
    "  --tls-ca FILE   connect over TLS, trusting this PEM CA certificate\n"
    "  --tls-cert FILE, --tls-key FILE  a client certificate and key (mutual TLS)\n"
    "  --tls-server-name NAME  the name the server's certificate must carry (default: ADDR's host)\n"
    "exit status: 0 done, 1 the call failed (error on stderr), 2 bad usage or bad JSON\n";

struct options {
  std::string command;
  std::vector<std::string> args;  // positional, after the command
  std::chrono::milliseconds timeout = 10s;
  std::uint64_t count = 4;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
};

/// A usage mistake: main prints it with the usage and exits 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A failure of the call: main prints it and exits 1.
struct call_failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

options parse_options(int argc, char** argv) {
  options opt;
  if (argc < 2) throw usage_error("a command is required: call, ping or list");
  opt.command = argv[1];
  if (argc == 2 && (opt.command == "--help" || opt.command == "-h")) {
    opt.command = "help";
    return opt;
  }
  if (opt.command != "call" && opt.command != "ping" && opt.command != "list")
    throw usage_error(fmt::format("unknown command '{}': call, ping or list", opt.command));
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!arg.starts_with("--")) {  // JSON never starts with "--"
      opt.args.emplace_back(arg);
      continue;
    }
    if (i + 1 >= argc) throw usage_error(fmt::format("{} needs a value", arg));
    std::string_view value = argv[++i];
    if (arg == "--timeout") {
      double s = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), s);
      if (ec != std::errc{} || p != value.data() + value.size() || !(s >= 0.001 && s <= 86400))
        throw usage_error(fmt::format("--timeout takes seconds, 0.001 to 86400, not '{}'", value));
      opt.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(s * 1000)));
    } else if (arg == "--count" && opt.command == "ping") {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), opt.count);
      if (ec != std::errc{} || p != value.data() + value.size() || opt.count == 0 || opt.count > 1'000'000)
        throw usage_error(fmt::format("--count takes a count, 1 to 1000000, not '{}'", value));
    } else if (arg == "--tls-ca") opt.tls_ca = value;
    else if (arg == "--tls-cert") opt.tls_cert = value;
    else if (arg == "--tls-key") opt.tls_key = value;
    else if (arg == "--tls-server-name") opt.tls_server_name = value;
    else throw usage_error(fmt::format("unknown option '{}' for {}", arg, opt.command));
  }
  std::string why;
  std::size_t want = opt.command == "call" ? 3 : 1;
  if (opt.args.size() != want)
    throw usage_error(opt.command == "call" ? "call takes ADDR SERVICE.METHOD JSON"
                                            : fmt::format("{} takes ADDR", opt.command));
  if (naming::naming_url u; naming::parse_naming_url(opt.args[0], u, why))
    throw usage_error(fmt::format("bad address '{}': {}", opt.args[0], why));
  if (opt.tls_cert.empty() != opt.tls_key.empty() ||
      (opt.tls_ca.empty() && !(opt.tls_cert.empty() && opt.tls_server_name.empty())))
    throw usage_error("--tls-cert and --tls-key go together, and the TLS flags need --tls-ca");
  if (opt.command == "call") {
    std::string_view act = opt.args[1];
    auto dot = act.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == act.size())
      throw usage_error(fmt::format("'{}' is not SERVICE.METHOD", act));
  }
  return opt;
}

/// What a failed call got, as one line: the method's error string (as JSON), its error code,
/// or the framework error.
std::string describe(std::error_code ec, const call_response& r) {
  if (ec == errc::remote_error) {
    std::string_view s = r.msg.view();
    if (api::detail::is_valid_utf8(s)) return fmt::format("error {}", boost::json::serialize(boost::json::string(s)));
    try {  // an encoded error type (a struct...): msgpack
      return "error " + occams_cli::msgpack_to_json(r.msg.span());
    } catch (const occams_cli::conversion_error&) {
      return "error (binary) " + occams_cli::base64_encode(s);
    }
  }
  if (ec.category() == remote_category())
    return fmt::format("error code {} ({})", ec.value(), std::generic_category().message(ec.value()));
  return ec.message();
}

/// The addresses `where` names: itself, or the first snapshot of its naming source (a one-shot
/// command has nothing to follow), within `limit`.
asio::awaitable<std::vector<address>> addresses_of(const std::string& where, std::chrono::milliseconds limit) {
  auto ex = co_await asio::this_coro::executor;
  auto src = naming::make_source(ex, where, {}, logger::to_stderr(log_level::warn));
  std::optional<std::vector<address>> got;
  asio::steady_timer wait(ex, limit);
  src->start([&](const std::vector<naming::endpoint>& eps) {
    got.emplace();
    for (auto& e : eps) got->push_back(e.where);
    wait.cancel();
  });
  co_await wait.async_wait(asio::as_tuple(asio::deferred));
  src->stop();
  if (!got) throw call_failed(fmt::format("no address from {} within the timeout", where));
  if (got->empty()) throw call_failed(fmt::format("{} names no address now", where));
  co_return std::move(*got);
}

template <class Transport>
asio::awaitable<int> run(const options& opt, Transport transport, std::string request) {
  using stream_type = basic_client_stream<Transport>;
  client_config cfg;
  cfg.call_timeout = cfg.connect_timeout = opt.timeout;
  // Timeouts are checked once per tick (1 s by default): a short timeout needs a short tick.
  cfg.timeout_tick = std::clamp(cfg.call_timeout / 10, std::chrono::milliseconds(10), cfg.timeout_tick);
  // A naming URL: its addresses in turn, until one connects.
  std::vector<address> candidates = co_await addresses_of(opt.args[0], cfg.connect_timeout);
  std::string where;
  std::error_code ec;
  std::optional<stream_type> connected;
  for (auto& a : candidates) {
    where = a.to_string();
    auto [cec, s] = co_await stream_type::async_connect(transport, co_await asio::this_coro::executor, a, cfg, {},
                                                        asio::as_tuple(asio::deferred));
    ec = cec;
    if (!ec) {
      connected.emplace(std::move(s));
      break;
    }
    if (candidates.size() > 1) fmt::print(stderr, "occams: cannot connect to {}: {}; trying the next\n", where, ec.message());
  }
  if (ec) throw call_failed(fmt::format("cannot connect to {}: {}", where, ec.message()));
  stream_type& stream = *connected;

  if (opt.command == "ping") {
    std::vector<double> ms;
    for (std::uint64_t i = 0; i < opt.count; ++i) {
      auto start = std::chrono::steady_clock::now();
      auto [pec] = co_await stream.async_ping(asio::as_tuple(asio::deferred));
      double took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (pec) throw call_failed(fmt::format("ping {} to {}: {}", i + 1, where, pec.message()));
      fmt::print("pong from {}: seq {} time {:.3f} ms\n", where, i + 1, took);
      ms.push_back(took);
    }
    std::sort(ms.begin(), ms.end());
    double sum = 0;
    for (double m : ms) sum += m;
    fmt::print("{} pings, 0 lost: min {:.3f} ms, median {:.3f} ms, avg {:.3f} ms, max {:.3f} ms\n", ms.size(),
               ms.front(), ms[ms.size() / 2], sum / static_cast<double>(ms.size()), ms.back());
    co_await stream.async_close(asio::as_tuple(asio::deferred));
    co_return 0;
  }

  std::string act = opt.command == "call" ? opt.args[1] : std::string(api::rpc_reflection::list::action);
  auto [cec, resp] = co_await stream.async_call(action(std::string_view(act)), std::span<const char>(request), {}, {},
                                                asio::as_tuple(asio::deferred));
  co_await stream.async_close(asio::as_tuple(asio::deferred));
  if (cec == errc::service_not_found && opt.command == "list")
    throw call_failed(fmt::format("{} has no reflection service (its router needs enable_reflection(), docs/api.md)", where));
  if (cec) throw call_failed(fmt::format("{} failed: {}", act, describe(cec, resp)));

  if (opt.command == "list") {
    std::vector<api::service_info> services;
    if (auto dec = msgpack_codec{}.decode(resp.msg.span(), services))
      throw call_failed(fmt::format("{}: the reflection answer does not decode: {}", where, dec.message()));
    for (const auto& s : services) {
      fmt::print("{}\n", s.name);
      for (const auto& m : s.methods) fmt::print("  {}\n", api::to_string(m));
    }
    co_return 0;
  }
  // An empty OK msg means the return type's default value, which only the caller knows.
  try {
    fmt::print("{}\n", resp.msg.empty() ? "null" : occams_cli::msgpack_to_json(resp.msg.span()));
  } catch (const occams_cli::conversion_error& e) {
    throw call_failed(fmt::format("{}: the answer is not msgpack ({} bytes): {}", act, resp.msg.size(), e.what()));
  }
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  std::string request;
  try {
    opt = parse_options(argc, argv);
    if (opt.command == "help") {
      fmt::print("{}", usage);
      return 0;
    }
    if (opt.command == "call") request = occams_cli::json_to_msgpack(opt.args[2]);
    else if (opt.command == "list") request = occams_cli::json_to_msgpack("null");
  } catch (const usage_error& e) {
    fmt::print(stderr, "occams: {}\n{}", e.what(), usage);
    return 2;
  } catch (const occams_cli::conversion_error& e) {
    fmt::print(stderr, "occams: the JSON argument: {}\n", e.what());
    return 2;
  }
  try {
    asio::io_context io(1);
    int status = 1;
    auto start = [&](auto transport) {  // plaintext or TLS: one run() per transport type
      asio::co_spawn(io, run(opt, std::move(transport), std::move(request)), [&](std::exception_ptr e, int s) {
        if (e) std::rethrow_exception(e);  // out of io.run(): printed below, exit 1
        status = s;
      });
    };
    if (opt.tls_ca.empty()) start(socket_transport{});
    else start(tls_transport::client(tls_client_options::from_files(opt.tls_ca, opt.tls_cert, opt.tls_key, opt.tls_server_name)));
    io.run();
    return status;
  } catch (const std::exception& e) {
    fmt::print(stderr, "occams: {}\n", e.what());
    return 1;
  }
}
