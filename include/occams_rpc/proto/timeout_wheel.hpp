// The timeout wheel: timeouts are checked in batches once per tick (1 s by default), with no
// timer per request. An entry scheduled for T ticks expires at the (T+1)-th advance after it
// was scheduled: between T and T+1 tick periods later, never early. Intrusive: Node derives
// from wheel_hook, so scheduling and cancelling allocate nothing and are O(1).
#pragma once

#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace occams_rpc::proto {

struct wheel_hook {
  wheel_hook* prev = nullptr;
  wheel_hook* next = nullptr;
  std::uint64_t expire_tick = 0;
  bool linked() const noexcept { return prev != nullptr; }
};

/// How many whole ticks cover `d` (rounded up, at least 1).
template <class Rep, class Period, class TRep, class TPeriod>
constexpr std::uint64_t ticks_for(std::chrono::duration<Rep, Period> d,
                                  std::chrono::duration<TRep, TPeriod> tick) noexcept {
  // Round up in the finer of the two units: one unit of `tick` would round 1500ms/1s down.
  using common = std::common_type_t<std::chrono::duration<Rep, Period>, std::chrono::duration<TRep, TPeriod>>;
  auto n = (common(d) + common(tick) - common(1)) / common(tick);
  return n < 1 ? 1 : static_cast<std::uint64_t>(n);
}

template <class Node>
class timeout_wheel {
  static_assert(std::is_base_of_v<wheel_hook, Node>, "timeout_wheel<Node>: Node must derive from wheel_hook");

 public:
  /// `buckets` should exceed the usual timeout in ticks; longer ones wait extra rounds.
  explicit timeout_wheel(std::size_t buckets = 64) : buckets_(buckets < 2 ? 2 : buckets) {
    for (auto& b : buckets_) b.prev = b.next = &b;  // empty circular lists
  }
  timeout_wheel(const timeout_wheel&) = delete;
  timeout_wheel& operator=(const timeout_wheel&) = delete;

  void schedule(Node& n, std::uint64_t ticks) noexcept {
    wheel_hook& h = n;
    assert(!h.linked());
    h.expire_tick = now_ + ticks + 1;
    wheel_hook& head = buckets_[h.expire_tick % buckets_.size()];
    h.prev = head.prev;
    h.next = &head;
    head.prev->next = &h;
    head.prev = &h;
    ++size_;
  }

  /// Unschedules `n`; harmless if it is not scheduled.
  void cancel(Node& n) noexcept {
    wheel_hook& h = n;
    if (!h.linked()) return;
    h.prev->next = h.next;
    h.next->prev = h.prev;
    h.prev = h.next = nullptr;
    --size_;
  }

  /// One tick passes: calls on_expire(Node&) for each entry due now, unlinked first (so the
  /// callback may reschedule or destroy it).
  template <class F>
  void advance(F&& on_expire) {
    ++now_;
    wheel_hook& head = buckets_[now_ % buckets_.size()];
    // Move the bucket aside first: callbacks may schedule into this same bucket.
    wheel_hook due;
    if (head.next == &head) return;
    due.next = head.next;
    due.prev = head.prev;
    due.next->prev = &due;
    due.prev->next = &due;
    head.prev = head.next = &head;
    while (due.next != &due) {
      wheel_hook* h = due.next;
      h->prev->next = h->next;
      h->next->prev = h->prev;
      if (h->expire_tick > now_) {  // a later round: back into the wheel
        h->prev = head.prev;
        h->next = &head;
        head.prev->next = h;
        head.prev = h;
        continue;
      }
      h->prev = h->next = nullptr;
      --size_;
      on_expire(static_cast<Node&>(*h));
    }
  }

  std::uint64_t now() const noexcept { return now_; }
  std::size_t size() const noexcept { return size_; }

 private:
  std::vector<wheel_hook> buckets_;  // list heads
  std::uint64_t now_ = 0;
  std::size_t size_ = 0;
};

}  // namespace occams_rpc::proto
