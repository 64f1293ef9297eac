// 03_failover_pool: a typed stub over a failover_pool of two servers, one of which stops.
//
// Runs two calculator servers in this process (on Unix sockets in a temporary directory), and
// calls CalService.add through api::stub<CalService, failover_pool> from several coroutines.
// Halfway through, server A stops: calls in flight on it fail with io_err and are retried on
// B, new calls go to B only, and no call fails. Then A comes back, its pool reconnects, and
// it gets calls again. Prints what each server answered; exits 0 if every call succeeded.
//
//   03_failover_pool [--calls N]

#include "calculator_services.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unistd.h>

namespace asio = boost::asio;
using namespace occams_rpc;
using namespace std::chrono_literals;

namespace {

/// A calculator server that counts what it answers and can be stopped and started again.
struct calculator_server {
  asio::io_context& io;
  address where;
  std::shared_ptr<std::size_t> answered = std::make_shared<std::size_t>(0);
  struct counting_calculator : calculator {
    std::shared_ptr<std::size_t> answered;
    std::int64_t add(std::int64_t a, std::int64_t b) {
      ++*answered;
      return a + b;
    }
  };
  std::optional<server<api::router>> srv;

  void start() {
    api::router routes;
    routes.add<CalService>(counting_calculator{{}, answered});
    srv.emplace(io.get_executor(), std::move(routes));
    srv->listen(where);
  }
  void stop() { srv.reset(); }  // closes at once: clients see their connections drop
};

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::deferred);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t calls = 20000;
  if (argc == 3 && std::string_view(argv[1]) == "--calls") std::from_chars(argv[2], argv[2] + std::strlen(argv[2]), calls);
  else if (argc != 1) {
    fmt::print(stderr, "usage: 03_failover_pool [--calls N]\n");
    return 2;
  }

  auto dir = std::filesystem::temp_directory_path() / fmt::format("occams-rpc-failover-{}", ::getpid());
  std::filesystem::create_directories(dir);
  asio::io_context io(1);
  calculator_server a{io, address::unix_socket((dir / "a.sock").string())};
  calculator_server b{io, address::unix_socket((dir / "b.sock").string())};
  a.start();
  b.start();

  // Short timers so that the failover shows in milliseconds; the defaults are seconds.
  client_config ccfg{.call_timeout = 2s, .connect_timeout = 500ms, .timeout_tick = 50ms};
  failover_config fcfg{.order = failover_order::round_robin, .retry_limit = 2,
                       .pool = {.health_check_period = 50ms, .reconnect_backoff = 20ms, .reconnect_backoff_max = 200ms}};
  failover_pool pool(io.get_executor(), {a.where, b.where}, ccfg, fcfg);
  api::stub<CalService, failover_pool> cal(pool);

  std::uint64_t next = 0, ok = 0, failed = 0;
  int running = 0;
  auto worker = [&]() -> asio::awaitable<void> {
    ++running;
    while (next < calls) {
      auto n = static_cast<std::int64_t>(next++);
      auto r = co_await cal.add(n, 1);
      if (r && *r == n + 1) ++ok;
      else ++failed;
    }
    --running;
  };
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    while (pool.healthy_addresses().size() < 2) co_await pause(5ms);
    for (int w = 0; w < 16; ++w) asio::co_spawn(io, worker(), asio::detached);
    while (next < calls / 2) co_await pause(1ms);
    fmt::print("after {} calls: A answered {}, B answered {}; stopping A\n", next, *a.answered, *b.answered);
    a.stop();
    std::size_t a_at_stop = *a.answered;
    while (next < calls * 3 / 4) co_await pause(1ms);
    fmt::print("after {} calls: A answered {} since it stopped; starting A again\n", next, *a.answered - a_at_stop);
    a.start();
    while (running > 0) co_await pause(1ms);
    fmt::print("after {} calls: A answered {}, B answered {}; {} calls succeeded, {} failed\n", next, *a.answered,
               *b.answered, ok, failed);
    pool.close();
    a.stop();
    b.stop();
  }, asio::detached);
  io.run();
  std::filesystem::remove_all(dir);
  return failed == 0 && ok == calls ? 0 : 1;
}
