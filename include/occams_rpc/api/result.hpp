// What a typed call completes with: the method's value, the method's own error, or a
// framework error (timeout, io_err, method_not_found...). Like std::expected with two kinds of
// error, because a method's error type is part of its contract and the framework's is not.
#pragma once

#include <occams_rpc/core/error.hpp>

#include <cstddef>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace occams_rpc::api {

/// The error type of a method that declares none: it never occurs.
struct no_error {
  friend bool operator==(no_error, no_error) noexcept { return true; }
};

/// Wraps a method's own error, so that a result<int, int> can tell the two apart.
/// Return `api::fail(e)` from an implementation to answer with error `e`.
template <class E>
struct user_error {
  E value;
};

template <class E>
user_error<std::decay_t<E>> fail(E&& e) {
  return {std::forward<E>(e)};
}

template <class T, class E = no_error>
class [[nodiscard]] result {
 public:
  using value_type = T;
  using error_type = E;

  /// A default result is a default value.
  result() : v_(std::in_place_index<0>) {}
  result(const T& v) : v_(std::in_place_index<0>, v) {}  // NOLINT: implicit, like std::expected
  result(T&& v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT
  template <class G>
    requires std::is_constructible_v<E, G&&>
  result(user_error<G> e) : v_(std::in_place_index<1>, std::move(e.value)) {}  // NOLINT
  result(std::error_code ec) : v_(std::in_place_index<2>, ec) {}                 // NOLINT
  result(errc e) : v_(std::in_place_index<2>, make_error_code(e)) {}            // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; throws std::system_error if there is none (with the framework error, or
  /// errc::remote_error for a user error).
  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T& operator*() & noexcept { return *std::get_if<0>(&v_); }
  const T& operator*() const& noexcept { return *std::get_if<0>(&v_); }
  T* operator->() noexcept { return std::get_if<0>(&v_); }
  const T* operator->() const noexcept { return std::get_if<0>(&v_); }
  template <class U>
  T value_or(U&& fallback) const& { return has_value() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback)); }

  /// The method's own error (the server's implementation returned api::fail(e)).
  bool has_error() const noexcept { return v_.index() == 1; }
  E& error() & noexcept { return *std::get_if<1>(&v_); }
  const E& error() const& noexcept { return *std::get_if<1>(&v_); }

  /// A framework error: the call did not produce a value or a method error.
  bool has_framework_error() const noexcept { return v_.index() == 2; }
  /// The framework error, or an empty code otherwise.
  std::error_code framework_error() const noexcept {
    auto* ec = std::get_if<2>(&v_);
    return ec ? *ec : std::error_code{};
  }

  friend bool operator==(const result& a, const result& b) = default;

 private:
  void check() const {
    if (has_value()) return;
    if (has_framework_error()) throw std::system_error(framework_error());
    throw std::system_error(make_error_code(errc::remote_error), "the method answered its own error");
  }

  std::variant<T, E, std::error_code> v_;
};

}  // namespace occams_rpc::api
