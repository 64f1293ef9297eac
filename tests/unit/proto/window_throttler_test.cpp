#include <occams_rpc/proto/window_throttler.hpp>

#include <catch2/catch.hpp>

#include <vector>

using namespace occams_rpc::proto;

namespace {

// A waiter that records the order in which waiters are woken.
struct test_waiter : window_throttler::waiter {
  int id;
  std::vector<int>* woken;
  test_waiter(int i, std::vector<int>& log) : id(i), woken(&log) {
    wake = [](window_throttler::waiter* w) {
      auto* self = static_cast<test_waiter*>(w);
      self->woken->push_back(self->id);
    };
  }
};

}  // namespace

TEST_CASE("try_acquire succeeds up to the limit and then fails", "[proto]") {
  window_throttler t(3);
  CHECK(t.limit() == 3);
  CHECK(t.try_acquire());
  CHECK(t.try_acquire());
  CHECK(t.try_acquire());
  CHECK(t.in_flight() == 3);
  CHECK(t.full());
  CHECK_FALSE(t.try_acquire());
  CHECK(t.in_flight() == 3);
  t.release();
  CHECK(t.in_flight() == 2);
  CHECK_FALSE(t.full());
  CHECK(t.try_acquire());
}

TEST_CASE("release hands the slot to the first waiter in FIFO order without changing in_flight",
          "[proto]") {
  window_throttler t(2);
  REQUIRE(t.try_acquire());
  REQUIRE(t.try_acquire());
  std::vector<int> woken;
  test_waiter a(1, woken), b(2, woken), c(3, woken);
  t.enqueue(a);
  t.enqueue(b);
  t.enqueue(c);
  CHECK(t.waiting() == 3);

  t.release();
  CHECK(woken == std::vector<int>{1});
  CHECK(t.in_flight() == 2);  // the slot passed to waiter 1
  CHECK(t.waiting() == 2);
  CHECK_FALSE(a.queued);

  t.release();
  t.release();
  CHECK(woken == std::vector<int>{1, 2, 3});
  CHECK(t.in_flight() == 2);
  CHECK(t.waiting() == 0);

  t.release();  // no waiter left: back to the pool
  CHECK(t.in_flight() == 1);
  CHECK(woken.size() == 3);
}

TEST_CASE("a newcomer cannot overtake a queued waiter", "[proto]") {
  window_throttler t(1);
  REQUIRE(t.try_acquire());
  std::vector<int> woken;
  test_waiter a(1, woken);
  t.enqueue(a);
  t.release();               // goes to a
  CHECK(woken == std::vector<int>{1});
  CHECK_FALSE(t.try_acquire());  // a holds the only slot

  // Even with a free slot, try_acquire refuses while someone waits.
  window_throttler u(2);
  REQUIRE(u.try_acquire());
  test_waiter b(2, woken);
  u.enqueue(b);  // (a waiter queued although a slot is free, e.g. enqueued just before a release)
  CHECK_FALSE(u.try_acquire());
  CHECK(u.remove(b));
  CHECK(u.try_acquire());
}

TEST_CASE("a removed waiter is not woken and the others keep their order", "[proto]") {
  window_throttler t(1);
  REQUIRE(t.try_acquire());
  std::vector<int> woken;
  test_waiter a(1, woken), b(2, woken), c(3, woken), d(4, woken);
  t.enqueue(a);
  t.enqueue(b);
  t.enqueue(c);
  t.enqueue(d);
  CHECK(t.remove(b));   // middle
  CHECK(t.remove(d));   // tail
  CHECK_FALSE(t.remove(d));  // not queued any more
  CHECK(t.waiting() == 2);
  CHECK_FALSE(b.queued);

  t.release();
  t.release();
  CHECK(woken == std::vector<int>{1, 3});
  CHECK(t.waiting() == 0);

  // The head can be removed too, and a removed waiter can queue again.
  test_waiter e(5, woken), f(6, woken);
  t.enqueue(e);
  t.enqueue(f);
  CHECK(t.remove(e));
  t.enqueue(e);
  t.release();
  t.release();
  CHECK(woken == std::vector<int>{1, 3, 6, 5});
}

TEST_CASE("nearly_full means at least 7/8 of the window is in flight", "[proto]") {
  window_throttler t(128);
  for (int i = 0; i < 111; ++i) REQUIRE(t.try_acquire());
  CHECK_FALSE(t.nearly_full());
  REQUIRE(t.try_acquire());  // 112 = 7/8 of 128
  CHECK(t.nearly_full());
  CHECK_FALSE(t.full());

  window_throttler one(1);
  CHECK_FALSE(one.nearly_full());
  REQUIRE(one.try_acquire());
  CHECK(one.nearly_full());

  window_throttler eight(8);
  for (int i = 0; i < 6; ++i) REQUIRE(eight.try_acquire());
  CHECK_FALSE(eight.nearly_full());
  REQUIRE(eight.try_acquire());
  CHECK(eight.nearly_full());
}

TEST_CASE("drain_waiters hands every waiter out in order without a slot", "[proto]") {
  window_throttler t(1);
  REQUIRE(t.try_acquire());
  std::vector<int> woken;
  test_waiter a(1, woken), b(2, woken), c(3, woken);
  t.enqueue(a);
  t.enqueue(b);
  t.enqueue(c);
  std::vector<int> drained;
  t.drain_waiters([&](window_throttler::waiter& w) {
    CHECK_FALSE(w.queued);
    drained.push_back(static_cast<test_waiter&>(w).id);
  });
  CHECK(drained == std::vector<int>{1, 2, 3});
  CHECK(woken.empty());  // drained, not woken with a slot
  CHECK(t.waiting() == 0);
  CHECK(t.in_flight() == 1);
  t.release();
  CHECK(t.in_flight() == 0);
  CHECK(woken.empty());
}
