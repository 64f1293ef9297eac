// calculator_client: the typed API's client side (see calculator_services.hpp).
//
//   calculator_client --connect ADDR|URL [--calls N] [--workers W] [--timeout MS]
//                     [--tls-ca FILE [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]]
//
// Calls each method of CalService and EchoService once and prints what came back, including
// the methods' own errors, then makes N `add` calls from W coroutines at once through one
// stub (default 10000 and 32) and prints the rate. A call that fails prints the error it got
// (a timeout, a lost connection...). --timeout bounds each call and the connect (default: the
// library's, 20 s and 10 s); against a server that does not answer, the client gives up after
// about one timeout per call and skips the many calls. --tls-ca connects over TLS, trusting that
// CA (docs/tls.md); --tls-cert and --tls-key present a client certificate (mutual TLS);
// --tls-server-name is the name to expect in the server's certificate (default: the host of
// ADDR). --connect takes a naming URL too (etcd://127.0.0.1:2379/services/calc, list://,
// file://, dns://; docs/discovery.md): the calls then go through a failover_pool that follows
// it. Exits 0 if every answer was right, 1 if not, 2 for bad arguments.

#include "calculator_services.hpp"

#include <occams_rpc/naming/pool_follower.hpp>
#include <occams_rpc/stream/failover_pool.hpp>
#include <occams_rpc/transport/tls_transport.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace asio = boost::asio;
using namespace occams_rpc;

namespace {

struct options {
  std::string connect;
  std::uint64_t calls = 10000;
  std::uint64_t workers = 32;
  std::uint64_t timeout_ms = 0;  // 0: the library's defaults
  std::string tls_ca, tls_cert, tls_key, tls_server_name;  // TLS when tls_ca is set
};

constexpr std::string_view usage =
    "usage: calculator_client --connect ADDR|URL [--calls N] [--workers W] [--timeout MS]\n"
    "  --connect ADDR  the server: HOST:PORT or unix:PATH, or a naming URL (etcd://HOST:PORT/PREFIX,\n"
    "                  list://A,B, file:///PATH, dns://HOST:PORT) followed by a failover pool\n"
    "  --calls N       add calls to make at once after the checks (default 10000)\n"
    "  --workers W     coroutines making them (default 32, at least 1)\n"
    "  --timeout MS    timeout of each call and of the connect, in milliseconds\n"
    "                  (default: 20000 per call, 10000 to connect)\n"
    "  --tls-ca FILE   connect over TLS, trusting this PEM CA certificate\n"
    "  --tls-cert FILE, --tls-key FILE  a client certificate and key (mutual TLS)\n"
    "  --tls-server-name NAME  the name the server's certificate must carry (default: ADDR's host)\n";

/// What a call came back with, as a person reads it.
template <class R>
std::string describe_failure(const R& r) {
  if (r.has_framework_error()) return r.framework_error().message();
  using E = typename R::error_type;
  if constexpr (std::is_same_v<E, std::string>) return fmt::format("the method's error \"{}\"", r.error());
  else if constexpr (std::is_same_v<E, std::errc>) return fmt::format("the method's error {}", std::make_error_code(r.error()).message());
  else return "the method's error";
}

/// Prints one line per call; counts a wrong answer and a failure of the framework itself.
struct checker {
  int wrong = 0;
  int framework_failures = 0;

  template <class R, class Want>
  void value(std::string_view what, const R& r, const Want& want) {
    if (r && *r == want) return fmt::print("{} = {}\n", what, *r);
    note(r);
    if (r) fmt::print("{}: WRONG: got {}, expected {}\n", what, *r, want);
    else fmt::print("{} failed: {}\n", what, describe_failure(r));
  }
  template <class R, class Want>
  void error(std::string_view what, const R& r, const Want& want, std::string_view shown) {
    if (r.has_error() && r.error() == want) return fmt::print("{} failed as expected: {}\n", what, shown);
    note(r);
    if (r) fmt::print("{}: WRONG: succeeded, expected the method's error {}\n", what, shown);
    else fmt::print("{} failed: {} (expected the method's error {})\n", what, describe_failure(r), shown);
  }

 private:
  template <class R>
  void note(const R& r) {
    ++wrong;
    if (r.has_framework_error()) ++framework_failures;
  }
};

/// The checks and the many calls, through a client_stream or a failover_pool.
template <class Channel>
asio::awaitable<int> exercise(const options& opt, Channel& channel) {
  // Stubs are cheap views of the channel: one per service.
  api::stub<CalService, Channel> cal(channel);
  api::stub<EchoService, Channel> echo(channel);

  checker check;
  check.value("CalService.inc(41)", co_await cal.inc(41), 42);
  check.value("CalService.add(1, 2)", co_await cal.add(1, 2), 3);
  check.value("CalService.div(7, 2)", co_await cal.div(7, 2), 3);
  check.error("CalService.div(1, 0)", co_await cal.div(1, 0), std::string("divide by zero"), "\"divide by zero\"");
  check.value("EchoService.repeat(\"hello\")", co_await echo.repeat("hello"), std::string("hello"));
  check.error("EchoService.io_error(\"x\")", co_await echo.io_error("x"), std::errc::io_error, "EIO (5)");

  if (check.framework_failures > 0) {
    // The server does not answer (or the connection is gone): thousands more calls would
    // only fail the same way, one timeout after another.
    fmt::print("skipping the {} add calls: {} of the calls above failed in the framework\n", opt.calls,
               check.framework_failures);
    co_await channel.async_close(asio::as_tuple(asio::deferred));
    co_return 1;
  }

  // Many callers at once: the calls share the one connection, multiplexed and batched. After
  // a failure no new call starts (the calls in flight finish).
  std::uint64_t next = 0, done = 0, bad = 0, running = opt.workers;
  std::error_code first_failure;
  auto ex = co_await asio::this_coro::executor;
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t w = 0; w < opt.workers; ++w)
    asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
      while (next < opt.calls && !first_failure) {
        auto n = static_cast<std::int64_t>(next++);
        auto r = co_await cal.add(n, 1);
        if (r && *r == n + 1) {
          ++done;
          continue;
        }
        ++bad;
        if (!first_failure) first_failure = r ? make_error_code(errc::decode) : r.framework_error();
      }
      --running;
    }, asio::detached);
  asio::steady_timer poll(ex);
  while (running > 0) {
    poll.expires_after(std::chrono::milliseconds(1));
    co_await poll.async_wait(asio::deferred);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{} add calls from {} coroutines: {} right, {} wrong, {:.0f} calls/s\n", opt.calls, opt.workers, done,
             bad, secs > 0 ? static_cast<double>(done) / secs : 0.0);
  if (first_failure)
    fmt::print("stopped after {} of {} calls; the first failure: {}\n", done + bad, opt.calls,
               first_failure == errc::decode ? "a wrong answer" : first_failure.message());
  co_await channel.async_close(asio::as_tuple(asio::deferred));
  co_return check.wrong == 0 && bad == 0 ? 0 : 1;
}

template <class Transport>
asio::awaitable<int> run(const options& opt, Transport transport) {
  using stream_type = basic_client_stream<Transport>;
  auto ex = co_await asio::this_coro::executor;
  client_config cfg;
  if (opt.timeout_ms > 0) {
    cfg.call_timeout = cfg.connect_timeout = std::chrono::milliseconds(opt.timeout_ms);
    // Timeouts are checked once per tick (1 s by default): a short timeout needs a short tick.
    cfg.timeout_tick = std::clamp(cfg.call_timeout / 10, std::chrono::milliseconds(10), cfg.timeout_tick);
  }
  if (naming::is_naming_url(opt.connect)) {
    // A service at several addresses: a failover pool, fed by the URL's source.
    using pool_type = basic_failover_pool<Transport>;
    pool_type pool(ex, {}, cfg, {}, {}, transport);
    naming::pool_follower<pool_type> follow(ex, opt.connect, pool, {}, logger::to_stderr(log_level::warn));
    // The first snapshot, within the connect timeout: past it, stop waiting (calls then fail).
    asio::steady_timer limit(ex, cfg.connect_timeout);
    limit.async_wait([&](boost::system::error_code e) {
      if (!e) follow.stop();
    });
    auto [ready] = co_await follow.async_wait_ready(asio::as_tuple(asio::deferred));
    limit.cancel();
    if (ready) fmt::print(stderr, "calculator_client: no address from {} within the connect timeout\n", opt.connect);
    co_return co_await exercise(opt, pool);
  }
  auto [ec, stream] = co_await stream_type::async_connect(transport, ex, parse_address(opt.connect), cfg, {},
                                                          asio::as_tuple(asio::deferred));
  if (ec) {
    fmt::print(stderr, "calculator_client: cannot connect to {}: {}\n", opt.connect, ec.message());
    co_return 1;
  }
  co_return co_await exercise(opt, stream);
}

bool parse_count(std::string_view s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

/// Reads the command line into `opt`; on a mistake, says what is wrong and returns false.
bool parse_options(int argc, char** argv, options& opt) {
  for (int i = 1; i < argc; i += 2) {
    std::string_view arg = argv[i];
    if (arg == "--tls-ca" || arg == "--tls-cert" || arg == "--tls-key" || arg == "--tls-server-name") {
      if (i + 1 >= argc) {
        fmt::print(stderr, "calculator_client: {} needs a value\n", arg);
        return false;
      }
      std::string& field = arg == "--tls-ca"     ? opt.tls_ca
                           : arg == "--tls-cert" ? opt.tls_cert
                           : arg == "--tls-key"  ? opt.tls_key
                                                 : opt.tls_server_name;
      field = argv[i + 1];
      continue;
    }
    if (arg != "--connect" && arg != "--calls" && arg != "--workers" && arg != "--timeout") {
      fmt::print(stderr, "calculator_client: unknown option '{}'\n", arg);
      return false;
    }
    if (i + 1 >= argc) {
      fmt::print(stderr, "calculator_client: {} needs a value\n", arg);
      return false;
    }
    std::string_view value = argv[i + 1];
    bool ok = true;
    if (arg == "--connect") opt.connect = value;
    else if (arg == "--calls") ok = parse_count(value, opt.calls);
    else if (arg == "--workers") ok = parse_count(value, opt.workers) && opt.workers > 0;
    else ok = parse_count(value, opt.timeout_ms) && opt.timeout_ms > 0 && opt.timeout_ms <= 86'400'000;
    if (!ok) {
      fmt::print(stderr, "calculator_client: {} takes {}, not '{}'\n", arg,
                 arg == "--calls"     ? "a count"
                 : arg == "--workers" ? "a count of at least 1"
                                      : "milliseconds, 1 to 86400000",
                 value);
      return false;
    }
  }
  std::string why;
  if (opt.connect.empty()) {
    fmt::print(stderr, "calculator_client: --connect ADDR is required\n");
    return false;
  }
  if (opt.tls_cert.empty() != opt.tls_key.empty() ||
      (opt.tls_ca.empty() && !(opt.tls_cert.empty() && opt.tls_server_name.empty()))) {
    fmt::print(stderr, "calculator_client: --tls-cert and --tls-key go together, and the TLS flags need --tls-ca\n");
    return false;
  }
  if (naming::naming_url u; auto ec = naming::parse_naming_url(opt.connect, u, why)) {
    fmt::print(stderr, "calculator_client: --connect '{}': {}\n", opt.connect, why);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    fmt::print("{}", usage);
    return 0;
  }
  options opt;
  if (!parse_options(argc, argv, opt)) {
    fmt::print(stderr, "{}", usage);
    return 2;
  }
  try {
    asio::io_context io(1);
    int status = 1;
    auto done = [&](std::exception_ptr e, int s) {
      if (e) std::rethrow_exception(e);
      status = s;
    };
    if (opt.tls_ca.empty()) {
      asio::co_spawn(io, run(opt, socket_transport{}), done);
    } else {
      auto tls = tls_client_options::from_files(opt.tls_ca, opt.tls_cert, opt.tls_key, opt.tls_server_name);
      asio::co_spawn(io, run(opt, tls_transport::client(tls)), done);
    }
    io.run();
    return status;
  } catch (const std::exception& e) {
    fmt::print(stderr, "calculator_client: {}\n", e.what());
    return 1;
  }
}
