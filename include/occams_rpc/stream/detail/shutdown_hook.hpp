// Breaks the reference cycles that stored handlers make when an execution context is
// destroyed with connections still open.
//
// A connection keeps its waiters' handlers (the writer's wake-up, the callers' completions)
// outside Asio's queues. Each handler owns a coroutine frame, and the frame owns a
// shared_ptr to the connection: a cycle that Asio's own shutdown cannot see. Asio destroys the
// operations it holds when its context shuts down; this service does the same for ours: every
// live connection registers a shutdown_hook, and the context's shutdown() asks each one to
// destroy (never run) the handlers it stores.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>

#include <mutex>

namespace occams_rpc::detail {

namespace asio = boost::asio;

class shutdown_registry;

/// Base of an object that stores handlers. Registers with its executor's context for the
/// object's whole life.
class shutdown_hook {
 public:
  shutdown_hook(const shutdown_hook&) = delete;
  shutdown_hook& operator=(const shutdown_hook&) = delete;

  /// The context is shutting down: destroy every stored handler without running it. Called
  /// at most once, from the thread destroying the context; the object may be destroyed as a
  /// consequence (keep it alive for the duration if that matters).
  virtual void on_context_shutdown() noexcept = 0;

 protected:
  explicit shutdown_hook(const asio::any_io_executor& ex);
  ~shutdown_hook();

 private:
  friend class shutdown_registry;
  shutdown_registry* registry_ = nullptr;
  shutdown_hook* prev_ = nullptr;
  shutdown_hook* next_ = nullptr;
  bool linked_ = false;
};

class shutdown_registry final : public asio::execution_context::service {
 public:
  using key_type = shutdown_registry;
  static inline asio::execution_context::id id;

  explicit shutdown_registry(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  void add(shutdown_hook& h) {
    std::lock_guard lock(mutex_);
    h.next_ = head_;
    h.prev_ = nullptr;
    if (head_) head_->prev_ = &h;
    head_ = &h;
    h.linked_ = true;
  }

  void remove(shutdown_hook& h) {
    std::lock_guard lock(mutex_);
    unlink(h);
  }

 private:
  void unlink(shutdown_hook& h) noexcept {
    if (!h.linked_) return;
    if (h.prev_) h.prev_->next_ = h.next_;
    else head_ = h.next_;
    if (h.next_) h.next_->prev_ = h.prev_;
    h.prev_ = h.next_ = nullptr;
    h.linked_ = false;
  }

  // One hook at a time, unlinked before it runs: running it may destroy other hooks (which
  // unlink themselves) or register new ones.
  void shutdown() override {
    for (;;) {
      shutdown_hook* h = nullptr;
      {
        std::lock_guard lock(mutex_);
        h = head_;
        if (!h) return;
        unlink(*h);
      }
      h->on_context_shutdown();
    }
  }

  std::mutex mutex_;
  shutdown_hook* head_ = nullptr;
};

inline shutdown_hook::shutdown_hook(const asio::any_io_executor& ex)
    : registry_(&asio::use_service<shutdown_registry>(asio::query(ex, asio::execution::context))) {
  registry_->add(*this);
}

inline shutdown_hook::~shutdown_hook() { registry_->remove(*this); }

}  // namespace occams_rpc::detail
