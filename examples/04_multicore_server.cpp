// 04_multicore_server: a typed service on every core (docs/threads.md).
//
// Runs a server on a runtime::context_pool of T threads (default: one per core): the server
// hands accepted connections to the threads in turn, and each connection's requests are
// decoded, served and answered on its own thread. The service is called from every thread at
// once, so its state is atomic. Then C clients (on a thread of their own) call Counter.add
// through typed stubs until --calls calls are done, the server shuts down gracefully, and the
// example prints how many calls each thread served. Exits 0 if every call succeeded and every
// thread served some.
//
//   04_multicore_server [--threads T] [--connections C] [--calls N] [--pin]

#include <occams_rpc.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <future>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace occams_rpc;

OCCAMS_RPC_SERVICE(Counter,
    (add, std::int64_t(std::int64_t)));  // adds to the server's total, returns the new total

namespace {

constexpr auto tok = asio::as_tuple(asio::deferred);

/// The service: one total shared by every thread (an atomic), and per-thread call counts kept
/// where the thread that serves a call can reach them without a lock.
struct counter_service {
  std::shared_ptr<std::atomic<std::int64_t>> sum = std::make_shared<std::atomic<std::int64_t>>(0);
  runtime::context_pool* pool;
  std::shared_ptr<std::vector<std::atomic<std::uint64_t>>> served;

  std::int64_t add(std::int64_t n) {
    ++(*served)[this_thread_index()];
    return sum->fetch_add(n) + n;
  }

  /// Which of the pool's threads runs this call.
  std::size_t this_thread_index() const {
    for (std::size_t i = 0; i < pool->size(); ++i)
      if (pool->context(i).get_executor().running_in_this_thread()) return i;
    return 0;  // unreachable: calls run on the pool's threads
  }
};

/// One client connection: `calls` sequential calls of Counter.add(1), `window` at a time.
asio::awaitable<bool> client(address where, std::uint64_t calls, std::uint32_t window) {
  auto ex = co_await asio::this_coro::executor;
  auto [ec, stream] = co_await client_stream::async_connect(ex, where, {}, {}, tok);
  if (ec) {
    fmt::print(stderr, "connect failed: {}\n", ec.message());
    co_return false;
  }
  api::stub<Counter> counter(stream);
  std::uint64_t issued = 0, ok = 0, done = 0;
  // `window` loops share the calls; each awaits its call before making the next.
  auto loop = [&]() -> asio::awaitable<void> {
    while (issued < calls) {
      ++issued;
      auto r = co_await counter.add(1);
      if (r) ++ok;
      else fmt::print(stderr, "call failed: {}\n", r.framework_error().message());
    }
    ++done;
  };
  for (std::uint32_t w = 0; w < window; ++w) asio::co_spawn(ex, loop(), asio::detached);
  asio::steady_timer idle(ex);
  while (done < window) {  // wait for the loops (they run on this coroutine's thread)
    idle.expires_after(std::chrono::milliseconds(1));
    co_await idle.async_wait(tok);
  }
  co_await stream.async_close(tok);
  co_return ok == calls;
}

bool parse(std::string_view s, std::uint64_t& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size() && out > 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t threads = std::max(1u, std::thread::hardware_concurrency()), connections = 8, calls = 20000;
  bool pin = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    bool ok = true;
    if (arg == "--pin") pin = true;
    else if (arg == "--threads" && i + 1 < argc) ok = parse(argv[++i], threads);
    else if (arg == "--connections" && i + 1 < argc) ok = parse(argv[++i], connections);
    else if (arg == "--calls" && i + 1 < argc) ok = parse(argv[++i], calls);
    else ok = false;
    if (!ok) {
      fmt::print(stderr, "usage: 04_multicore_server [--threads T] [--connections C] [--calls N] [--pin]\n");
      return 2;
    }
  }
  if (threads > 64) threads = 64;

  // The server: T contexts, one thread each; the router and service are shared by all.
  runtime::context_pool pool(threads, {.pin_threads = pin, .log = logger::to_stderr(log_level::warn)});
  auto served = std::make_shared<std::vector<std::atomic<std::uint64_t>>>(pool.size());
  counter_service service{.pool = &pool, .served = served};
  auto total = service.sum;
  api::router routes;
  routes.add<Counter>(std::move(service));
  server srv(pool.executors(), std::move(routes), {}, logger::to_stderr(log_level::warn));
  address where = srv.listen("127.0.0.1:0");
  pool.start();

  // The clients: one thread of their own, C connections.
  asio::io_context client_io(1);
  std::atomic<std::uint64_t> good_clients{0};
  for (std::uint64_t c = 0; c < connections; ++c) {
    std::uint64_t share = calls / connections + (c < calls % connections ? 1 : 0);
    if (share == 0) continue;
    asio::co_spawn(client_io, client(where, share, 16), [&](std::exception_ptr e, bool ok) {
      if (!e && ok) ++good_clients;
    });
  }
  client_io.run();

  // A graceful shutdown, waited for from this thread.
  std::promise<void> stopped;
  srv.async_shutdown([&](std::error_code) { stopped.set_value(); });
  stopped.get_future().wait();
  pool.stop();
  pool.join();

  std::uint64_t expected_clients = std::min(connections, calls);
  bool every_thread = true;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    auto n = (*served)[i].load();
    fmt::print("thread {}: {} calls{}\n", i, n, pool.pinned(i) ? " (pinned)" : "");
    // Connections go to the threads in turn: with at least T of them, every thread serves.
    if (n == 0 && expected_clients >= pool.size()) every_thread = false;
  }
  fmt::print("total {} from {} clients on {} threads\n", total->load(), good_clients.load(), pool.size());
  bool ok = good_clients == expected_clients && static_cast<std::uint64_t>(total->load()) == calls && every_thread;
  if (!ok) fmt::print(stderr, "04_multicore_server: FAILED\n");
  return ok ? 0 : 1;
}
