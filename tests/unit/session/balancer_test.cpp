// failover_pool's load-balancing policies over many picks: no socket, no clock.
#include <occams_rpc/session/balancer.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <vector>

using namespace occams_rpc;
using namespace occams_rpc::session;

namespace {

failover_config with(failover_order order) {
  failover_config c;
  c.order = order;
  return c;
}

struct set {
  std::vector<failover_candidate> c;
  std::vector<std::string> names;
  void add(std::uintptr_t id, std::uint32_t weight = 1) {
    c.push_back({id, true, weight});
    names.push_back("10.0.0." + std::to_string(id) + ":4242");
  }
  void rebuild(balancer& b) {
    std::vector<std::string_view> v(names.begin(), names.end());
    b.rebuild(c, v);
  }
};

auto any = [](std::size_t) { return true; };

/// Addresses 1..n of weight 1, on b's ring.
set addresses(std::uintptr_t n, balancer& b) {
  set s;
  for (std::uintptr_t id = 1; id <= n; ++id) s.add(id);
  s.rebuild(b);
  return s;
}

/// Addresses 1, 2... with these weights, on b's ring.
set weighted(std::initializer_list<std::uint32_t> weights, balancer& b) {
  set s;
  std::uintptr_t id = 0;
  for (auto w : weights) s.add(++id, w);
  s.rebuild(b);
  return s;
}

}  // namespace

TEST_CASE("smooth weighted round robin interleaves the picks in proportion to the weights", "[session][balancer]") {
  balancer b(with(failover_order::weighted_round_robin));
  set s = weighted({5, 1, 1}, b);
  std::vector<std::uintptr_t> got;
  for (int i = 0; i < 7; ++i) got.push_back(s.c[b.pick(s.c, i, {}, any)].id);
  CHECK(got == std::vector<std::uintptr_t>{1, 1, 2, 1, 3, 1, 1});  // nginx's sequence
  std::map<std::uintptr_t, int> count;
  for (int i = 0; i < 7000; ++i) ++count[s.c[b.pick(s.c, i, {}, any)].id];
  CHECK(count[1] == 5000);
  CHECK(count[2] == 1000);
  CHECK(count[3] == 1000);
}

TEST_CASE("weighted round robin shares among the eligible addresses only", "[session][balancer]") {
  balancer b(with(failover_order::weighted_round_robin));
  set s = weighted({3, 1, 2}, b);
  std::map<std::uintptr_t, int> count;
  for (int i = 0; i < 4000; ++i) ++count[s.c[b.pick(s.c, i, {}, [](std::size_t k) { return k != 2; })].id];
  CHECK(count[1] == 3000);
  CHECK(count[2] == 1000);
  CHECK(count[3] == 0);
}

TEST_CASE("least in flight with two choices never picks the most loaded of three", "[session][balancer]") {
  balancer b(with(failover_order::least_in_flight), 42);
  set s;
  s.add(1);
  s.add(2);
  s.add(3);
  s.c[0].in_flight = 7;
  s.c[1].in_flight = 2;
  s.c[2].in_flight = 2;
  std::map<std::uintptr_t, int> count;
  for (int i = 0; i < 3000; ++i) ++count[s.c[b.pick(s.c, i, {}, any)].id];
  CHECK(count[1] == 0);
  // Equal loads: ties go to the first of the two drawn, so both get a fair share.
  CHECK(count[2] > 1000);
  CHECK(count[3] > 1000);
}

TEST_CASE("least in flight keeps loads level as calls pile up", "[session][balancer]") {
  balancer b(with(failover_order::least_in_flight), 7);
  set s;
  for (std::uintptr_t id = 1; id <= 4; ++id) s.add(id);
  for (int i = 0; i < 4000; ++i) ++s.c[b.pick(s.c, i, {}, any)].in_flight;  // none completes
  auto [lo, hi] = std::minmax_element(s.c.begin(), s.c.end(), [](auto& x, auto& y) { return x.in_flight < y.in_flight; });
  // Two choices keep the gap small (a random pick would spread it by about +-60).
  CHECK(hi->in_flight - lo->in_flight <= 10);
}

TEST_CASE("least in flight weighs calls in flight by weight", "[session][balancer]") {
  balancer b(with(failover_order::least_in_flight), 9);
  set s;
  s.add(1, 3);
  s.add(2, 1);
  for (int i = 0; i < 4000; ++i) ++s.c[b.pick(s.c, i, {}, any)].in_flight;
  CHECK(s.c[0].in_flight >= 2900);  // about 3000 of 4000
  CHECK(s.c[0].in_flight <= 3100);
}

TEST_CASE("consistent hashing keeps a key on one address and spreads keys evenly", "[session][balancer]") {
  balancer b(with(failover_order::consistent_hash));
  set s = addresses(4, b);
  std::map<std::uintptr_t, int> count;
  for (int k = 0; k < 10000; ++k) {
    auto key = hash_key("user-" + std::to_string(k));
    std::size_t first = b.pick(s.c, k, key, any);
    CHECK(b.pick(s.c, k + 1, key, any) == first);  // same key, same address
    ++count[s.c[first].id];
  }
  for (auto& [id, n] : count) {
    INFO("address " << id);
    CHECK(n > 1500);  // 2500 each on average
    CHECK(n < 3500);
  }
}

TEST_CASE("consistent hashing moves about 1/N of the keys when an address is added, all to it", "[session][balancer]") {
  balancer b(with(failover_order::consistent_hash));
  set s = addresses(4, b);
  std::vector<std::uintptr_t> before;
  for (int k = 0; k < 10000; ++k) before.push_back(s.c[b.pick(s.c, 0, hash_key("k" + std::to_string(k)), any)].id);
  s.add(5);
  s.rebuild(b);
  int moved = 0;
  for (int k = 0; k < 10000; ++k) {
    auto now = s.c[b.pick(s.c, 0, hash_key("k" + std::to_string(k)), any)].id;
    if (now != before[k]) {
      ++moved;
      CHECK(now == 5);
    }
  }
  CHECK(moved > 1200);  // 1/5 = 2000
  CHECK(moved < 2800);
}

TEST_CASE("consistent hashing moves only the keys of a removed or ineligible address", "[session][balancer]") {
  balancer b(with(failover_order::consistent_hash));
  set s = addresses(4, b);
  int changed = 0;
  for (int k = 0; k < 5000; ++k) {
    auto key = hash_key(static_cast<std::uint64_t>(k));
    auto all = s.c[b.pick(s.c, 0, key, any)].id;
    auto without3 = s.c[b.pick(s.c, 0, key, [&](std::size_t i) { return s.c[i].id != 3; })].id;
    if (all != 3) CHECK(without3 == all);
    else ++changed;
  }
  CHECK(changed > 0);
}

TEST_CASE("consistent hashing honours the weights in the ring", "[session][balancer]") {
  balancer b(with(failover_order::consistent_hash));
  set s;
  s.add(1, 3);
  s.add(2, 1);
  s.rebuild(b);
  int on1 = 0;
  for (int k = 0; k < 10000; ++k) on1 += s.c[b.pick(s.c, 0, hash_key(static_cast<std::uint64_t>(k)), any)].id == 1;
  CHECK(on1 > 6800);  // 7500 expected
  CHECK(on1 < 8200);
}

TEST_CASE("consistent hashing with bounded load passes a hot key on once its address is full", "[session][balancer]") {
  auto cfg = with(failover_order::consistent_hash);
  cfg.hash_load_factor = 1.25;
  balancer b(cfg);
  set s;
  for (std::uintptr_t id = 1; id <= 3; ++id) s.add(id);
  s.rebuild(b);
  auto key = hash_key("hot");
  std::size_t home = b.pick(s.c, 0, key, any);
  // 300 calls with one key, none completing: the home takes them until it holds more than
  // 1.25 x the average, then the next addresses on the ring take their share.
  for (int i = 0; i < 300; ++i) {
    std::size_t at = b.pick(s.c, 0, key, any);
    std::uint64_t total = 0;
    for (auto& c : s.c) total += c.in_flight;
    CHECK(s.c[at].in_flight + 1 <= static_cast<std::uint32_t>(std::ceil(1.25 * (total + 1) / 3)));
    ++s.c[at].in_flight;
  }
  CHECK(s.c[home].in_flight <= 125);
  for (auto& c : s.c) CHECK(c.in_flight > 0);
  // Once the load is gone, the key is home again.
  for (auto& c : s.c) c.in_flight = 0;
  CHECK(b.pick(s.c, 0, key, any) == home);
}

TEST_CASE("consistent hashing without a key goes round robin", "[session][balancer]") {
  balancer b(with(failover_order::consistent_hash));
  set s;
  for (std::uintptr_t id = 1; id <= 3; ++id) s.add(id);
  s.rebuild(b);
  std::vector<std::uintptr_t> got;
  for (std::size_t t = 0; t < 6; ++t) got.push_back(s.c[b.pick(s.c, t, {}, any)].id);
  CHECK(got == std::vector<std::uintptr_t>{1, 2, 3, 1, 2, 3});
}

TEST_CASE("every policy answers none when no address is eligible", "[session][balancer]") {
  auto order = GENERATE(failover_order::round_robin, failover_order::primary_backup,
                        failover_order::weighted_round_robin, failover_order::least_in_flight,
                        failover_order::consistent_hash);
  balancer b(with(order));
  set s;
  s.add(1);
  s.add(2);
  s.rebuild(b);
  CHECK(b.pick(s.c, 0, hash_key("x"), [](std::size_t) { return false; }) == 2);
}

TEST_CASE("key hashes are fixed values, the same in every process", "[session][balancer]") {
  // Changing the hash would move every key of every deployed client: pin it.
  CHECK(hash_key(std::string_view("")) == mix64(0xcbf29ce484222325ULL));
  CHECK(hash_key("abc") == hash_key(std::string("abc")));
  CHECK(hash_key("abc") != hash_key("abd"));
}
