// An intrusive FIFO of waiters: the one cancellable waiter queue of the library (the window's
// callers waiting for a slot, the pools' calls waiting for a connection). A waiter is a node
// its owner allocates and keeps; the queue only links it, so queueing allocates nothing and a
// waiter that gives up (cancelled, timed out) unlinks itself in O(1).
#pragma once

#include <cassert>
#include <cstddef>
#include <type_traits>

namespace occams_rpc::proto {

/// The links a waiter carries. `queued` tells whether it is in a queue now.
struct waiter_node {
  waiter_node* next = nullptr;
  waiter_node* prev = nullptr;
  bool queued = false;
};

/// A FIFO of `T`s, each derived from waiter_node. Owns nothing: whoever queued a waiter
/// takes it out (pop_front or remove) before destroying it.
template <class T>
class waiter_queue {
  static_assert(std::is_base_of_v<waiter_node, T>, "waiter_queue<T>: T must derive from proto::waiter_node");

 public:
  waiter_queue() = default;
  waiter_queue(const waiter_queue&) = delete;
  waiter_queue& operator=(const waiter_queue&) = delete;
  /// Moving takes the waiters along (they link to each other, never to the queue).
  waiter_queue(waiter_queue&& o) noexcept : head_(o.head_), tail_(o.tail_), size_(o.size_) {
    o.head_ = o.tail_ = nullptr;
    o.size_ = 0;
  }
  waiter_queue& operator=(waiter_queue&& o) noexcept {
    assert(this == &o || empty());
    if (this != &o) {
      head_ = o.head_;
      tail_ = o.tail_;
      size_ = o.size_;
      o.head_ = o.tail_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }

  /// Queues `w` at the back.
  void push_back(T& w) noexcept {
    assert(!w.queued);
    w.queued = true;
    w.next = nullptr;
    w.prev = tail_;
    (tail_ ? tail_->next : head_) = &w;
    tail_ = &w;
    ++size_;
  }

  /// Takes `w` out wherever it is. False if it was not queued.
  bool remove(T& w) noexcept {
    if (!w.queued) return false;
    (w.prev ? w.prev->next : head_) = w.next;
    (w.next ? w.next->prev : tail_) = w.prev;
    w.queued = false;
    w.next = w.prev = nullptr;
    --size_;
    return true;
  }

  /// The first waiter, or null.
  T* front() const noexcept { return static_cast<T*>(head_); }

  /// Takes the first waiter out and returns it, or null if the queue is empty.
  T* pop_front() noexcept {
    T* w = front();
    if (w) remove(*w);
    return w;
  }

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

 private:
  waiter_node* head_ = nullptr;
  waiter_node* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace occams_rpc::proto
