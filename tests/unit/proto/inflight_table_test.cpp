#include <occams_rpc/proto/inflight_table.hpp>

#include "unit/support/alloc_counter.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace occams_rpc::proto;

namespace {
struct call {
  int id = 0;
  std::string tag;  // a member with a non-trivial reset
};
}  // namespace

TEST_CASE("inserted entries are found by their seq and erased", "[proto]") {
  inflight_table<call> t(8);
  CHECK(t.empty());
  CHECK(t.max_entries() == 8);
  auto [s1, c1] = t.insert();
  c1->id = 1;
  auto [s2, c2] = t.insert();
  c2->id = 2;
  CHECK(t.size() == 2);
  REQUIRE(t.find(s1));
  CHECK(t.find(s1)->id == 1);
  CHECK(t.find(s1) == c1);
  CHECK(t.find(s2)->id == 2);
  CHECK(t.erase(s1));
  CHECK(t.find(s1) == nullptr);
  CHECK_FALSE(t.erase(s1));  // twice: nothing left to erase
  CHECK(t.size() == 1);
  CHECK(t.find(s2)->id == 2);
  CHECK(t.erase(s2));
  CHECK(t.empty());
}

TEST_CASE("seqs start at 1 and increase monotonically", "[proto]") {
  inflight_table<int> t(4);
  CHECK(t.next_seq() == 1);
  std::uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    auto [seq, v] = t.insert();
    CHECK(seq > last);
    last = seq;
    *v = i;
    if (t.size() == 4) {
      // Erase the oldest half so the table keeps moving.
      CHECK(t.erase(seq - 3));
      CHECK(t.erase(seq - 2));
    }
  }
  CHECK(last >= 1000);
}

TEST_CASE("a seq whose slot is still busy is skipped", "[proto]") {
  inflight_table<int> t(2);  // 4 slots
  auto [old_seq, old_v] = t.insert();
  *old_v = 100;
  CHECK(old_seq == 1);
  // Cycle other entries through; seq 5 (and 9, 13...) maps to the old call's slot.
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 12; ++i) {
    auto [seq, v] = t.insert();
    seqs.push_back(seq);
    *v = static_cast<int>(seq);
    CHECK(seq % 4 != old_seq % 4);
    CHECK(t.erase(seq));
  }
  // Seqs keep increasing and jump over the busy slot: 2,3,4, 6,7,8, 10,...
  CHECK(seqs == std::vector<std::uint64_t>{2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16});
  CHECK(t.find(old_seq));
  CHECK(*t.find(old_seq) == 100);
}

TEST_CASE("a late response for a removed seq is not found, even when its slot is reused", "[proto]") {
  inflight_table<call> t(2);  // 4 slots
  auto [timed_out, c] = t.insert();
  c->id = 7;
  CHECK(t.erase(timed_out));  // it timed out
  CHECK(t.find(timed_out) == nullptr);
  // Reuse the same slot with a newer seq.
  std::uint64_t reuser = 0;
  for (;;) {
    auto [seq, v] = t.insert();
    if (seq % 4 == timed_out % 4) {
      reuser = seq;
      v->id = 8;
      break;
    }
    t.erase(seq);
  }
  CHECK(reuser != timed_out);
  CHECK(t.find(timed_out) == nullptr);  // the late response misses
  CHECK_FALSE(t.erase(timed_out));      // and cannot complete the newer call
  REQUIRE(t.find(reuser));
  CHECK(t.find(reuser)->id == 8);
  CHECK(t.find(0) == nullptr);             // seq 0 is never issued
  CHECK(t.find(123456789) == nullptr);     // never sent
}

TEST_CASE("an erased entry's storage is reused by the next seq mapped to its slot", "[proto]") {
  // erase keeps the value for reuse (the caller clears what it must); a new entry in the same
  // slot gets the same storage, so steady-state traffic touches no allocator.
  inflight_table<call> t(2);  // 4 slots
  auto [first, c] = t.insert();
  c->id = 5;
  CHECK(t.erase(first));
  call* reused = nullptr;
  for (;;) {
    auto [seq, v] = t.insert();
    if (seq % 4 == first % 4) {
      reused = v;
      break;
    }
    t.erase(seq);
  }
  CHECK(reused == c);
}

TEST_CASE("the table is full at max_entries and takes entries again after an erase", "[proto]") {
  inflight_table<int> t(3);
  std::vector<std::uint64_t> seqs;
  while (!t.full()) seqs.push_back(t.insert().first);
  CHECK(seqs.size() == 3);
  CHECK(t.size() == 3);
  t.erase(seqs[1]);
  CHECK_FALSE(t.full());
  auto [seq, v] = t.insert();
  CHECK(seq > seqs.back());
  CHECK(t.full());
}

TEST_CASE("steady-state inserts and erases never allocate", "[proto]") {
  inflight_table<call> t(128);
  std::vector<std::uint64_t> live;
  live.reserve(128);
  // Warm-up outside the counted scope (it also proves the table works at full window).
  for (int i = 0; i < 128; ++i) live.push_back(t.insert().first);

  std::size_t allocations = 0;
  bool all_found = true;
  {
    occams_rpc::test::counting_allocations counting;
    // Complete calls out of order and start new ones, many times round the table.
    for (int round = 0; round < 20'000; ++round) {
      std::size_t victim = static_cast<std::size_t>(round * 7919) % live.size();
      all_found &= t.find(live[victim]) != nullptr;
      t.erase(live[victim]);
      auto [seq, v] = t.insert();
      v->id = round;
      live[victim] = seq;
    }
    allocations = counting.stop();
  }
  CHECK(all_found);
  CHECK(allocations == 0);
  CHECK(t.size() == 128);
}

TEST_CASE("the allocation counter does see allocations", "[proto]") {
  // Guards the test above against a counter that never counts.
  std::size_t allocations = 0;
  {
    occams_rpc::test::counting_allocations counting;
    // The pointers escape through an empty asm statement: an optimiser may otherwise remove a
    // new/delete pair whose memory nothing reads (GCC does at -O2 and above).
    auto* p = new int(5);
    asm volatile("" : : "g"(p) : "memory");
    delete p;
    std::vector<int> v(100);
    asm volatile("" : : "g"(v.data()) : "memory");
    allocations = counting.stop();
  }
  CHECK(allocations >= 2);
}

TEST_CASE("for_each visits every entry once, and may erase the visited one", "[proto]") {
  inflight_table<int> t(16);
  std::map<std::uint64_t, int> expected;
  for (int i = 0; i < 16; ++i) {
    auto [seq, v] = t.insert();
    *v = i * 10;
    expected[seq] = i * 10;
  }
  // Remove a few so that the entries are scattered.
  for (auto seq : {2u, 5u, 11u}) {
    t.erase(seq);
    expected.erase(seq);
  }
  std::map<std::uint64_t, int> seen;
  t.for_each([&](std::uint64_t seq, int& v) { CHECK(seen.emplace(seq, v).second); });
  CHECK(seen == expected);

  // Fail every call (as a closing connection does), erasing as we go.
  std::set<std::uint64_t> failed;
  t.for_each([&](std::uint64_t seq, int&) {
    failed.insert(seq);
    t.erase(seq);
  });
  CHECK(failed.size() == expected.size());
  CHECK(t.empty());

  int calls = 0;
  t.for_each([&](std::uint64_t, int&) { ++calls; });
  CHECK(calls == 0);
}
