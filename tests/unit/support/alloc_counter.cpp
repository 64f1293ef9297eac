// Replacements of every global allocation function (so that no sanitizer runtime's own
// definition is pulled in beside them). They count, per thread, only while a
// counting_allocations scope is open; otherwise they are plain malloc/free.
#include "unit/support/alloc_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <limits>
#include <new>

namespace {
thread_local int counting_depth = 0;
thread_local std::size_t allocations = 0;
// Allocations of at least this many bytes fail (failing_allocations), on every thread.
std::atomic<std::size_t> failing_from{std::numeric_limits<std::size_t>::max()};

void* allocate(std::size_t n) {
  if (counting_depth > 0) ++allocations;
  if (n >= failing_from.load(std::memory_order_relaxed)) throw std::bad_alloc();
  if (n == 0) n = 1;
  if (void* p = std::malloc(n)) return p;
  throw std::bad_alloc();
}
void* allocate_aligned(std::size_t n, std::align_val_t al) {
  if (counting_depth > 0) ++allocations;
  auto a = static_cast<std::size_t>(al);
  if (a < sizeof(void*)) a = sizeof(void*);
  n = (n + a - 1) / a * a;  // aligned_alloc wants a multiple of the alignment
  if (n == 0) n = a;
  if (void* p = std::aligned_alloc(a, n)) return p;
  throw std::bad_alloc();
}
}  // namespace

namespace occams_rpc::test {
counting_allocations::counting_allocations() : start_(allocations) { ++counting_depth; }
counting_allocations::~counting_allocations() { stop(); }
std::size_t counting_allocations::stop() noexcept {
  if (active_) {
    active_ = false;
    end_ = allocations;
    --counting_depth;
  }
  return end_ - start_;
}
std::size_t counting_allocations::count() const noexcept { return (active_ ? allocations : end_) - start_; }

failing_allocations::failing_allocations(std::size_t from_bytes) : previous_(failing_from.exchange(from_bytes)) {}
failing_allocations::~failing_allocations() { failing_from.store(previous_); }
}  // namespace occams_rpc::test

// NOLINTBEGIN(misc-new-delete-overloads)
void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try { return allocate(n); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try { return allocate(n); } catch (...) { return nullptr; }
}
void* operator new(std::size_t n, std::align_val_t a) { return allocate_aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate_aligned(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return allocate_aligned(n, a); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return allocate_aligned(n, a); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
// NOLINTEND(misc-new-delete-overloads)
