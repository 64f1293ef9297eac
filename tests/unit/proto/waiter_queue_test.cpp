#include <occams_rpc/proto/waiter_queue.hpp>

#include <catch2/catch.hpp>

#include <utility>
#include <vector>

using namespace occams_rpc::proto;

namespace {

struct test_waiter : waiter_node {
  int id;
  explicit test_waiter(int i) : id(i) {}
};

std::vector<int> drain(waiter_queue<test_waiter>& q) {
  std::vector<int> out;
  while (test_waiter* w = q.pop_front()) out.push_back(w->id);
  return out;
}

}  // namespace

TEST_CASE("a waiter queue gives its waiters back in FIFO order", "[proto]") {
  waiter_queue<test_waiter> q;
  test_waiter a(1), b(2), c(3);
  CHECK(q.empty());
  CHECK(q.pop_front() == nullptr);
  q.push_back(a);
  q.push_back(b);
  q.push_back(c);
  CHECK(q.size() == 3);
  CHECK(q.front() == &a);
  CHECK(drain(q) == std::vector<int>{1, 2, 3});
  CHECK(q.empty());
  CHECK_FALSE(a.queued);
}

TEST_CASE("a waiter that gives up leaves the queue from any place, once", "[proto]") {
  waiter_queue<test_waiter> q;
  test_waiter a(1), b(2), c(3), d(4);
  for (auto* w : {&a, &b, &c, &d}) q.push_back(*w);
  CHECK(q.remove(b));   // middle
  CHECK(q.remove(d));   // back
  CHECK_FALSE(q.remove(d));  // not queued any more
  CHECK(q.size() == 2);
  q.push_back(d);  // may queue again
  CHECK(q.remove(a));   // front
  CHECK(drain(q) == std::vector<int>{3, 4});
}

TEST_CASE("a moved waiter queue takes its waiters along", "[proto]") {
  waiter_queue<test_waiter> q;
  test_waiter a(1), b(2);
  q.push_back(a);
  q.push_back(b);
  waiter_queue<test_waiter> moved(std::move(q));
  CHECK(q.empty());
  CHECK(q.size() == 0);
  CHECK(moved.size() == 2);
  CHECK(moved.remove(a));
  CHECK(drain(moved) == std::vector<int>{2});
}
