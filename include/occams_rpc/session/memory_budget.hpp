// The server-wide budget for the bytes of large request frames (server_config::
// max_buffered_bytes). A connection reserves a frame's whole size when the frame's header
// arrives (counted, not allocated: memory itself grows only with the bytes received) and
// gives it back when the request is answered. When the budget cannot cover a frame, the
// connection waits in FIFO order and reads nothing meanwhile, so that the sum stays bounded
// and no connection starves. Sans-io: a grant is announced through the waiter's callback.
// Every connection of a server runs on one serial executor, as the budget does.
#pragma once

#include <boost/intrusive/list.hpp>

#include <cstddef>

namespace occams_rpc::session {

class memory_budget {
 public:
  /// A connection waiting for `want` bytes; unlinks itself when destroyed.
  struct waiter : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
    std::size_t want = 0;
    bool granted = false;
    /// Called from give_back() once granted (from another connection's event): it must not
    /// call back into the budget.
    void (*on_granted)(void* ctx) = nullptr;
    void* ctx = nullptr;
  };

  /// `limit` 0: unlimited (only counted).
  explicit memory_budget(std::size_t limit) noexcept : limit_(limit) {}
  memory_budget(const memory_budget&) = delete;
  memory_budget& operator=(const memory_budget&) = delete;

  /// Takes `n` bytes if they fit and nobody waits before; else false (then wait()).
  bool try_take(std::size_t n) noexcept {
    if (limit_ != 0 && (!waiters_.empty() || used_ + n > limit_)) return false;
    used_ += n;
    return true;
  }
  /// Takes `n` bytes that have already arrived (a frame that came whole in one read), even
  /// past the limit: later reservations wait until it is given back.
  void take_anyway(std::size_t n) noexcept { used_ += n; }
  /// Queues `w` for w.want bytes; its callback runs once they are granted.
  void wait(waiter& w) noexcept {
    w.granted = false;
    waiters_.push_back(w);
  }
  /// Returns bytes, granting the waiters at the front that now fit.
  void give_back(std::size_t n) noexcept {
    used_ -= n;
    while (!waiters_.empty() && (limit_ == 0 || used_ + waiters_.front().want <= limit_)) {
      waiter& w = waiters_.front();
      waiters_.pop_front();
      used_ += w.want;
      w.granted = true;
      if (w.on_granted) w.on_granted(w.ctx);
    }
  }
  /// Leaves the queue, or gives back what was granted and not yet used.
  void cancel(waiter& w) noexcept {
    if (w.is_linked()) w.unlink();
    if (w.granted) {
      w.granted = false;
      give_back(w.want);
    }
  }

  std::size_t used() const noexcept { return used_; }
  std::size_t limit() const noexcept { return limit_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  std::size_t limit_;
  std::size_t used_ = 0;
  boost::intrusive::list<waiter, boost::intrusive::constant_time_size<false>> waiters_;
};

}  // namespace occams_rpc::session
