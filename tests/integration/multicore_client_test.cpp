// Clients on several threads: a client_pool and a failover_pool spread over a context pool's
// executors, calls from many threads, close / update_addresses / healthy from many threads at
// once; and one connection's worth of proof for each kind of executor (an io_context run by
// one thread, a strand of an asio::thread_pool, a context pool's context). Run under the tsan
// preset too.
#include "test_support.hpp"

#include <occams_rpc/runtime/context_pool.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace occams_rpc;
using namespace ::test;

namespace {

/// Starts an operation with a plain callback (`start(handler)`) and waits, on the calling
/// thread (bounded), for what it completes with.
template <class... R, class Start>
std::tuple<R...> wait_result(Start start, std::chrono::milliseconds limit = 20s) {
  auto p = std::make_shared<std::promise<std::tuple<R...>>>();
  auto f = p->get_future();
  start([p](R... r) { p->set_value(std::tuple<R...>(std::move(r)...)); });
  REQUIRE(f.wait_for(limit) == std::future_status::ready);
  return f.get();
}

struct echo {
  void operator()(server_request req) const { req.respond(req.msg(), req.blob()); }
};

/// A server on its own context pool, for the clients of a test to call.
struct echo_server {
  runtime::context_pool threads;
  server<echo> srv;
  address where;
  explicit echo_server(std::size_t n = 1) : threads(n), srv(threads.executors(), echo{}) {
    where = srv.listen("127.0.0.1:0");
    threads.start();
  }
};

/// The callers' io_contexts, one per calling thread. Declare it before the pools the callers
/// use: it must outlive them, since a pool thread that completes a call posts to a caller's
/// context (and signals its thread after the post), even after that caller has finished.
struct caller_threads {
  std::vector<std::unique_ptr<asio::io_context>> contexts;

  /// Runs `body(t)` (a coroutine) for t in 0..n-1, each on a context and a thread of its own,
  /// all at once; bounded by `limit`. Returns how many finished without an exception.
  template <class Body>
  int run(int n, Body body, std::chrono::milliseconds limit = 20s) {
    std::atomic<int> finished{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < n; ++t) {
      auto& io = *contexts.emplace_back(std::make_unique<asio::io_context>(1));
      threads.emplace_back([&, t, io = &io] {
        asio::co_spawn(*io, body(t), [&, io](std::exception_ptr e) {
          if (!e) ++finished;
          io->stop();
        });
        io->run_for(limit);
      });
    }
    for (auto& th : threads) th.join();
    return finished;
  }
};

/// Waits (bounded) for `done()` on the calling thread, which runs no executor of the test.
template <class Pred>
bool wait_for(Pred done, std::chrono::milliseconds limit = 20s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

TEST_CASE("a client_pool on a context pool puts connections on every thread, and a call made on one uses that thread's",
          "[pool][threads]") {
  echo_server server;
  runtime::context_pool pool(2);
  client_pool cp(pool.executors(), server.where, {}, pool_config{.connections = 4});
  CHECK(cp.shard_count() == 2);
  pool.start();
  REQUIRE(wait_for([&] { return cp.healthy_connections() == 4; }));
  // The server lists a connection on its own thread, after the client's connect completed.
  REQUIRE(wait_for([&] { return server.srv.connection_count() == 4; }));

  // A plain callback has no executor of its own: it runs on the connection's, which must be
  // the calling thread's when the call is made on a pool thread.
  std::atomic<int> same_thread{0}, answered{0};
  constexpr int calls = 50;
  for (std::size_t i = 0; i < pool.size(); ++i)
    for (int k = 0; k < calls; ++k)
      asio::post(pool.executor(i), [&] {
        auto me = std::this_thread::get_id();
        cp.async_call(1, text_bytes("here"), {}, {}, [&, me](std::error_code ec, call_response r) {
          if (!ec && str(r.msg) == "here") ++answered;
          if (std::this_thread::get_id() == me) ++same_thread;
        });
      });
  REQUIRE(wait_for([&] { return answered == 2 * calls; }));
  CHECK(same_thread == 2 * calls);
  auto [ec] = wait_result<std::error_code>([&](auto h) { cp.async_close(std::move(h)); });
  CHECK_FALSE(ec);
  CHECK(cp.healthy_connections() == 0);
}

TEST_CASE("calls to a client_pool from many threads complete on each caller's own executor",
          "[pool][threads]") {
  caller_threads on_threads;  // first: outlives the pools
  echo_server server(2);
  runtime::context_pool pool(2);
  client_pool cp(pool.executors(), server.where, {}, pool_config{.connections = 4});
  pool.start();
  constexpr int threads = 4, loops = 4, calls = 100;
  std::atomic<int> good{0}, elsewhere{0};
  int finished = on_threads.run(threads, [&](int t) -> asio::awaitable<void> {
    auto me = std::this_thread::get_id();
    int done = 0;
    auto ex = co_await asio::this_coro::executor;
    for (int l = 0; l < loops; ++l)
      asio::co_spawn(
          ex,
          [&, t, l]() -> asio::awaitable<void> {
            std::string name = "t" + std::to_string(t) + "l" + std::to_string(l);
            call_response buffers;
            for (int i = 0; i < calls; ++i) {
              auto [ec, r] = co_await cp.async_call(1, text_bytes(name), {}, std::move(buffers), tok);
              if (!ec && str(r.msg) == name) ++good;
              if (std::this_thread::get_id() != me) ++elsewhere;
              buffers = std::move(r);
            }
          },
          [&](std::exception_ptr) { ++done; });
    co_await wait_until([&] { return done == loops; });
  });
  CHECK(finished == threads);
  CHECK(good == threads * loops * calls);
  CHECK(elsewhere == 0);
}

TEST_CASE("closing a client_pool from several threads while calls flow completes every call, each once",
          "[pool][threads]") {
  caller_threads on_threads;  // first: outlives the pools
  echo_server server(2);
  runtime::context_pool pool(2);
  client_pool cp(pool.executors(), server.where, {}, pool_config{.connections = 4});
  pool.start();
  REQUIRE(wait_for([&] { return cp.healthy_connections() == 4; }));
  constexpr int threads = 3;
  std::atomic<int> ok{0}, closed{0}, other{0}, calls_made{0};
  std::atomic<bool> stop{false};
  int finished = on_threads.run(threads + 2, [&](int t) -> asio::awaitable<void> {
    if (t >= threads) {  // two closers, once some calls have gone through
      co_await wait_until([&] { return ok > 200; });
      cp.close();
      stop = true;
      co_return;
    }
    for (int i = 0; i < 100'000 && !stop; ++i) {
      ++calls_made;
      auto [ec, r] = co_await cp.async_call(1, text_bytes("x"), {}, {}, tok);
      ++(!ec ? ok : ec == errc::closed ? closed : other);
    }
    // After close() every call fails with closed, at once.
    auto [ec, r] = co_await cp.async_call(1, text_bytes("x"), {}, {}, tok);
    CHECK(ec == errc::closed);
  });
  CHECK(finished == threads + 2);
  CHECK(ok + closed + other == calls_made);
  CHECK(other == 0);
  CHECK(ok > 200);
  REQUIRE(wait_for([&] { return cp.healthy_connections() == 0; }));
}

TEST_CASE("a failover_pool on a context pool keeps serving while update_addresses, healthy_addresses and calls run on many threads",
          "[pool][failover][threads]") {
  caller_threads on_threads;  // first: outlives the pools
  echo_server a(2), b(2);
  runtime::context_pool pool(2);
  failover_pool fp(pool.executors(), {a.where, b.where}, {}, failover_config{.pool = {.connections = 2}});
  pool.start();
  REQUIRE(wait_for([&] { return fp.healthy_addresses().size() == 2; }));
  constexpr int callers = 3, calls = 300;
  std::atomic<int> good{0}, bad{0};
  std::mutex m;
  std::vector<std::string> failures;  // guarded by m
  std::atomic<bool> calling{true};
  int finished = on_threads.run(callers + 2, [&](int t) -> asio::awaitable<void> {
    if (t == callers) {  // drops b and brings it back, again and again
      for (int i = 0; calling && i < 1000; ++i) {
        fp.update_addresses(i % 2 ? std::vector<address>{a.where, b.where} : std::vector<address>{a.where});
        co_await sleep_for(1ms);
      }
      co_return;
    }
    if (t == callers + 1) {  // reads the set meanwhile
      while (calling) {
        auto healthy = fp.healthy_addresses();
        CHECK(healthy.size() <= 2);
        co_await sleep_for(1ms);
      }
      co_return;
    }
    std::string name = "c" + std::to_string(t);
    for (int i = 0; i < calls; ++i) {
      auto [ec, r] = co_await fp.async_call(1, text_bytes(name), {}, {}, tok);
      if (!ec && str(r.msg) == name) {
        ++good;
      } else {
        ++bad;
        std::lock_guard lock(m);
        failures.push_back(ec.message());
      }
    }
    if (good + bad == callers * calls) calling = false;
  });
  CHECK(finished == callers + 2);
  std::string failed;
  for (auto& f : failures) failed += f + "; ";
  INFO("failed calls: " << failed);
  CHECK(good == callers * calls);  // a removed address's calls finish there; a is always up
  CHECK(bad == 0);
  fp.update_addresses({a.where, b.where});
  REQUIRE(wait_for([&] { return fp.healthy_addresses().size() == 2; }));
  std::thread other([&] { fp.close(); });
  fp.close();
  other.join();
  auto [ec, r] = wait_result<std::error_code, call_response>(
      [&](auto h) { fp.async_call(1, text_bytes("late"), {}, {}, std::move(h)); });
  CHECK(ec == errc::closed);
}

// --- Executors: the same connection code on each kind ---------------------------------------

namespace {

/// 8 connections x 4 loops x 50 echo calls, from the test's thread, on the given executors; the
/// server on `server_executors`. Every answer is checked; then a graceful shutdown.
void serve_and_call(std::vector<asio::any_io_executor> server_executors,
                    std::function<asio::any_io_executor()> client_executor) {
  server<echo> srv(server_executors, echo{});
  auto where = srv.listen("127.0.0.1:0");
  constexpr int connections = 8, loops = 4, calls = 50;
  std::vector<client_stream> clients;
  for (int i = 0; i < connections; ++i) {
    auto [ec, c] = wait_result<std::error_code, client_stream>(
        [&](auto h) { client_stream::async_connect(client_executor(), where, {}, {}, std::move(h)); });
    REQUIRE_FALSE(ec);
    clients.push_back(std::move(c));
  }
  std::atomic<int> good{0}, done{0};
  for (int i = 0; i < connections; ++i)
    for (int l = 0; l < loops; ++l) {
      auto& c = clients[i];
      asio::co_spawn(
          c.get_executor(),
          [&c, &good, name = std::to_string(i) + "/" + std::to_string(l)]() -> asio::awaitable<void> {
            for (int k = 0; k < calls; ++k) {
              std::string blob(100 + k, static_cast<char>('a' + k % 26));
              auto [ec, r] = co_await c.async_call(1, text_bytes(name), text_bytes(blob), {}, tok);
              if (!ec && str(r.msg) == name && str(r.blob) == blob) ++good;
            }
          },
          [&](std::exception_ptr) { ++done; });
    }
  REQUIRE(wait_for([&] { return done == connections * loops; }));
  CHECK(good == connections * loops * calls);
  CHECK(srv.connection_count() == connections);
  for (auto& c : clients) {
    auto [ec] = wait_result<std::error_code>([&](auto h) { c.async_close(std::move(h)); });
    CHECK_FALSE(ec);
  }
  auto [ec] = wait_result<std::error_code>([&](auto h) { srv.async_shutdown(std::move(h)); });
  CHECK_FALSE(ec);
  CHECK(srv.connection_count() == 0);
}

}  // namespace

TEST_CASE("connections work on an io_context run by one thread", "[stream][threads][executor]") {
  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  serve_and_call({io.get_executor()}, [&] { return io.get_executor(); });
  guard.reset();
  runner.join();
}

TEST_CASE("connections work on an asio::thread_pool with a strand per connection", "[stream][threads][executor]") {
  asio::thread_pool threads(4);
  std::vector<asio::any_io_executor> server_strands;
  for (int i = 0; i < 4; ++i) server_strands.push_back(asio::make_strand(threads));
  serve_and_call(server_strands, [&] { return asio::any_io_executor(asio::make_strand(threads)); });
  threads.join();
}

TEST_CASE("connections work on a context pool's contexts, client and server", "[stream][threads][executor]") {
  runtime::context_pool server_threads(2), client_threads(2);
  server_threads.start();
  client_threads.start();
  serve_and_call(server_threads.executors(), [&] { return client_threads.next_executor(); });
}

TEST_CASE("a client_pool on strands of an asio::thread_pool serves calls from many threads",
          "[pool][threads][executor]") {
  caller_threads on_threads;  // first: outlives the pools
  echo_server server(2);
  asio::thread_pool threads(3);
  std::vector<asio::any_io_executor> strands;
  for (int i = 0; i < 3; ++i) strands.push_back(asio::make_strand(threads));
  client_pool cp(strands, server.where, {}, pool_config{.connections = 3});
  constexpr int callers = 3, calls = 200;
  std::atomic<int> good{0};
  int finished = on_threads.run(callers, [&](int t) -> asio::awaitable<void> {
    std::string name = "s" + std::to_string(t);
    for (int i = 0; i < calls; ++i) {
      auto [ec, r] = co_await cp.async_call(1, text_bytes(name), {}, {}, tok);
      if (!ec && str(r.msg) == name) ++good;
    }
  });
  CHECK(finished == callers);
  CHECK(good == callers * calls);
  auto [ec] = wait_result<std::error_code>([&](auto h) { cp.async_close(std::move(h)); });
  CHECK_FALSE(ec);
  threads.join();
}
