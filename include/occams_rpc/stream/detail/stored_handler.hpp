// A type-erased completion handler with inline storage, so that storing a call's handler in
// its pending entry allocates nothing (std::function and any_completion_handler may).
//
// Like Asio's own operations (handler_work), it keeps the handler's associated executor only
// when that differs from the I/O object's executor (the "fallback"), with outstanding work;
// a handler that belongs on the fallback executor is run inline by a completion already
// running there, with no executor copied, compared or dispatched through.
//
// An Adapter turns the stored handler and the completion's arguments into the call that is
// made (`call`, inline) or a function object to queue (`bind`): `direct_call` passes them on;
// client_connection's adapters complete calls with the response moved to the handler, or
// with the error alone.
#pragma once

#include <occams_rpc/stream/detail/running_here.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <cstddef>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

namespace occams_rpc::detail {

namespace asio = boost::asio;

/// The default adapter: the handler is called with the completion's arguments.
struct direct_call {
  template <class H, class... Args>
  static void call(H&& h, Args&&... args) {
    std::move(h)(std::move(args)...);
  }
  template <class H, class... Args>
  static auto bind(H&& h, Args&&... args) {
    return [h = std::move(h), tup = std::make_tuple(std::move(args)...)]() mutable {
      std::apply(std::move(h), std::move(tup));
    };
  }
};

template <class... Args>
class stored_handler {
  static constexpr std::size_t inline_size = 96;

 public:
  stored_handler() = default;
  stored_handler(const stored_handler&) = delete;
  stored_handler& operator=(const stored_handler&) = delete;
  stored_handler(stored_handler&& o) noexcept { take(o); }
  stored_handler& operator=(stored_handler&& o) noexcept {
    if (this != &o) { reset(); take(o); }
    return *this;
  }
  ~stored_handler() { reset(); }

  /// Stores `h`. `fallback` is the I/O object's executor, used when `h` has no associated
  /// executor of its own; it must outlive this handler's completion (it is the owner's member).
  template <class Adapter = direct_call, class Handler>
  void emplace(Handler&& h, const asio::any_io_executor& fallback) {
    using H = std::decay_t<Handler>;
    reset();
    fallback_ = &fallback;
    auto assoc = asio::get_associated_executor(h, fallback);
    own_executor_ = !(assoc == fallback);
    // Outstanding work keeps the handler's context running until it completes. On the
    // I/O object's own executor its pending operations already do that.
    if (own_executor_) executor_ = asio::prefer(assoc, asio::execution::outstanding_work.tracked);
    if constexpr (sizeof(H) <= inline_size && alignof(H) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<H>) {
      obj_ = ::new (static_cast<void*>(storage_)) H(std::forward<Handler>(h));
      heap_ = false;
    } else {
      obj_ = new H(std::forward<Handler>(h));
      heap_ = true;
    }
    vtable_ = &vtable_for<H, Adapter>;
  }

  explicit operator bool() const noexcept { return obj_ != nullptr; }

  /// Moves the handler out and runs it with `args` on its executor (inline if already there).
  void dispatch(Args... args) { complete(mode::dispatch, std::move(args)...); }
  /// Same, for a caller known to be running on the fallback executor (a connection's own
  /// completions): a handler that belongs there runs inline with no further check.
  void dispatch_here(Args... args) {
    complete(own_executor_ ? mode::dispatch : mode::run_inline, std::move(args)...);
  }
  /// Same, but never inline: queued on the handler's executor.
  void post(Args... args) { complete(mode::post, std::move(args)...); }

  void reset() noexcept {
    if (!obj_) return;
    vtable_->destroy(obj_, heap_);
    obj_ = nullptr;
    if (own_executor_) executor_ = {};
  }

 private:
  enum class mode { run_inline, dispatch, post };

  struct vtable {
    void (*run)(void* obj, bool heap, const asio::any_io_executor* ex, mode how, Args&&... args);
    void (*destroy)(void* obj, bool heap) noexcept;
    void* (*relocate)(void* obj, void* to) noexcept;  // inline objects only
  };

  void take(stored_handler& o) noexcept {
    if (!o.obj_) return;
    vtable_ = o.vtable_;
    heap_ = o.heap_;
    fallback_ = o.fallback_;
    own_executor_ = o.own_executor_;
    if (own_executor_) executor_ = std::move(o.executor_);
    obj_ = heap_ ? o.obj_ : vtable_->relocate(o.obj_, storage_);
    o.obj_ = nullptr;
  }

  template <class H, class Adapter>
  static void run_impl(void* obj, bool heap, const asio::any_io_executor* ex, mode how, Args&&... args) {
    H* p = static_cast<H*>(obj);
    // Inline, the arguments are passed straight on (nothing is bound: they outlive the call);
    // queued, they are bound into a function object first. Either way the handler leaves its
    // storage before it runs.
    if (how == mode::run_inline || (how == mode::dispatch && running_in_this_thread(*ex))) {
      H handler(std::move(*p));
      if (heap) delete p; else p->~H();
      Adapter::call(std::move(handler), std::move(args)...);
      return;
    }
    auto bound = Adapter::bind(std::move(*p), std::move(args)...);
    if (heap) delete p; else p->~H();
    if (how == mode::post) asio::post(*ex, std::move(bound));
    else asio::dispatch(*ex, std::move(bound));
  }
  template <class H>
  static void destroy_impl(void* obj, bool heap) noexcept {
    H* p = static_cast<H*>(obj);
    if (heap) delete p; else p->~H();
  }
  template <class H>
  static void* relocate_impl(void* obj, void* to) noexcept {
    H* p = static_cast<H*>(obj);
    H* q = ::new (to) H(std::move(*p));
    p->~H();
    return q;
  }
  template <class H, class Adapter>
  static constexpr vtable vtable_for{&run_impl<H, Adapter>, &destroy_impl<H>, &relocate_impl<H>};

  void complete(mode how, Args&&... args) {
    // The handler may start a new operation that reuses this object: everything is taken out
    // of it before the handler runs.
    void* obj = std::exchange(obj_, nullptr);
    if (!own_executor_) {
      vtable_->run(obj, heap_, fallback_, how, std::move(args)...);
      return;
    }
    auto ex = std::move(executor_);
    executor_ = {};
    vtable_->run(obj, heap_, &ex, how, std::move(args)...);
  }

  alignas(std::max_align_t) unsigned char storage_[inline_size];
  void* obj_ = nullptr;
  bool heap_ = false;
  bool own_executor_ = false;
  const vtable* vtable_ = nullptr;
  const asio::any_io_executor* fallback_ = nullptr;
  asio::any_io_executor executor_;  // only when own_executor_
};

/// The fallback executor for handlers completed without an I/O object (a stream with no
/// connection): lives for the program.
inline const asio::any_io_executor& system_fallback() {
  static const asio::any_io_executor ex = asio::system_executor();
  return ex;
}

}  // namespace occams_rpc::detail
