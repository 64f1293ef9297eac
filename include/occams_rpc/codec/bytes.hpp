// bytes: a byte string for typed methods that moves through a call without being copied.
//
// It is a view of bytes that may own the memory it views:
// - an argument you pass views your bytes (a span, string_view, vector...); the stub encodes
//   it at once, so it need only live for the call expression;
// - a parameter an implementation receives views the request's bytes, which live until the
//   implementation answers (the router holds the request until then): to keep them longer,
//   keep bytes::copy_of(param);
// - a result an implementation returns is encoded when it answers: it may view the request's
//   own bytes (an echo) or own a buffer;
// - the result a stub completes with owns the response buffer it views: decoding it copies
//   nothing.
// It travels as msgpack bin, like std::vector<char> (and is decoded from bin or str, as that is).
// Views are made only for a method's value or argument itself; a `bytes` inside a struct or a
// container is decoded as an owned copy.
#pragma once

#include <occams_rpc/core/buffer.hpp>
#include <occams_rpc/core/recycled_buffers.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace occams_rpc {

class bytes {
 public:
  bytes() = default;
  /// Views `b` (not copied).
  bytes(std::span<const char> b) noexcept : view_(b) {}  // NOLINT: implicit on purpose
  /// Views anything contiguous of chars: a std::string_view, std::string, std::vector<char>...
  template <class R>
    requires(std::convertible_to<const R&, std::span<const char>> && !std::same_as<R, bytes> && !std::is_array_v<R>)
  bytes(const R& r) noexcept : view_(std::span<const char>(r)) {}  // NOLINT: implicit on purpose
  /// Views text.
  bytes(std::string_view s) noexcept : view_(s.data(), s.size()) {}  // NOLINT: implicit on purpose
  /// Views a string literal, without its terminating NUL.
  template <std::size_t N>
  bytes(const char (&s)[N]) noexcept : view_(s, N > 0 ? N - 1 : 0) {}  // NOLINT: implicit on purpose
  /// Owns `b` and views all of it.
  explicit bytes(byte_buffer b) noexcept : owned_(std::move(b)), view_(owned_.span()) {}

  /// A copy owns a copy of what it views if the original owned its bytes; else it views the
  /// same bytes.
  bytes(const bytes& o) : view_(o.view_) {
    if (o.owns()) {
      owned_ = detail::recycled_buffers::take();
      owned_.append(o.view_);
      view_ = owned_.span();
    }
  }
  bytes& operator=(const bytes& o) {
    if (this != &o) *this = bytes(o);
    return *this;
  }
  // A byte_buffer's memory does not move with it, so the view stays valid.
  bytes(bytes&& o) noexcept : owned_(std::move(o.owned_)), view_(std::exchange(o.view_, {})) {}
  /// Like a std::string_view assigned over a string, a `bytes` that views what this one owns
  /// dangles after the assignment.
  bytes& operator=(bytes&& o) noexcept {
    if (this == &o) return *this;
    detail::recycled_buffers::give(std::move(owned_));
    owned_ = std::move(o.owned_);
    view_ = std::exchange(o.view_, {});
    return *this;
  }
  /// An owned buffer goes back to this thread's pool of buffers for typed calls.
  ~bytes() { detail::recycled_buffers::give(std::move(owned_)); }

  /// An owning copy of `b`.
  static bytes copy_of(std::span<const char> b) {
    byte_buffer owned = detail::recycled_buffers::take();
    owned.append(b);
    return bytes(std::move(owned));
  }

  /// Takes ownership of `storage`, which holds the bytes viewed (the stub gives its response
  /// buffer). Precondition: the view lies inside `storage`.
  void adopt(byte_buffer&& storage) noexcept {
    detail::recycled_buffers::give(std::move(owned_));
    owned_ = std::move(storage);
  }

  /// Whether this owns the memory it views (else someone else keeps it alive).
  bool owns() const noexcept { return owned_.capacity() != 0; }

  const char* data() const noexcept { return view_.data(); }
  std::size_t size() const noexcept { return view_.size(); }
  bool empty() const noexcept { return view_.empty(); }
  const char* begin() const noexcept { return view_.data(); }
  const char* end() const noexcept { return view_.data() + view_.size(); }
  std::span<const char> span() const noexcept { return view_; }
  std::string_view view() const noexcept { return {view_.data(), view_.size()}; }
  operator std::span<const char>() const noexcept { return view_; }  // NOLINT: implicit on purpose
  std::vector<char> to_vector() const { return {begin(), end()}; }

  friend bool operator==(const bytes& a, const bytes& b) noexcept { return std::ranges::equal(a.view_, b.view_); }

 private:
  byte_buffer owned_;
  std::span<const char> view_;
};

}  // namespace occams_rpc
