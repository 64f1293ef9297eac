#include <occams_rpc/runtime/context_pool.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>

using namespace occams_rpc;
namespace asio = boost::asio;

namespace {

/// Runs `f` on context i of `pool` and returns its result (the pool must be started).
template <class F>
auto run_on(runtime::context_pool& pool, std::size_t i, F f) {
  std::promise<decltype(f())> p;
  auto fut = p.get_future();
  asio::post(pool.context(i), [&] { p.set_value(f()); });
  return fut.get();
}

}  // namespace

TEST_CASE("a context pool runs each context on a thread of its own", "[runtime]") {
  runtime::context_pool pool(3);
  REQUIRE(pool.size() == 3);
  pool.start();
  std::set<std::thread::id> ids;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    auto [id, here] = run_on(pool, i, [&] {
      return std::pair{std::this_thread::get_id(), pool.context(i).get_executor().running_in_this_thread()};
    });
    CHECK(here);
    CHECK(id != std::this_thread::get_id());
    ids.insert(id);
    // The same context runs on the same thread every time.
    CHECK(run_on(pool, i, [] { return std::this_thread::get_id(); }) == id);
  }
  CHECK(ids.size() == 3);
}

TEST_CASE("next_executor hands out the contexts in turn", "[runtime]") {
  runtime::context_pool pool(2);
  auto all = pool.executors();
  REQUIRE(all.size() == 2);
  CHECK(all[0] == pool.executor(0));
  CHECK(all[1] == pool.executor(1));
  CHECK(all[0] != all[1]);
  auto first = pool.next_executor();
  CHECK(pool.next_executor() != first);
  CHECK(pool.next_executor() == first);
}

TEST_CASE("a context pool of size 0 has one context per hardware thread", "[runtime]") {
  runtime::context_pool pool(0);
  CHECK(pool.size() == std::max(1u, std::thread::hardware_concurrency()));
}

TEST_CASE("finish lets the threads return once every queued handler has run", "[runtime]") {
  runtime::context_pool pool(2);
  std::atomic<int> ran{0};
  // Queued before the threads start, and each handler queues another: all run before join.
  for (std::size_t i = 0; i < pool.size(); ++i)
    for (int k = 0; k < 50; ++k)
      asio::post(pool.context(i), [&, i] { asio::post(pool.context(i), [&] { ++ran; }); });
  pool.start();
  pool.finish();
  pool.join();
  CHECK(ran == 100);
  for (std::size_t i = 0; i < pool.size(); ++i) CHECK(pool.context(i).stopped());
}

TEST_CASE("stop returns the threads with work pending, which the pool destroys unrun", "[runtime]") {
  auto pool = std::make_unique<runtime::context_pool>(2);
  pool->start();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> gone = token;
  std::promise<void> armed;
  std::optional<asio::steady_timer> timer(std::in_place, pool->context(1));
  asio::post(pool->context(1), [&, t = std::move(token)]() mutable {
    timer->expires_after(std::chrono::hours(1));
    timer->async_wait([t = std::move(t)](auto) { FAIL("a handler ran after stop"); });
    armed.set_value();
  });
  armed.get_future().get();
  pool->stop();
  pool->join();  // returns though the timer waits for an hour
  CHECK_FALSE(gone.expired());
  timer.reset();  // cancelled: its handler is queued on a stopped context
  CHECK_FALSE(gone.expired());
  pool.reset();
  CHECK(gone.expired());  // the wait's handler was destroyed, not run
}

TEST_CASE("a handler left in a later context's queue may, when destroyed, reach an earlier context",
          "[runtime]") {
  // As a failover_pool's last owner, queued on context 1, reaches its shard on context 0:
  // the handler owns a timer of context 0, and its destruction posts to context 0 too. Both
  // must find context 0 still there (shut down, not destroyed); what is posted there is then
  // destroyed with it.
  struct reaches_back {
    asio::steady_timer timer;
    asio::any_io_executor earlier;
    std::shared_ptr<int> posted_token;
    reaches_back(asio::io_context& ctx, std::shared_ptr<int> t)
        : timer(ctx), earlier(ctx.get_executor()), posted_token(std::move(t)) {}
    ~reaches_back() { asio::post(earlier, [t = std::move(posted_token)] { FAIL("ran after the pool's end"); }); }
  };
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> posted = token;
  {
    runtime::context_pool pool(2);  // never started: everything queued stays queued
    auto owner = std::make_shared<reaches_back>(pool.context(0), std::move(token));
    asio::post(pool.executor(1), [o = std::move(owner)] { FAIL("ran after the pool's end"); });
  }
  CHECK(posted.expired());  // posted to a context shut down, and destroyed with it
}

TEST_CASE("a handler that throws is logged and its thread runs on", "[runtime]") {
  std::mutex m;
  std::vector<std::string> lines;
  runtime::context_pool_options opts;
  opts.log = logger(log_level::error, [&](log_level, std::string_view s) {
    std::lock_guard lock(m);
    lines.emplace_back(s);
  });
  runtime::context_pool pool(1, opts);
  pool.start();
  asio::post(pool.context(0), [] { throw std::runtime_error("boom"); });
  CHECK(run_on(pool, 0, [] { return 42; }) == 42);
  std::lock_guard lock(m);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("boom") != std::string::npos);
}

TEST_CASE("pinned threads each run on one of the CPUs the process may use", "[runtime]") {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  REQUIRE(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
  std::atomic<int> warnings{0};
  runtime::context_pool_options opts;
  opts.pin_threads = true;
  opts.log = logger(log_level::warn, [&](log_level, std::string_view) { ++warnings; });
  runtime::context_pool pool(2, opts);
  pool.start();
  for (std::size_t i = 0; i < pool.size(); ++i) {
    auto [count, cpu] = run_on(pool, i, [] {
      cpu_set_t mine;
      CPU_ZERO(&mine);
      sched_getaffinity(0, sizeof mine, &mine);
      return std::pair{CPU_COUNT(&mine), sched_getcpu()};
    });
    if (pool.pinned(i)) {
      CHECK(count == 1);
      CHECK(CPU_ISSET(cpu, &allowed));
    } else {
      CHECK(warnings > 0);  // refused (a cpuset, a container): said so
    }
  }
}
