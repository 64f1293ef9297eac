#include <occams_rpc/session/memory_budget.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

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
  CHECK_FALSE(b.take_or_wait(a));  // queued
  CHECK_FALSE(b.try_take(10));  // fits, but a waits first: no overtaking
  CHECK_FALSE(b.take_or_wait(c));  // queued
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
  CHECK_FALSE(b.take_or_wait(first));  // queued
  CHECK_FALSE(b.take_or_wait(second));  // queued
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
    CHECK_FALSE(b.take_or_wait(w));  // queued
    CHECK(b.waiting() == 1);
  }
  CHECK(b.waiting() == 0);
  b.give_back(10);
  CHECK(b.used() == 0);
}

TEST_CASE("take_or_wait takes what fits at once and queues only what does not", "[session][budget]") {
  memory_budget b(100);
  memory_budget::waiter w;
  w.want = 60;
  CHECK(b.take_or_wait(w));  // fits: taken, not queued, never told
  CHECK_FALSE(w.granted);
  CHECK(b.waiting() == 0);
  CHECK(b.used() == 60);
  memory_budget::waiter v;
  v.want = 50;
  CHECK_FALSE(b.take_or_wait(v));  // does not fit: queued in the same step
  CHECK(b.waiting() == 1);
  b.give_back(60);  // the grant reaches the queued waiter: none is lost between the two steps
  CHECK(v.granted);
  CHECK(b.used() == 50);
}

TEST_CASE("a budget of 0 is unlimited but still counts", "[session][budget]") {
  memory_budget b(0);
  CHECK(b.try_take(std::size_t{1} << 40));
  b.take_anyway(5);
  CHECK(b.used() == (std::size_t{1} << 40) + 5);
}

TEST_CASE("a waiter destroyed after its grant gives the grant back", "[session][budget]") {
  memory_budget b(10);
  CHECK(b.try_take(10));
  {
    memory_budget::waiter w;
    w.want = 4;
    CHECK_FALSE(b.take_or_wait(w));  // queued
    b.give_back(10);
    CHECK(w.granted);
    CHECK(b.used() == 4);
  }
  CHECK(b.used() == 0);
}

TEST_CASE("threads sharing one memory budget never hold more than its limit and every waiter is granted",
          "[session][budget][threads]") {
  // Each thread takes large reservations in a loop, waiting its turn in the queue when they do
  // not fit; the grant arrives on whichever thread gave bytes back.
  constexpr std::size_t limit = 1000;
  constexpr int threads = 4, rounds = 2000;
  memory_budget b(limit);
  std::atomic<bool> over{false};
  std::atomic<int> waited{0};
  struct grant_box {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
  };
  auto worker = [&](int t) {
    grant_box box;
    memory_budget::waiter w;
    w.on_granted = [](void* p) {
      auto* box = static_cast<grant_box*>(p);
      std::lock_guard lock(box->m);
      box->done = true;
      box->cv.notify_one();
    };
    w.ctx = &box;
    for (int i = 0; i < rounds; ++i) {
      std::size_t want = 300 + static_cast<std::size_t>((t * 37 + i * 11) % 300);
      {
        std::lock_guard lock(box.m);
        box.done = false;  // before queueing: the grant may come from another thread at once
      }
      w.want = want;
      if (!b.take_or_wait(w)) {
        std::unique_lock lock(box.m);
        box.cv.wait(lock, [&] { return box.done; });
        w.granted = false;  // claimed
        ++waited;
      }
      if (b.used() > limit) over = true;
      std::this_thread::yield();  // hold it a moment: the others contend
      b.give_back(want);
    }
  };
  // The whole budget is held until every thread has queued its first reservation, so the
  // queue is exercised however the threads are scheduled (a loaded machine may otherwise run
  // them one after another, each finding the budget free).
  REQUIRE(b.try_take(limit));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (b.waiting() < static_cast<std::size_t>(threads) && std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
  bool all_queued = b.waiting() == static_cast<std::size_t>(threads);
  b.give_back(limit);
  for (auto& th : pool) th.join();
  REQUIRE(all_queued);
  CHECK_FALSE(over);
  CHECK(waited >= threads);  // the queue was exercised, not only try_take
  CHECK(b.used() == 0);
  CHECK(b.waiting() == 0);
}
