// Server limits and lifecycle: idle timeout, answers from other threads, stale Unix sockets,
// abort on the client.
#include "test_support.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <filesystem>
#include <thread>
#include <vector>

using namespace occams_rpc;
using namespace test;

namespace {
struct echo {
  void operator()(server_request req) { req.respond(req.msg(), req.blob()); }
};

}  // namespace

TEST_CASE("the server closes a connection that stays idle past the idle timeout", "[stream]") {
  asio::io_context io;
  server srv(io.get_executor(), echo{}, {.idle_timeout = 100ms, .timer_tick = 20ms});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    auto [e1, r1] = co_await client.async_call(1, text_bytes("still busy"), {}, {}, tok);
    CHECK_FALSE(e1);
    for (int i = 0; i < 100 && client.is_open(); ++i) co_await sleep_for(10ms);
    CHECK_FALSE(client.is_open());
    CHECK(srv.connection_count() == 0);
    auto [e2, r2] = co_await client.async_call(1, text_bytes("too late"), {}, {}, tok);
    CHECK(e2 == make_error_code(errc::io_err));
  });
}

TEST_CASE("a request answered from another thread reaches its client", "[stream]") {
  asio::io_context io;
  std::vector<std::thread> workers;
  struct hand_off {
    std::vector<std::thread>* workers;
    void operator()(server_request req) {
      workers->emplace_back([r = std::move(req)]() mutable {
        std::string answer = "from a worker: " + std::string(r.msg().begin(), r.msg().end());
        r.respond(text_bytes(answer));
      });
    }
  };
  server srv(io.get_executor(), hand_off{&workers});
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    for (int i = 0; i < 20; ++i) {
      std::string msg = std::to_string(i);
      auto [e, r] = co_await client.async_call(1, text_bytes(msg), {}, {}, tok);
      CHECK_FALSE(e);
      CHECK(str(r.msg) == "from a worker: " + msg);
    }
  });
  for (auto& t : workers) t.join();
}

TEST_CASE("a request dropped without an answer is answered rpc_internal_err", "[stream]") {
  asio::io_context io;
  struct drop {
    void operator()(server_request) {}
  };
  server srv(io.get_executor(), drop{});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    auto [e, r] = co_await client.async_call(1, text_bytes("x"), {}, {}, tok);
    CHECK(e == make_error_code(errc::internal));
  });
}

TEST_CASE("listening on a stale Unix socket file replaces it", "[stream][transport]") {
  auto path = "/tmp/occams-rpc-stale-" + std::to_string(::getpid()) + ".sock";
  {
    // Leave a socket file behind that nobody listens on.
    asio::io_context scratch;
    asio::local::stream_protocol::acceptor a(scratch, asio::local::stream_protocol::endpoint(path));
  }
  REQUIRE(std::filesystem::exists(path));
  asio::io_context io;
  server srv(io.get_executor(), echo{});
  auto where = srv.listen("unix:" + path);
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    auto [e, r] = co_await client.async_call(1, text_bytes("fresh"), {}, {}, tok);
    CHECK(str(r.msg) == "fresh");
  });
}

TEST_CASE("a live Unix socket is not stolen by a second server", "[stream][transport]") {
  asio::io_context io;
  server first(io.get_executor(), echo{});
  auto where = first.listen(listen_address(true));
  server second(io.get_executor(), echo{});
  CHECK_THROWS_AS(second.listen(where), std::system_error);
}

TEST_CASE("connecting where nobody listens fails with unreachable", "[stream][transport]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await client_stream::async_connect(io.get_executor(), parse_address("unix:/tmp/occams-rpc-nobody.sock"),
                                                         {.connect_timeout = 500ms}, {}, tok);
    CHECK(ec == make_error_code(errc::unreachable));
    CHECK_FALSE(c);
    auto [e, r] = co_await c.async_call(1, text_bytes("x"), {}, {}, tok);
    CHECK(e == make_error_code(errc::closed));
    auto [pe] = co_await c.async_ping(tok);
    CHECK(pe == make_error_code(errc::closed));
  });
}

TEST_CASE("a refused TCP connect fails with unreachable and its log line names the OS's reason",
          "[stream][transport]") {
  asio::io_context io;
  // A loopback port nobody listens on any more: the kernel refuses at once.
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto where = address::tcp("127.0.0.1", probe.local_endpoint().port());
  probe.close();
  std::vector<std::string> lines;
  logger log(log_level::info, [&](log_level, std::string_view m) { lines.emplace_back(m); });
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await client_stream::async_connect(io.get_executor(), where, {.connect_timeout = 5s}, log, tok);
    CHECK(ec == make_error_code(errc::unreachable));
    CHECK(is_retriable(ec));
  });
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains(where.to_string()) && Catch::Contains("rpc_unreachable") &&
                           Catch::Contains("refused", Catch::CaseSensitive::No));
}

TEST_CASE("abort fails the calls in flight and later calls with closed", "[stream]") {
  asio::io_context io;
  std::vector<server_request> held;
  server srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.window = 2});
    int done = 0, closed = 0;
    for (int i = 0; i < 5; ++i)  // 2 in flight, 3 waiting for the window
      client.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code e, call_response) {
        ++done;
        closed += e == make_error_code(errc::closed);
      });
    co_await wait_until([&] { return held.size() >= 2; });
    client.abort();
    co_await wait_until([&] { return done >= 5; });
    CHECK(closed == 5);
    auto [e, r] = co_await client.async_call(1, text_bytes("x"), {}, {}, tok);
    CHECK(e == make_error_code(errc::closed));
  });
}

TEST_CASE("an io_context destroyed with calls in flight frees the callers waiting on them", "[stream]") {
  // The coroutine owns its stream, and the stream's connection stores the coroutine's handler:
  // a cycle that only the context's shutdown can break.
  bool use_unix = unix_transport();
  std::weak_ptr<int> callback, coroutine;
  {
    asio::io_context io;
    std::vector<server_request> held;
    server srv(io.get_executor(), holding_dispatch{&held});
    auto where = srv.listen(listen_address(use_unix));
    auto caller = [where](std::shared_ptr<int> in_frame, std::shared_ptr<int> in_callback) -> asio::awaitable<void> {
      auto client = co_await connect(where, {.window = 1});
      // In flight, never answered:
      client.async_call(1, text_bytes("a"), {}, {}, [m = std::move(in_callback)](auto...) {});
      // Waits for the window:
      co_await client.async_call(1, text_bytes("b"), {}, {}, tok);
      (void)in_frame;
    };
    auto a = std::make_shared<int>(1), b = std::make_shared<int>(2);
    coroutine = a;
    callback = b;
    asio::co_spawn(io, caller(std::move(a), std::move(b)), asio::detached);
    for (int i = 0; i < 2000 && held.empty(); ++i) io.run_one_for(10ms);
    REQUIRE(held.size() == 1);
    io.poll();
    CHECK_FALSE(coroutine.expired());
    CHECK_FALSE(callback.expired());
  }
  CHECK(coroutine.expired());
  CHECK(callback.expired());
}

TEST_CASE("requests held past their connection's forced close can still be answered and dropped safely",
          "[stream]") {
  // The connection keeps itself alive while requests outlive their dispatch call: answering
  // (or dropping) them after shutdown closed it touches no freed memory (ASan runs this).
  asio::io_context io;
  std::vector<server_request> held;
  server srv(io.get_executor(), holding_dispatch{&held}, {.close_wait = 50ms, .timer_tick = 10ms});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.call_timeout = 2s});
    int done = 0;
    for (int i = 0; i < 4; ++i)
      client.async_call(1, text_bytes("held"), {}, {}, [&](std::error_code, call_response) { ++done; });
    co_await wait_until([&] { return held.size() == 4; });
    auto [sec] = co_await srv.async_shutdown(tok);  // close_wait passes: the connection is closed
    CHECK_FALSE(sec);
    CHECK(srv.connection_count() == 0);
    held[0].respond(text_bytes("too late"));
    held[1].respond_error_code(7);
    held.resize(2);  // the other two are dropped: each answers rpc_internal_err into the void
    co_await sleep_for(20ms);  // the connection lets go of itself once the last one is answered
    co_await wait_until([&] { return done == 4; });  // the client saw the connection fail
    held.clear();
  });
}

TEST_CASE("an io_context destroyed while handler coroutines hold requests frees everything safely", "[stream]") {
  // The requests live in coroutine frames that the context's shutdown destroys after the
  // connection has been told to shut down: dropping them then must touch no freed memory
  // (ASan runs this) and leak nothing.
  struct slow_dispatch {
    int* started;
    asio::awaitable<void> operator()(server_request req) {
      ++*started;
      asio::steady_timer t(co_await asio::this_coro::executor, 1h);
      co_await t.async_wait(asio::deferred);  // never finishes: destroyed with the context
      req.respond(text_bytes("never"));
    }
  };
  int started = 0;
  std::weak_ptr<int> callback;
  {
    asio::io_context io;
    server srv(io.get_executor(), slow_dispatch{&started});
    auto where = srv.listen(listen_address(true));
    auto b = std::make_shared<int>(2);
    callback = b;
    asio::co_spawn(io, [where, b]() -> asio::awaitable<void> {
      auto client = co_await connect(where);
      for (int i = 0; i < 3; ++i) client.async_call(1, text_bytes("x"), {}, {}, [b](auto...) {});
      co_await sleep_for(1h);  // keeps the stream; destroyed with the context
    }, asio::detached);
    for (int i = 0; i < 2000 && started < 3; ++i) io.run_one_for(10ms);
    REQUIRE(started == 3);
  }
  CHECK(callback.expired());
}

TEST_CASE("calls whose large requests wait behind a stuck write complete when the connection is aborted",
          "[stream]") {
  // The server stops reading (one request in flight at most, held), so the first large request
  // stalls in the socket; the next ones wait in the following batch, which references their
  // msgs. abort() must complete them all (none may wait for a write that will never happen).
  asio::io_context io;
  std::vector<server_request> held;
  server srv(io.get_executor(), holding_dispatch{&held}, {.max_inflight = 1});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.call_timeout = 10s});
    const std::string big(8 * 1024 * 1024, 'b');  // more than the socket buffers hold
    int done = 0;
    std::vector<std::error_code> results;
    auto call = [&] {
      client.async_call(1, text_bytes(big), {}, {}, [&](std::error_code ec, call_response) {
        results.push_back(ec);
        ++done;
      });
    };
    call();  // read and held by the server, which then stops reading
    co_await wait_until([&] { return held.size() == 1; });
    call();  // its batch's write gets stuck
    co_await sleep_for(50ms);
    call();  // these two wait in the next batch, behind the stuck write
    call();
    co_await sleep_for(20ms);
    client.abort();
    co_await wait_until([&] { return done == 4; });
    for (auto ec : results) CHECK(ec);
  });
}
