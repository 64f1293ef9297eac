// A per-thread pool of byte buffers for the typed layer: a call takes its request and response
// buffers here, and what it gives back (at completion, or when a `bytes` result that adopted a
// response buffer is destroyed) serves the next call, so that steady-state calls allocate
// nothing for their bytes. Bounded in count and in bytes kept: a burst of large calls does not
// pin its memory.
#pragma once

#include <occams_rpc/core/buffer.hpp>

#include <cstddef>
#include <utility>
#include <vector>

namespace occams_rpc::detail {

class recycled_buffers {
 public:
  static constexpr std::size_t max_pooled = 512;
  static constexpr std::size_t max_capacity = 1024 * 1024;    // larger buffers are freed
  static constexpr std::size_t max_bytes = 16 * 1024 * 1024;  // per thread

  /// A buffer (empty; with capacity when one was pooled).
  static byte_buffer take() noexcept {
    if (pool_gone()) return {};
    auto& p = pool();
    if (p.items.empty()) return {};
    byte_buffer b = std::move(p.items.back());
    p.items.pop_back();
    p.bytes -= b.capacity();
    return b;
  }

  /// Keeps `b` for a later take() if the bounds allow; else frees it. Inline for the common
  /// case of a buffer that holds no memory (moved-from values pass here often).
  static void give(byte_buffer&& b) noexcept {
    if (b.capacity() != 0) keep(std::move(b));
  }

  /// Bytes kept now by this thread (for tests).
  static std::size_t pooled_bytes() noexcept { return pool().bytes; }

 private:
  [[gnu::noinline]] static void keep(byte_buffer&& b) noexcept {
    if (pool_gone()) return;  // a static `bytes` destroyed after this thread's pool: just free
    std::size_t c = b.capacity();
    auto& p = pool();
    if (p.items.size() >= max_pooled || c > max_capacity || p.bytes + c > max_bytes) return;
    b.clear();
    p.bytes += c;
    p.items.push_back(std::move(b));  // no allocation: reserved up front
  }

  struct state {
    std::vector<byte_buffer> items;
    std::size_t bytes = 0;
    state() { items.reserve(max_pooled); }
    ~state() { pool_gone() = true; }
  };
  /// Trivially destructible, so it outlives the pool during the thread's teardown.
  static bool& pool_gone() noexcept {
    thread_local bool gone = false;
    return gone;
  }
  static state& pool() noexcept {
    thread_local state p;
    return p;
  }
};

}  // namespace occams_rpc::detail
