// client_pool and failover_pool against real servers in this process (Unix sockets), stopped
// and started again to make faults.
#include "test_support.hpp"

#include <occams_rpc/stream/client_pool.hpp>
#include <occams_rpc/stream/failover_pool.hpp>

#include <optional>
#include <vector>

using namespace occams_rpc;
using namespace ::test;

OCCAMS_RPC_SERVICE(CalServiceForPools, (add, std::int64_t(std::int64_t, std::int64_t)));

namespace {

struct pool_calculator {
  std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }
};

/// A server on a fixed Unix socket that counts the calls it answered; stop() closes it at
/// once (its clients see the connection drop), start() listens again on the same path.
struct counting_server {
  struct count_and_echo {
    std::size_t* served;
    void operator()(server_request req) {
      ++*served;
      req.respond(req.msg());
    }
  };
  asio::io_context& io;
  address where = parse_address(listen_address(true));
  std::size_t served = 0;
  std::optional<server<count_and_echo>> srv;

  explicit counting_server(asio::io_context& io_) : io(io_) { start(); }
  void start() {
    srv.emplace(io.get_executor(), count_and_echo{&served});
    srv->listen(where);
  }
  void stop() { srv.reset(); }
};

/// Short timers so that faults are noticed in milliseconds.
constexpr client_config fast_client{.call_timeout = 2s, .connect_timeout = 200ms, .timeout_tick = 20ms};
constexpr pool_config fast_pool{.health_check_period = 20ms, .reconnect_backoff = 10ms, .reconnect_backoff_max = 50ms};

template <class Channel>
asio::awaitable<std::error_code> call_once(Channel& ch, std::string_view msg = "x") {
  auto [ec, r] = co_await ch.async_call(1, text_bytes(msg), {}, {}, tok);
  if (!ec && r.msg.view() != msg) co_return make_error_code(errc::decode);
  co_return ec;
}

/// `workers` coroutines make `total` calls between them; returns how many failed.
template <class Channel, class OnCall>
asio::awaitable<std::size_t> call_many(Channel& ch, std::size_t total, std::size_t workers, OnCall on_call) {
  std::size_t next = 0, failed = 0, running = workers;
  for (std::size_t w = 0; w < workers; ++w)
    asio::co_spawn(ch.get_executor(), [&]() -> asio::awaitable<void> {
      while (next < total) {
        ++next;
        if (co_await call_once(ch)) ++failed;
        on_call();
      }
      --running;
    }, asio::detached);
  co_await wait_until([&] { return running == 0; }, 1ms);
  co_return failed;
}

}  // namespace

TEST_CASE("a client_pool spreads calls over its connections", "[pool]") {
  asio::io_context io;
  counting_server s(io);
  client_pool pool(io.get_executor(), s.where, fast_client, {.connections = 3});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_connections() == 3; });
    auto failed = co_await call_many(pool, 3000, 16, [] {});
    CHECK(failed == 0);
    CHECK(s.served == 3000);
    CHECK(s.srv->accepted_count() == 3);
    co_await pool.async_close(tok);
  });
}

TEST_CASE("a client_pool reconnects after its server comes back and is healthy again", "[pool]") {
  asio::io_context io;
  counting_server s(io);
  auto cfg = fast_pool;
  cfg.wait_for_connection = false;
  client_pool pool(io.get_executor(), s.where, fast_client, cfg);
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy(); });
    auto ec1 = co_await call_once(pool);
    CHECK_FALSE(ec1);
    s.stop();
    co_await wait_until([&] { return !pool.healthy(); });
    auto down = co_await call_once(pool);
    CHECK(down == make_error_code(errc::unreachable));  // fails fast: nothing waits
    s.start();
    co_await wait_until([&] { return pool.healthy(); });
    auto ec2 = co_await call_once(pool);
    CHECK_FALSE(ec2);
    co_await pool.async_close(tok);
  });
}

TEST_CASE("calls made while the address is down wait for a connection, up to the connect timeout", "[pool]") {
  asio::io_context io;
  counting_server s(io);
  s.stop();
  client_pool pool(io.get_executor(), s.where, fast_client, fast_pool);
  run(io, [&]() -> asio::awaitable<void> {
    auto start = std::chrono::steady_clock::now();
    auto timed_out = co_await call_once(pool);
    CHECK(timed_out == make_error_code(errc::unreachable));
    CHECK(std::chrono::steady_clock::now() - start < 5s);  // bounded: the connect timeout is 200 ms
    // A call made while down completes once the server comes up within its wait.
    std::optional<std::error_code> waited;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { waited = co_await call_once(pool); }, asio::detached);
    co_await sleep_for(20ms);
    s.start();
    co_await wait_until([&] { return waited.has_value(); });
    CHECK_FALSE(*waited);
    co_await pool.async_close(tok);
  });
}

TEST_CASE("closing a client_pool lets the calls in flight finish and refuses later ones", "[pool]") {
  asio::io_context io;
  std::vector<server_request> held;
  server srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(true));
  client_pool pool(io.get_executor(), where, fast_client, fast_pool);
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy(); });
    int ok = 0;
    for (int i = 0; i < 5; ++i)
      pool.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code ec, call_response) { ok += !ec; });
    co_await wait_until([&] { return held.size() == 5; });
    bool closed = false;
    pool.async_close([&](std::error_code) { closed = true; });
    co_await sleep_for(20ms);
    CHECK_FALSE(closed);  // waits for the calls in flight
    for (auto& r : held) r.respond(text_bytes("done"));
    co_await wait_until([&] { return closed; });
    CHECK(ok == 5);
    auto later = co_await call_once(pool);
    CHECK(later == make_error_code(errc::closed));
  });
}

TEST_CASE("a failover_pool in round robin splits 100,000 calls evenly over two servers", "[pool][failover]") {
  asio::io_context io;
  counting_server a(io), b(io);
  failover_pool pool(io.get_executor(), {a.where, b.where}, fast_client, {.pool = fast_pool});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; });
    auto failed = co_await call_many(pool, 100'000, 64, [] {});
    CHECK(failed == 0);
    INFO("a served " << a.served << ", b served " << b.served);
    CHECK(a.served + b.served == 100'000);
    CHECK(a.served >= 50'000 - 2);
    CHECK(a.served <= 50'000 + 2);
  }, 120s);
}

TEST_CASE("a failover_pool completes every call when one server stops, and uses it again when it returns", "[pool][failover]") {
  asio::io_context io;
  counting_server a(io), b(io);
  failover_pool pool(io.get_executor(), {a.where, b.where}, fast_client, {.pool = fast_pool});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; });
    bool stopped = false;
    auto failed = co_await call_many(pool, 15'000, 32, [&] {
      if (!stopped && a.served >= 2'500) {
        stopped = true;
        a.stop();
      }
    });
    CHECK(stopped);
    CHECK(failed == 0);
    INFO("a served " << a.served << ", b served " << b.served);
    CHECK(a.served < b.served);
    CHECK(a.served + b.served >= 15'000);  // at least once: a retried call may have run twice

    // The stopped server comes back: its pool reconnects and it gets calls again.
    std::size_t a_before = a.served;
    a.start();
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; });
    failed = co_await call_many(pool, 1'000, 8, [] {});
    CHECK(failed == 0);
    CHECK(a.served > a_before);
  }, 120s);
}

TEST_CASE("with every server down calls fail with unreachable promptly, then succeed when one returns", "[pool][failover]") {
  asio::io_context io;
  counting_server a(io), b(io);
  a.stop();
  b.stop();
  failover_pool pool(io.get_executor(), {a.where, b.where}, fast_client, {.retry_limit = 1, .pool = fast_pool});
  run(io, [&]() -> asio::awaitable<void> {
    auto start = std::chrono::steady_clock::now();
    auto down = co_await call_once(pool);
    CHECK(down == make_error_code(errc::unreachable));
    CHECK(std::chrono::steady_clock::now() - start < 5s);  // two attempts of a 200 ms connect timeout
    b.start();
    co_await wait_until([&] { return pool.healthy_addresses().size() == 1; });
    auto ec3 = co_await call_once(pool);
    CHECK_FALSE(ec3);
    CHECK(b.served == 1);
  });
}

TEST_CASE("update_addresses adds a server and removes one while calls flow", "[pool][failover]") {
  asio::io_context io;
  counting_server a(io), b(io), c(io);
  failover_pool pool(io.get_executor(), {a.where, b.where}, fast_client, {.pool = fast_pool});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; });
    std::size_t calls = 0, a_at_update = 0;
    auto failed = co_await call_many(pool, 6'000, 16, [&] {
      if (++calls == 2'000) {
        pool.update_addresses({b.where, c.where});
        a_at_update = a.served;
      }
    });
    CHECK(failed == 0);
    INFO("a " << a.served << " (at the update " << a_at_update << "), b " << b.served << ", c " << c.served);
    CHECK(c.served > 0);
    CHECK(a.served <= a_at_update + 16);  // only calls already in flight on a
    auto healthy = pool.healthy_addresses();
    CHECK(healthy.size() == 2);
    CHECK(std::find(healthy.begin(), healthy.end(), a.where) == healthy.end());
  }, 60s);
}

TEST_CASE("a typed call retried after a server's own rpc_timeout sends its arguments again intact", "[pool][failover][api]") {
  // The stub encodes its arguments in the call's buffers; an error string answered by the
  // first server must not overwrite them before the retry on the second.
  struct always_timeout {
    void operator()(server_request req) { req.respond_error(errc::timeout); }
  };
  asio::io_context io;
  server first(io.get_executor(), always_timeout{});
  api::router routes;
  routes.add<CalServiceForPools>(pool_calculator{});
  server second(io.get_executor(), std::move(routes));
  auto a = first.listen(listen_address(true));
  auto b = second.listen(listen_address(true));
  failover_pool pool(io.get_executor(), {a, b}, fast_client, {.order = failover_order::primary_backup, .pool = fast_pool});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; });
    api::stub<CalServiceForPools, failover_pool> cal(pool);
    auto sum = co_await cal.add(40, 2);
    REQUIRE(sum.has_value());
    CHECK(*sum == 42);
    co_await pool.async_close(tok);
    auto after = co_await call_once(pool);
    CHECK(after == make_error_code(errc::closed));
  });
}

TEST_CASE("a typed stub calls through a client_pool", "[pool][api]") {
  asio::io_context io;
  api::router routes;
  routes.add<CalServiceForPools>(pool_calculator{});
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(true));
  client_pool pool(io.get_executor(), where, fast_client, {.connections = 2});
  run(io, [&]() -> asio::awaitable<void> {
    api::stub<CalServiceForPools, client_pool> cal(pool);
    auto sum = co_await cal.add(20, 22);  // made before any connection is up: it waits for one
    REQUIRE(sum.has_value());
    CHECK(*sum == 42);
  });
}

TEST_CASE("a call waiting for a connection can be cancelled through its cancellation slot", "[pool]") {
  asio::io_context io;
  counting_server s(io);
  s.stop();
  auto cfg = fast_client;
  cfg.connect_timeout = 5s;  // the wait would be long: the cancellation ends it
  client_pool pool(io.get_executor(), s.where, cfg, fast_pool);
  run(io, [&]() -> asio::awaitable<void> {
    asio::cancellation_signal sig;
    std::optional<std::error_code> got;
    pool.async_call(1, text_bytes("x"), {}, {}, asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, call_response) {
      got = ec;
    }));
    co_await sleep_for(20ms);
    CHECK_FALSE(got.has_value());  // still waiting: the server is down
    sig.emit(asio::cancellation_type::terminal);
    co_await wait_until([&] { return got.has_value(); });
    CHECK(*got == make_error_code(errc::cancelled));
    co_await pool.async_close(tok);
  });
}

TEST_CASE("calls waiting for a connection are bounded: past max_waiting they fail with overloaded", "[pool]") {
  asio::io_context io;
  counting_server s(io);
  s.stop();
  auto cfg = fast_pool;
  cfg.max_waiting = 3;
  client_pool pool(io.get_executor(), s.where, fast_client, cfg);
  run(io, [&]() -> asio::awaitable<void> {
    std::vector<std::error_code> got;
    for (int i = 0; i < 5; ++i)
      pool.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code ec, call_response) { got.push_back(ec); });
    co_await wait_until([&] { return got.size() == 2; });  // the two past the bound, at once
    CHECK(got[0] == make_error_code(errc::overloaded));
    CHECK(got[1] == make_error_code(errc::overloaded));
    co_await wait_until([&] { return got.size() == 5; });  // the others after the connect timeout
    for (std::size_t i = 2; i < 5; ++i) CHECK(got[i] == make_error_code(errc::unreachable));
    co_await pool.async_close(tok);
  });
}

TEST_CASE("a call that waited for a connection completes safely after its pool is gone", "[pool]") {
  // The waiting call's stored handler refers to the pool's executor: the pool's state must
  // live until the call completes, even when the pool object is destroyed first (ASan).
  asio::io_context io;
  std::vector<server_request> held;
  address where = parse_address(listen_address(true));
  std::optional<server<holding_dispatch>> srv;
  std::error_code got = make_error_code(errc::internal);
  bool done = false;
  run(io, [&]() -> asio::awaitable<void> {
    {
      client_pool pool(io.get_executor(), where, fast_client, fast_pool);  // nobody listens yet
      pool.async_call(1, text_bytes("late"), {}, {}, [&](std::error_code ec, call_response) {
        got = ec;
        done = true;
      });
      co_await sleep_for(30ms);  // the call waits for a connection
      srv.emplace(io.get_executor(), holding_dispatch{&held});
      srv->listen(where);
      co_await wait_until([&] { return held.size() == 1; });  // sent once the keeper connected
    }  // the pool goes; its call is still in flight
    co_await sleep_for(50ms);
    held[0].respond(text_bytes("answer"));
    co_await wait_until([&] { return done; });
  });
  CHECK(done);
  CHECK_FALSE(got);
}
