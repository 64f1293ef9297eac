// The server-wide budget for the bytes of large request frames (server_config::
// max_buffered_bytes). A connection reserves a frame's whole size when the frame's header
// arrives (counted, not allocated: memory itself grows only with the bytes received) and
// gives it back when the request is answered. When the budget cannot cover a frame, the
// connection waits in FIFO order and reads nothing meanwhile, so that the sum stays bounded
// and no connection starves. Sans-io: a grant is announced through the waiter's callback.
//
// Thread safety: every member may be called from any thread (a server's connections live on
// several). One mutex guards the count and the queue; only frames larger than
// server_config::buffer_size reach the budget, so small requests never take it. used() reads
// an atomic without the lock. A grant's callback runs on the thread that gave bytes back,
// under the lock: it must not call into the budget and should only hand the news to its
// connection's executor (server_connection posts it).
#pragma once

#include <boost/intrusive/list.hpp>

#include <atomic>
#include <cstddef>
#include <mutex>

namespace occams_rpc::session {

class memory_budget {
 public:
  /// A connection waiting for `want` bytes; leaves the queue (or gives its grant back) when
  /// destroyed. `want`, `on_granted` and `ctx` are set before take_or_wait() and left alone while
  /// queued; `granted` is written under the budget's lock and read by the waiter's owner
  /// after the callback told it (or under cancel()).
  struct waiter : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
    std::size_t want = 0;
    bool granted = false;
    /// Called from give_back() once granted (from another connection's event, on any
    /// thread, under the budget's lock): it must not call back into the budget.
    void (*on_granted)(void* ctx) = nullptr;
    void* ctx = nullptr;
    memory_budget* owner = nullptr;  // set by take_or_wait()

    waiter() = default;
    waiter(const waiter&) = delete;
    waiter& operator=(const waiter&) = delete;
    ~waiter() {
      if (owner) owner->cancel(*this);
    }
  };

  /// `limit` 0: unlimited (only counted).
  explicit memory_budget(std::size_t limit) noexcept : limit_(limit) {}
  memory_budget(const memory_budget&) = delete;
  memory_budget& operator=(const memory_budget&) = delete;

  /// Takes `n` bytes if they fit and nobody waits before; else false.
  bool try_take(std::size_t n) noexcept {
    std::lock_guard lock(mutex_);
    return take_locked(n);
  }
  /// Takes `n` bytes that have already arrived (a frame that came whole in one read), even
  /// past the limit: later reservations wait until it is given back.
  void take_anyway(std::size_t n) noexcept {
    std::lock_guard lock(mutex_);
    used_.store(used_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// Takes w.want bytes if they fit and nobody waits before (true: w is not queued and its
  /// callback will not run); else queues `w` (false: its callback runs once they are granted).
  /// One step under one lock: a give_back between a failed try_take and a later queueing
  /// would find nobody to grant, and the waiter would wait for bytes already free.
  bool take_or_wait(waiter& w) noexcept {
    std::lock_guard lock(mutex_);
    w.granted = false;
    if (take_locked(w.want)) return true;
    w.owner = this;
    waiters_.push_back(w);
    return false;
  }
  /// Returns bytes, granting the waiters at the front that now fit.
  void give_back(std::size_t n) noexcept {
    std::lock_guard lock(mutex_);
    give_back_locked(n);
  }
  /// Leaves the queue, or gives back what was granted and not yet used.
  void cancel(waiter& w) noexcept {
    std::lock_guard lock(mutex_);
    if (w.is_linked()) w.unlink();
    if (w.granted) {
      w.granted = false;
      give_back_locked(w.want);
    }
  }

  /// Bytes reserved now (a snapshot: other threads may change it meanwhile).
  std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::size_t limit() const noexcept { return limit_; }
  std::size_t waiting() const noexcept {
    std::lock_guard lock(mutex_);
    return waiters_.size();
  }

 private:
  bool take_locked(std::size_t n) noexcept {
    std::size_t used = used_.load(std::memory_order_relaxed);
    if (limit_ != 0 && (!waiters_.empty() || used + n > limit_)) return false;
    used_.store(used + n, std::memory_order_relaxed);
    return true;
  }
  void give_back_locked(std::size_t n) noexcept {
    std::size_t used = used_.load(std::memory_order_relaxed) - n;
    while (!waiters_.empty() && (limit_ == 0 || used + waiters_.front().want <= limit_)) {
      waiter& w = waiters_.front();
      waiters_.pop_front();
      used += w.want;
      w.granted = true;
      if (w.on_granted) w.on_granted(w.ctx);
    }
    used_.store(used, std::memory_order_relaxed);
  }

  const std::size_t limit_;
  std::atomic<std::size_t> used_{0};  // written under mutex_; read anywhere
  mutable std::mutex mutex_;
  boost::intrusive::list<waiter, boost::intrusive::constant_time_size<false>> waiters_;
};

}  // namespace occams_rpc::session
