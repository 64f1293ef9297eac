// A growable contiguous byte buffer that does not zero what it reserves: the read buffer,
// the write batch, and the target of codec encoding (it models msgpack's stream concept).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

namespace occams_rpc {

class byte_buffer {
 public:
  byte_buffer() = default;
  explicit byte_buffer(std::size_t capacity) { reserve(capacity); }
  byte_buffer(const byte_buffer& o) { append(o.data(), o.size()); }
  byte_buffer& operator=(const byte_buffer& o) {
    if (this != &o) { clear(); append(o.data(), o.size()); }
    return *this;
  }
  byte_buffer(byte_buffer&& o) noexcept
      : data_(std::move(o.data_)), size_(std::exchange(o.size_, 0)), capacity_(std::exchange(o.capacity_, 0)) {}
  byte_buffer& operator=(byte_buffer&& o) noexcept {
    data_ = std::move(o.data_);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    return *this;
  }

  char* data() noexcept { return data_.get(); }
  const char* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<const char> span() const noexcept { return {data(), size_}; }
  std::string_view view() const noexcept { return {data(), size_}; }

  /// Forgets the contents, keeps the memory.
  void clear() noexcept { size_ = 0; }

  /// Ensures room for `n` bytes in total.
  void reserve(std::size_t n) {
    if (n <= capacity_) return;
    // Doubling keeps appends amortized O(1); one large append gets exactly what it needs (a
    // 256 KiB frame copied into an empty buffer takes 256 KiB, not 512).
    std::size_t cap = std::max<std::size_t>(std::max<std::size_t>(capacity_ * 2, 256), n);
    std::unique_ptr<char[]> fresh(new char[cap]);
    if (size_) std::memcpy(fresh.get(), data_.get(), size_);
    data_ = std::move(fresh);
    capacity_ = cap;
  }

  /// Returns room for `n` more bytes at the end; `commit` says how many were written.
  char* prepare(std::size_t n) {
    reserve(size_ + n);
    return data_.get() + size_;
  }
  void commit(std::size_t n) noexcept { size_ += n; }

  void append(const void* p, std::size_t n) {
    if (n == 0) return;
    std::memcpy(prepare(n), p, n);
    size_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  void append(std::span<const char> s) { append(s.data(), s.size()); }

  /// msgpack's packer writes through this.
  void write(const char* p, std::size_t n) { append(p, n); }

  /// Drops the first `n` bytes, moving the rest to the front.
  void consume(std::size_t n) noexcept {
    if (n >= size_) { size_ = 0; return; }
    std::memmove(data_.get(), data_.get() + n, size_ - n);
    size_ -= n;
  }

  /// Shrinks to `n` bytes of contents.
  void truncate(std::size_t n) noexcept { if (n < size_) size_ = n; }

  /// Frees the memory if it grew above `limit` (after a burst of large frames). The new
  /// capacity is exactly `limit`, not rounded up past it, so calling this again does not
  /// reallocate.
  void shrink_to(std::size_t limit) {
    if (capacity_ <= limit || size_ > limit) return;
    std::unique_ptr<char[]> smaller(limit ? new char[limit] : nullptr);
    if (size_) std::memcpy(smaller.get(), data_.get(), size_);
    data_ = std::move(smaller);
    capacity_ = limit;
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace occams_rpc
