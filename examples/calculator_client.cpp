// calculator_client: the typed API's client side (see calculator_services.hpp).
//
//   calculator_client --connect ADDR [--calls N] [--workers W]
//
// Calls each method of CalService and EchoService once and prints what came back, including
// the methods' own errors, then makes N `add` calls from W coroutines at once through one
// stub (default 10000 and 32) and prints the rate. Exits 0 if every answer was right.

#include "calculator_services.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using namespace occams_rpc;

namespace {

struct options {
  std::string connect;
  std::uint64_t calls = 10000;
  std::uint64_t workers = 32;
};

/// Prints one line per call; counts a wrong answer.
struct checker {
  int wrong = 0;
  template <class R, class Want>
  void value(std::string_view what, const R& r, const Want& want) {
    if (r && *r == want) return fmt::print("{} = {}\n", what, *r);
    ++wrong;
    fmt::print("{}: WRONG ({})\n", what, r ? "another value" : r.framework_error().message());
  }
  template <class R, class Want>
  void error(std::string_view what, const R& r, const Want& want, std::string_view shown) {
    if (r.has_error() && r.error() == want) return fmt::print("{} failed as expected: {}\n", what, shown);
    ++wrong;
    fmt::print("{}: WRONG (expected the method's error {})\n", what, shown);
  }
};

asio::awaitable<int> run(const options& opt) {
  auto ex = co_await asio::this_coro::executor;
  auto [ec, stream] = co_await client_stream::async_connect(ex, parse_address(opt.connect), {}, {},
                                                            asio::as_tuple(asio::deferred));
  if (ec) {
    fmt::print(stderr, "calculator_client: cannot connect to {}: {}\n", opt.connect, ec.message());
    co_return 1;
  }
  // Stubs are cheap views of the stream: one per service.
  api::stub<CalService> cal(stream);
  api::stub<EchoService> echo(stream);

  checker check;
  check.value("CalService.inc(41)", co_await cal.inc(41), 42);
  check.value("CalService.add(1, 2)", co_await cal.add(1, 2), 3);
  check.value("CalService.div(7, 2)", co_await cal.div(7, 2), 3);
  check.error("CalService.div(1, 0)", co_await cal.div(1, 0), std::string("divide by zero"), "\"divide by zero\"");
  check.value("EchoService.repeat(\"hello\")", co_await echo.repeat("hello"), std::string("hello"));
  check.error("EchoService.io_error(\"x\")", co_await echo.io_error("x"), std::errc::io_error, "EIO (5)");

  // Many callers at once: the calls share the one connection, multiplexed and batched.
  std::uint64_t next = 0, done = 0, bad = 0, running = opt.workers;
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t w = 0; w < opt.workers; ++w)
    asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
      while (next < opt.calls) {
        auto n = static_cast<std::int64_t>(next++);
        auto r = co_await cal.add(n, 1);
        if (r && *r == n + 1) ++done;
        else ++bad;
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
  co_await stream.async_close(asio::as_tuple(asio::deferred));
  co_return check.wrong == 0 && bad == 0 ? 0 : 1;
}

bool parse_count(std::string_view s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view arg = argv[i], value = argv[i + 1];
    bool ok = arg == "--connect" ? (opt.connect = value, true)
              : arg == "--calls" ? parse_count(value, opt.calls)
              : arg == "--workers" ? parse_count(value, opt.workers) && opt.workers > 0
                                   : false;
    if (!ok) opt.connect.clear(), i = argc;
  }
  if (opt.connect.empty() || argc % 2 == 0) {
    fmt::print(stderr, "usage: calculator_client --connect ADDR [--calls N] [--workers W]\n");
    return 2;
  }
  try {
    asio::io_context io(1);
    int status = 1;
    asio::co_spawn(io, run(opt), [&](std::exception_ptr e, int s) {
      if (e) std::rethrow_exception(e);
      status = s;
    });
    io.run();
    return status;
  } catch (const std::exception& e) {
    fmt::print(stderr, "calculator_client: {}\n", e.what());
    return 1;
  }
}
