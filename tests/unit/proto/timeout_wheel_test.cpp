#include <occams_rpc/proto/timeout_wheel.hpp>

#include "unit/support/alloc_counter.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

using namespace occams_rpc::proto;
using namespace std::chrono_literals;

namespace {

struct entry : wheel_hook {
  int id = 0;
  int expired = 0;
  std::uint64_t expired_at = 0;
};

// Advances until `n` expires; returns how many advances that took (0 if it never did).
template <class Wheel>
std::uint64_t advances_until_expiry(Wheel& w, entry& n, std::uint64_t max_advances) {
  for (std::uint64_t i = 1; i <= max_advances; ++i) {
    w.advance([&](entry& e) {
      e.expired_at = w.now();
      ++e.expired;
    });
    if (n.expired) return i;
  }
  return 0;
}

}  // namespace

TEST_CASE("an entry scheduled for T ticks expires exactly at the (T+1)-th advance", "[proto]") {
  for (std::uint64_t ticks : {0u, 1u, 2u, 5u, 62u, 63u}) {
    INFO("ticks " << ticks);
    timeout_wheel<entry> w(64);
    // Start from a non-zero time so the bucket index is not trivially the tick count.
    for (int i = 0; i < 17; ++i) w.advance([](entry&) {});
    entry e;
    w.schedule(e, ticks);
    CHECK(e.linked());
    CHECK(w.size() == 1);
    CHECK(advances_until_expiry(w, e, 1000) == ticks + 1);
    CHECK(e.expired == 1);
    CHECK_FALSE(e.linked());
    CHECK(w.size() == 0);
  }
}

TEST_CASE("entries with timeouts longer than the bucket count wait extra rounds", "[proto]") {
  for (std::uint64_t ticks : {8u, 9u, 15u, 16u, 17u, 100u}) {
    INFO("ticks " << ticks);
    timeout_wheel<entry> w(8);
    entry e;
    w.schedule(e, ticks);
    CHECK(advances_until_expiry(w, e, 1000) == ticks + 1);
    CHECK(e.expired == 1);
    CHECK(w.size() == 0);
  }
}

TEST_CASE("a cancelled entry never expires", "[proto]") {
  timeout_wheel<entry> w(8);
  entry a, b, c;
  w.schedule(a, 3);
  w.schedule(b, 3);  // same bucket as a
  w.schedule(c, 20);
  w.cancel(b);
  CHECK_FALSE(b.linked());
  CHECK(w.size() == 2);
  w.cancel(b);  // harmless when not scheduled
  CHECK(w.size() == 2);
  w.advance([](entry&) {});
  w.cancel(c);  // cancel a multi-round entry
  for (int i = 0; i < 50; ++i) w.advance([](entry& e) { ++e.expired; });
  CHECK(a.expired == 1);
  CHECK(b.expired == 0);
  CHECK(c.expired == 0);
  CHECK(w.size() == 0);
}

TEST_CASE("entries due at the same tick all expire in that advance, in schedule order", "[proto]") {
  timeout_wheel<entry> w(4);
  std::vector<entry> es(10);
  for (int i = 0; i < 10; ++i) {
    es[i].id = i;
    w.schedule(es[i], i % 2 == 0 ? 2 : 6);  // 2 and 6 share a bucket of 4
  }
  std::vector<int> order;
  auto record = [&](entry& e) { order.push_back(e.id); };
  w.advance(record);
  w.advance(record);
  CHECK(order.empty());
  w.advance(record);
  CHECK(order == std::vector<int>{0, 2, 4, 6, 8});
  order.clear();
  for (int i = 0; i < 3; ++i) w.advance(record);
  CHECK(order.empty());
  w.advance(record);
  CHECK(order == std::vector<int>{1, 3, 5, 7, 9});
  CHECK(w.size() == 0);
}

TEST_CASE("an expiry callback may reschedule the entry, even into the bucket being swept", "[proto]") {
  timeout_wheel<entry> w(4);
  entry e;
  w.schedule(e, 1);
  std::vector<std::uint64_t> expiries;
  auto periodic = [&](std::uint64_t period) {
    return [&, period](entry& x) {
      expiries.push_back(w.now());
      if (expiries.size() < 5) w.schedule(x, period);
    };
  };
  // Period 3 with 4 buckets: now+4 lands in the bucket being swept right now.
  auto cb = periodic(3);
  for (int i = 0; i < 30; ++i) w.advance(cb);
  CHECK(expiries == std::vector<std::uint64_t>{2, 6, 10, 14, 18});
  CHECK(w.size() == 0);
}

TEST_CASE("an expiry callback may cancel another entry due at the same tick", "[proto]") {
  timeout_wheel<entry> w(8);
  entry a, b, c;
  w.schedule(a, 2);
  w.schedule(b, 2);
  w.schedule(c, 2);
  int calls = 0;
  for (int i = 0; i < 5; ++i)
    w.advance([&](entry& e) {
      ++calls;
      ++e.expired;
      if (&e == &a) w.cancel(b);
    });
  CHECK(calls == 2);
  CHECK(a.expired == 1);
  CHECK(b.expired == 0);
  CHECK(c.expired == 1);
  CHECK(w.size() == 0);
}

TEST_CASE("scheduling, cancelling and expiring allocate nothing", "[proto]") {
  timeout_wheel<entry> w(64);
  std::vector<entry> es(256);
  std::size_t allocations = 0;
  int expired = 0;
  {
    occams_rpc::test::counting_allocations counting;
    for (int round = 0; round < 200; ++round) {
      for (std::size_t i = 0; i < es.size(); ++i) {
        if (es[i].linked()) {
          if ((i + round) % 3 == 0) w.cancel(es[i]);
        } else {
          w.schedule(es[i], (i * 13 + round) % 150);
        }
      }
      w.advance([&](entry&) { ++expired; });
    }
    allocations = counting.stop();
  }
  CHECK(allocations == 0);
  CHECK(expired > 0);
}

TEST_CASE("now counts advances and the minimum bucket count is 2", "[proto]") {
  timeout_wheel<entry> w(0);
  CHECK(w.now() == 0);
  entry e;
  w.schedule(e, 5);
  CHECK(advances_until_expiry(w, e, 100) == 6);
  CHECK(w.now() == 6);
  CHECK(e.expired_at == 6);
}

TEST_CASE("ticks_for rounds up to whole ticks and is at least 1", "[proto]") {
  CHECK(ticks_for(20s, 1s) == 20);
  CHECK(ticks_for(20'000ms, 1s) == 20);
  CHECK(ticks_for(1500ms, 1s) == 2);
  CHECK(ticks_for(1001ms, 1s) == 2);
  CHECK(ticks_for(999ms, 1s) == 1);
  CHECK(ticks_for(1ms, 1s) == 1);
  CHECK(ticks_for(0ms, 1s) == 1);
  CHECK(ticks_for(-5s, 1s) == 1);
  CHECK(ticks_for(1500ms, 1000ms) == 2);
  CHECK(ticks_for(2000ms, 1000ms) == 2);
  CHECK(ticks_for(2001ms, 1000ms) == 3);
  CHECK(ticks_for(250us, 100us) == 3);
  CHECK(ticks_for(1500us, 1ms) == 2);
  CHECK(ticks_for(3s, 500ms) == 6);
  CHECK(ticks_for(2500ms, 500ms) == 5);
  CHECK(ticks_for(std::chrono::minutes(1), 1s) == 60);
  STATIC_REQUIRE(ticks_for(2001ms, 1000ms) == 3);
}
