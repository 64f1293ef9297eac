// A per-thread pool of byte buffers for the typed layer: a call takes its request and response
// buffers here, and what it gives back (at completion, or when a `bytes` result that adopted a
// response buffer is destroyed) serves the next call, so that steady-state calls allocate
// nothing for their bytes. Bounded in count and in bytes kept: a burst of large calls does not
// pin its memory.
#pragma once

#include <occams_rpc/core/buffer.hpp>

#include <cstddef>
#include <new>
#include <utility>

namespace occams_rpc::detail {

/// The pool of recycled_buffers, one per thread. Trivially constructed and destroyed, so that
/// the hot paths read it with no guard; the array comes with the first buffer kept, and a
/// teardown object frees it at the thread's exit.
struct recycled_pool {
  static constexpr std::size_t max_pooled = 512;

  byte_buffer* items = nullptr;
  std::size_t count = 0;
  std::size_t limit = max_pooled;  // 0 after the teardown
  std::size_t bytes = 0;

  [[gnu::cold]] bool init() noexcept;
};
inline thread_local constinit recycled_pool this_thread_pool;

inline bool recycled_pool::init() noexcept {
  struct teardown {
    ~teardown() {
      recycled_pool& p = this_thread_pool;
      for (std::size_t i = 0; i < p.count; ++i) p.items[i].~byte_buffer();
      ::operator delete(p.items);
      p = recycled_pool{nullptr, 0, 0, 0};
    }
  };
  items = static_cast<byte_buffer*>(::operator new(max_pooled * sizeof(byte_buffer), std::nothrow));
  if (!items) return false;
  thread_local teardown t;  // constructed now: registered for this thread's exit
  return true;
}

class recycled_buffers {
 public:
  static constexpr std::size_t max_pooled = recycled_pool::max_pooled;
  static constexpr std::size_t max_capacity = 1024 * 1024;    // larger buffers are freed
  static constexpr std::size_t max_bytes = 16 * 1024 * 1024;  // per thread

  /// A buffer (empty; with capacity when one was pooled).
  static byte_buffer take() noexcept {
    recycled_pool& p = this_thread_pool;
    if (p.count == 0) return {};
    byte_buffer* slot = p.items + --p.count;
    byte_buffer b = std::move(*slot);
    slot->~byte_buffer();
    p.bytes -= b.capacity();
    return b;
  }

  /// Keeps `b` for a later take() if the bounds allow; else frees it. Inline for the common
  /// case of a buffer that holds no memory (moved-from values pass here often).
  static void give(byte_buffer&& b) noexcept {
    if (b.capacity() != 0) keep(std::move(b));
  }

  /// Bytes kept now by this thread (for tests).
  static std::size_t pooled_bytes() noexcept { return this_thread_pool.bytes; }

 private:
  [[gnu::noinline]] static void keep(byte_buffer&& b) noexcept {
    recycled_pool& p = this_thread_pool;
    std::size_t c = b.capacity();
    // After the thread's teardown (a static `bytes` destroyed late) the limit is 0: just free.
    if (p.count >= p.limit || c > max_capacity || p.bytes + c > max_bytes) return;
    if (!p.items && !p.init()) return;
    b.clear();
    p.bytes += c;
    ::new (static_cast<void*>(p.items + p.count++)) byte_buffer(std::move(b));
  }
};

}  // namespace occams_rpc::detail
