// A type-erased completion handler with inline storage, so that storing a call's handler in
// its pending entry allocates nothing (std::function and any_completion_handler may).
// It keeps the handler's associated executor (with outstanding work) and completes through
// it with asio::dispatch, as Asio's own operations do.
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

  /// Stores `h`; `fallback` is the executor used when `h` has no associated executor (the
  /// connection's).
  template <class Handler>
  void emplace(Handler&& h, const asio::any_io_executor& fallback) {
    using H = std::decay_t<Handler>;
    reset();
    // Outstanding work keeps the handler's context running until it completes. On the
    // connection's own executor the connection's pending read already does that.
    auto assoc = asio::get_associated_executor(h, fallback);
    if (assoc == fallback) executor_ = std::move(assoc);
    else executor_ = asio::prefer(assoc, asio::execution::outstanding_work.tracked);
    if constexpr (sizeof(H) <= inline_size && alignof(H) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<H>) {
      obj_ = ::new (static_cast<void*>(storage_)) H(std::forward<Handler>(h));
      heap_ = false;
    } else {
      obj_ = new H(std::forward<Handler>(h));
      heap_ = true;
    }
    vtable_ = &vtable_for<H>;
  }

  explicit operator bool() const noexcept { return obj_ != nullptr; }

  /// Moves the handler out and runs it with `args` on its executor (inline if already there).
  void dispatch(Args... args) { complete(false, std::move(args)...); }
  /// Same, but never inline: queued on the handler's executor.
  void post(Args... args) { complete(true, std::move(args)...); }

  void reset() noexcept {
    if (!obj_) return;
    vtable_->destroy(obj_, heap_);
    obj_ = nullptr;
    executor_ = {};
  }

 private:
  struct vtable {
    void (*run)(void* obj, bool heap, asio::any_io_executor ex, bool post, Args&&... args);
    void (*destroy)(void* obj, bool heap) noexcept;
    void* (*relocate)(void* obj, void* to) noexcept;  // inline objects only
  };

  void take(stored_handler& o) noexcept {
    if (!o.obj_) return;
    vtable_ = o.vtable_;
    heap_ = o.heap_;
    executor_ = std::move(o.executor_);
    obj_ = heap_ ? o.obj_ : vtable_->relocate(o.obj_, storage_);
    o.obj_ = nullptr;
    o.executor_ = {};
  }

  template <class H>
  static void run_impl(void* obj, bool heap, asio::any_io_executor ex, bool post, Args&&... args) {
    H* p = static_cast<H*>(obj);
    H handler(std::move(*p));
    if (heap) delete p; else p->~H();
    if (!post && running_in_this_thread(ex)) {  // what asio::dispatch would do, without type erasure
      std::move(handler)(std::move(args)...);
      return;
    }
    auto bound = [h = std::move(handler), tup = std::make_tuple(std::move(args)...)]() mutable {
      std::apply(std::move(h), std::move(tup));
    };
    if (post) asio::post(ex, std::move(bound));
    else asio::dispatch(ex, std::move(bound));
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
  template <class H>
  static constexpr vtable vtable_for{&run_impl<H>, &destroy_impl<H>, &relocate_impl<H>};

  void complete(bool post, Args&&... args) {
    void* obj = std::exchange(obj_, nullptr);
    auto ex = std::move(executor_);
    executor_ = {};
    vtable_->run(obj, heap_, std::move(ex), post, std::move(args)...);
  }

  alignas(std::max_align_t) unsigned char storage_[inline_size];
  void* obj_ = nullptr;
  bool heap_ = false;
  const vtable* vtable_ = nullptr;
  asio::any_io_executor executor_;
};

}  // namespace occams_rpc::detail
