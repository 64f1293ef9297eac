// The client_pool keeper's decisions, event by event, with invented times: no socket, no sleep.
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/session/pool_keeper_fsm.hpp>

#include <catch2/catch.hpp>

#include <chrono>

using namespace occams_rpc;
using namespace occams_rpc::session;
using namespace std::chrono_literals;
using time_point = std::chrono::steady_clock::time_point;
using kstate = pool_keeper_fsm::state;

namespace {

const time_point t0{std::chrono::hours{1}};

pool_config cfg(std::chrono::milliseconds period = 1000ms, std::chrono::milliseconds first = 100ms,
                std::chrono::milliseconds cap = 1000ms) {
  pool_config c;
  c.health_check_period = period;
  c.reconnect_backoff = first;
  c.reconnect_backoff_max = cap;
  return c;
}

void check_wait(keeper_action a, time_point until) {
  REQUIRE(a.step == keeper_step::wait);
  CHECK(a.until == until);
}

// Fails connects from `now` until the fsm has waited `n` backoffs; returns the time after the
// last wait ended and the fsm asked to connect again.
time_point fail_connects(pool_keeper_fsm& k, time_point now, int n) {
  for (int i = 0; i < n; ++i) {
    auto w = k.on_connect_failed(now);
    REQUIRE(w.step == keeper_step::wait);
    now = w.until;
    REQUIRE(k.on_timer(now).step == keeper_step::connect);
  }
  return now;
}

}  // namespace

TEST_CASE("a keeper connects at once when it starts, and is not healthy before the connect succeeds", "[fsm]") {
  pool_keeper_fsm k(cfg());
  CHECK(k.current_state() == kstate::idle);
  CHECK(k.start(t0).step == keeper_step::connect);
  CHECK(k.current_state() == kstate::connecting);
  CHECK_FALSE(k.healthy());
}

TEST_CASE("failed connects back off from reconnect_backoff, doubling up to reconnect_backoff_max", "[fsm]") {
  pool_keeper_fsm k(cfg(1000ms, 100ms, 1000ms));
  REQUIRE(k.start(t0).step == keeper_step::connect);
  auto now = t0;
  for (auto expected : {100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms, 1000ms}) {
    auto w = k.on_connect_failed(now);
    check_wait(w, now + expected);
    CHECK_FALSE(k.healthy());
    CHECK(k.current_state() == kstate::backing_off);
    now = w.until;
    CHECK(k.on_timer(now).step == keeper_step::connect);
  }
}

TEST_CASE("a backoff cap that is not a power of two times the first backoff is reached exactly", "[fsm]") {
  pool_keeper_fsm k(cfg(1000ms, 100ms, 300ms));
  REQUIRE(k.start(t0).step == keeper_step::connect);
  check_wait(k.on_connect_failed(t0), t0 + 100ms);
  REQUIRE(k.on_timer(t0 + 100ms).step == keeper_step::connect);
  check_wait(k.on_connect_failed(t0 + 150ms), t0 + 150ms + 200ms);
  REQUIRE(k.on_timer(t0 + 350ms).step == keeper_step::connect);
  check_wait(k.on_connect_failed(t0 + 400ms), t0 + 400ms + 300ms);
}

TEST_CASE("a backoff timer that ends early waits again until the same deadline", "[fsm]") {
  pool_keeper_fsm k(cfg(1000ms, 100ms, 1000ms));
  REQUIRE(k.start(t0).step == keeper_step::connect);
  check_wait(k.on_connect_failed(t0), t0 + 100ms);
  check_wait(k.on_timer(t0 + 50ms), t0 + 100ms);
  CHECK(k.on_timer(t0 + 100ms).step == keeper_step::connect);
}

TEST_CASE("a connect that succeeds makes the connection healthy and resets the backoff", "[fsm]") {
  pool_keeper_fsm k(cfg(1000ms, 100ms, 1000ms));
  REQUIRE(k.start(t0).step == keeper_step::connect);
  auto now = fail_connects(k, t0, 4);  // backoff now 1000 ms for the next failure
  CHECK(k.next_backoff() == 1000ms);
  auto w = k.on_connected(now);
  CHECK(k.healthy());
  CHECK(k.next_backoff() == 100ms);
  // It fails again: the wait starts over at reconnect_backoff.
  REQUIRE(k.on_timer(w.until).step == keeper_step::ping);
  REQUIRE(k.on_ping_failed(w.until + 5ms).step == keeper_step::drop);
  check_wait(k.on_dropped(w.until + 5ms), w.until + 5ms + 100ms);
  REQUIRE(k.on_timer(w.until + 105ms).step == keeper_step::connect);
  check_wait(k.on_connect_failed(w.until + 110ms), w.until + 110ms + 200ms);
}

TEST_CASE("a healthy connection is pinged every health_check_period, counted from the last answer", "[fsm]") {
  pool_keeper_fsm k(cfg(1000ms, 100ms, 1000ms));
  REQUIRE(k.start(t0).step == keeper_step::connect);
  check_wait(k.on_connected(t0 + 10ms), t0 + 1010ms);
  // Not due yet: wait on to the same deadline.
  check_wait(k.on_timer(t0 + 900ms), t0 + 1010ms);
  CHECK(k.on_timer(t0 + 1010ms).step == keeper_step::ping);
  CHECK(k.current_state() == kstate::pinging);
  CHECK(k.healthy());  // calls may still go to a connection being pinged
  check_wait(k.on_ping_ok(t0 + 1040ms), t0 + 2040ms);
  CHECK(k.on_timer(t0 + 2040ms).step == keeper_step::ping);
  check_wait(k.on_ping_ok(t0 + 2041ms), t0 + 3041ms);
  CHECK(k.healthy());
}

TEST_CASE("a failed ping drops the connection, backs off, and reconnects", "[fsm]") {
  pool_keeper_fsm k(cfg(1000ms, 100ms, 1000ms));
  REQUIRE(k.start(t0).step == keeper_step::connect);
  auto w = k.on_connected(t0);
  REQUIRE(k.on_timer(w.until).step == keeper_step::ping);
  auto failed_at = w.until + 20ms;
  CHECK(k.on_ping_failed(failed_at).step == keeper_step::drop);
  CHECK_FALSE(k.healthy());  // new calls skip it from the moment the ping failed
  check_wait(k.on_dropped(failed_at), failed_at + 100ms);
  CHECK_FALSE(k.healthy());
  CHECK(k.on_timer(failed_at + 100ms).step == keeper_step::connect);
  check_wait(k.on_connected(failed_at + 120ms), failed_at + 1120ms);
  CHECK(k.healthy());
}

TEST_CASE("a connection lost between pings is dropped and reconnected after the backoff", "[fsm]") {
  pool_keeper_fsm k(cfg(1000ms, 100ms, 1000ms));
  REQUIRE(k.start(t0).step == keeper_step::connect);
  REQUIRE(k.on_connected(t0).step == keeper_step::wait);
  CHECK(k.on_connection_lost(t0 + 1000ms).step == keeper_step::drop);
  CHECK_FALSE(k.healthy());
  check_wait(k.on_dropped(t0 + 1000ms), t0 + 1100ms);
  CHECK(k.on_timer(t0 + 1100ms).step == keeper_step::connect);
  // Reconnects keep failing: the backoff grows from where the drop left it.
  check_wait(k.on_connect_failed(t0 + 1100ms), t0 + 1300ms);
}

TEST_CASE("closing while a connect is under way ends the keeper whatever the connect's outcome", "[fsm]") {
  SECTION("the connect succeeds after the close") {
    pool_keeper_fsm k(cfg());
    REQUIRE(k.start(t0).step == keeper_step::connect);
    CHECK(k.close().step == keeper_step::done);
    CHECK(k.on_connected(t0 + 5ms).step == keeper_step::done);  // the shell closes the new connection
    CHECK_FALSE(k.healthy());
  }
  SECTION("the connect fails after the close") {
    pool_keeper_fsm k(cfg());
    REQUIRE(k.start(t0).step == keeper_step::connect);
    CHECK(k.close().step == keeper_step::done);
    CHECK(k.on_connect_failed(t0 + 5ms).step == keeper_step::done);  // no backoff wait
  }
}

TEST_CASE("closing ends the keeper in every other state, and every later event answers done", "[fsm]") {
  SECTION("during a backoff") {
    pool_keeper_fsm k(cfg());
    REQUIRE(k.start(t0).step == keeper_step::connect);
    REQUIRE(k.on_connect_failed(t0).step == keeper_step::wait);
    CHECK(k.close().step == keeper_step::done);
    CHECK(k.on_timer(t0 + 1ms).step == keeper_step::done);  // the cancelled timer
  }
  SECTION("while up, and during a ping") {
    pool_keeper_fsm k(cfg());
    REQUIRE(k.start(t0).step == keeper_step::connect);
    auto w = k.on_connected(t0);
    REQUIRE(k.on_timer(w.until).step == keeper_step::ping);
    CHECK(k.close().step == keeper_step::done);
    CHECK_FALSE(k.healthy());
    CHECK(k.on_ping_failed(w.until).step == keeper_step::done);  // not a drop: calls in flight finish
    CHECK(k.on_ping_ok(w.until).step == keeper_step::done);
    CHECK(k.on_connection_lost(w.until).step == keeper_step::done);
  }
  SECTION("before it started") {
    pool_keeper_fsm k(cfg());
    CHECK(k.close().step == keeper_step::done);
    CHECK(k.start(t0).step == keeper_step::done);
  }
}

TEST_CASE("a call that finds no connection waits unless the pool is closed, does not wait, or max_waiting wait",
          "[fsm]") {
  pool_config c;
  c.max_waiting = 2;
  CHECK(admit_waiting_call(c, false, 0) == std::error_code{});
  CHECK(admit_waiting_call(c, false, 1) == std::error_code{});
  CHECK(admit_waiting_call(c, false, 2) == errc::overloaded);
  CHECK(admit_waiting_call(c, true, 0) == errc::closed);
  c.wait_for_connection = false;
  CHECK(admit_waiting_call(c, false, 0) == errc::unreachable);
  CHECK(admit_waiting_call(c, true, 0) == errc::closed);
}
