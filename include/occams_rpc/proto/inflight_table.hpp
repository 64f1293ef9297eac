// The in-flight table: seq -> pending entry, O(1), no allocation after construction.
//
// Slots live in a fixed array of 2^k >= 2 * window entries and a seq maps to slot
// `seq & mask`. New seqs increase monotonically; when the slot of the next seq is still taken
// (an old call outlives many newer ones) that seq is skipped. With at most `window` entries in
// a table of at least twice that, a free slot is always found within a few steps. A lookup
// checks the stored seq, so a late response for a seq already removed (timed out) misses.
#pragma once

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace occams_rpc::proto {

template <class T>
class inflight_table {
 public:
  explicit inflight_table(std::size_t max_entries)
      : max_entries_(max_entries),
        mask_(std::bit_ceil(std::max<std::size_t>(2 * max_entries, 4)) - 1),
        slots_(new slot[mask_ + 1]) {}

  /// Registers a new entry and gives it the next free seq. Precondition: !full().
  std::pair<std::uint64_t, T*> insert() {
    assert(!full());
    while (slots_[next_seq_ & mask_].used) ++next_seq_;
    std::uint64_t seq = next_seq_++;
    slot& s = slots_[seq & mask_];
    s.seq = seq;
    s.used = true;
    ++size_;
    return {seq, &s.value};
  }

  /// The entry for `seq`, or null if there is none (never sent, completed or expired).
  T* find(std::uint64_t seq) noexcept {
    slot& s = slots_[seq & mask_];
    return s.used && s.seq == seq ? &s.value : nullptr;
  }

  /// Removes the entry. Its value is kept for reuse: the caller clears what it must.
  bool erase(std::uint64_t seq) noexcept {
    slot& s = slots_[seq & mask_];
    if (!s.used || s.seq != seq) return false;
    s.used = false;
    --size_;
    return true;
  }

  /// Calls f(seq, T&) for every entry (entries must not be inserted meanwhile; erasing the
  /// visited one is fine).
  template <class F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i <= mask_ && size_ > 0; ++i)
      if (slots_[i].used) f(slots_[i].seq, slots_[i].value);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool full() const noexcept { return size_ >= max_entries_; }
  std::size_t max_entries() const noexcept { return max_entries_; }
  /// How many slots there are, and the slot of `seq` (in 0..slot_count()): a user may keep
  /// more per entry in a parallel array.
  std::size_t slot_count() const noexcept { return mask_ + 1; }
  std::size_t slot_index(std::uint64_t seq) const noexcept { return static_cast<std::size_t>(seq & mask_); }
  /// The seq the next insert would try first.
  std::uint64_t next_seq() const noexcept { return next_seq_; }

 private:
  struct slot {
    std::uint64_t seq = 0;
    bool used = false;
    T value{};
  };
  std::size_t max_entries_;
  std::size_t mask_;
  std::unique_ptr<slot[]> slots_;
  std::size_t size_ = 0;
  std::uint64_t next_seq_ = 1;  // seq 0 is never used: it reads as "no seq" in logs
};

}  // namespace occams_rpc::proto
