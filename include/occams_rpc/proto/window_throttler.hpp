// The sliding window: at most `limit` requests in flight. Callers that find it full wait in
// FIFO order; a released slot is handed straight to the first waiter, so a newcomer cannot
// overtake it and nobody wakes just to find the window full again.
#pragma once

#include <occams_rpc/proto/waiter_queue.hpp>

#include <cassert>
#include <cstddef>

namespace occams_rpc::proto {

class window_throttler {
 public:
  /// An intrusive waiter node; `wake` is called when the waiter has been given a slot.
  struct waiter : waiter_node {
    void (*wake)(waiter*) = nullptr;
  };

  explicit window_throttler(std::size_t limit) : limit_(limit) { assert(limit > 0); }

  /// Takes a slot if one is free and nobody waits before us.
  bool try_acquire() noexcept {
    if (in_flight_ >= limit_ || !waiters_.empty()) return false;
    ++in_flight_;
    return true;
  }

  /// Queues `w`; it is woken (owning a slot) by a later release.
  void enqueue(waiter& w) noexcept { waiters_.push_back(w); }

  /// Takes a waiter out of the queue (its caller gave up). False if it was not queued.
  bool remove(waiter& w) noexcept { return waiters_.remove(w); }

  /// Gives a slot back: to the first waiter if there is one, else to the pool.
  void release() noexcept {
    assert(in_flight_ > 0);
    if (waiter* w = waiters_.pop_front()) {
      w->wake(w);  // the slot passes to w: in_flight_ is unchanged
      return;
    }
    --in_flight_;
  }

  /// Wakes every waiter without a slot (the connection is closing); each checks why.
  template <class F>
  void drain_waiters(F&& on_each) {
    while (waiter* w = waiters_.pop_front()) {
      on_each(*w);
    }
  }

  std::size_t in_flight() const noexcept { return in_flight_; }
  std::size_t limit() const noexcept { return limit_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }
  bool full() const noexcept { return in_flight_ >= limit_; }
  /// At least 7/8 of the window is used: a good moment to flush rather than wait for more.
  bool nearly_full() const noexcept { return in_flight_ * 8 >= limit_ * 7; }

 private:
  std::size_t limit_;
  std::size_t in_flight_ = 0;
  waiter_queue<waiter> waiters_;
};

}  // namespace occams_rpc::proto
