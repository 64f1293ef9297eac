// Counts global operator new calls made by the current thread inside a counting scope.
// alloc_counter.cpp replaces the global allocation functions for the whole executable, but
// they behave exactly like the defaults (malloc/free) and only count while a scope is open on
// the calling thread, so other tests are unaffected.
#pragma once

#include <cstddef>

namespace occams_rpc::test {

/// Counts allocations on this thread for its lifetime. Do not assert inside the scope (Catch
/// allocates): read `count()` after `stop()` or after the scope ends.
class counting_allocations {
 public:
  counting_allocations();
  ~counting_allocations();
  counting_allocations(const counting_allocations&) = delete;
  counting_allocations& operator=(const counting_allocations&) = delete;

  /// Stops counting early; returns the allocations seen.
  std::size_t stop() noexcept;
  std::size_t count() const noexcept;

 private:
  bool active_ = true;
  std::size_t start_;
  std::size_t end_ = 0;
};

/// While alive, every operator new of at least `from_bytes` bytes throws std::bad_alloc, on
/// every thread (as under a low RLIMIT_AS): for testing what a failed allocation does.
class failing_allocations {
 public:
  explicit failing_allocations(std::size_t from_bytes);
  ~failing_allocations();
  failing_allocations(const failing_allocations&) = delete;
  failing_allocations& operator=(const failing_allocations&) = delete;

 private:
  std::size_t previous_;
};

}  // namespace occams_rpc::test
