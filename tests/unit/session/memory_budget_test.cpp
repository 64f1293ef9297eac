#include <occams_rpc/session/memory_budget.hpp>

#include <catch2/catch.hpp>

using occams_rpc::session::memory_budget;

namespace {
void count_grant(void* n) { ++*static_cast<int*>(n); }
}  // namespace

TEST_CASE("the memory budget grants what fits and queues the rest in FIFO order", "[session][budget]") {
  int grants_a = 0, grants_c = 0;
  memory_budget b(100);
  CHECK(b.try_take(60));
  CHECK_FALSE(b.try_take(50));  // would exceed the limit
  memory_budget::waiter a, c;
  a.want = 50;
  a.on_granted = count_grant;
  a.ctx = &grants_a;
  c.want = 10;
  c.on_granted = count_grant;
  c.ctx = &grants_c;
  b.wait(a);
  CHECK_FALSE(b.try_take(10));  // fits, but a waits first: no overtaking
  b.wait(c);
  CHECK(b.waiting() == 2);
  b.give_back(20);  // 40 in use: a (50) fits, then c (10) fits too
  CHECK(a.granted);
  CHECK(c.granted);
  CHECK(grants_a == 1);  // each told once
  CHECK(grants_c == 1);
  CHECK(b.used() == 100);
  CHECK(b.waiting() == 0);
}

TEST_CASE("a waiter that leaves gives back what it was granted, and a queued one leaves the queue", "[session][budget]") {
  memory_budget b(100);
  CHECK(b.try_take(100));
  memory_budget::waiter first, second;
  first.want = 80;
  second.want = 30;
  b.wait(first);
  b.wait(second);
  b.cancel(first);  // leaves the queue: second is now at its front
  b.give_back(70);  // 30 in use: second fits
  CHECK(second.granted);
  CHECK_FALSE(first.granted);
  CHECK(b.used() == 60);
  b.cancel(second);  // granted but never used (its connection closed): given back
  CHECK(b.used() == 30);
}

TEST_CASE("a waiter destroyed while queued unlinks itself", "[session][budget]") {
  memory_budget b(10);
  CHECK(b.try_take(10));
  {
    memory_budget::waiter w;
    w.want = 5;
    b.wait(w);
    CHECK(b.waiting() == 1);
  }
  CHECK(b.waiting() == 0);
  b.give_back(10);
  CHECK(b.used() == 0);
}

TEST_CASE("a budget of 0 is unlimited but still counts", "[session][budget]") {
  memory_budget b(0);
  CHECK(b.try_take(std::size_t{1} << 40));
  b.take_anyway(5);
  CHECK(b.used() == (std::size_t{1} << 40) + 5);
}
