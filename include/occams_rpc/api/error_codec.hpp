// How a method's own error type travels on the wire, as the Rust side sends it:
// - integers and enums (errno-like codes): an error code, flag 1;
// - std::string: an error string, flag 2, the raw UTF-8 bytes;
// - any other type: encoded by the codec, sent as a flag-2 error string.
// Specialise error_codec<E> for a type of your own, with the members of one of these kinds.
//
// An error type may also say where a failover_pool should retry the call (leader redirect,
// docs/pools.md): a member `occams_rpc::failover_hint failover() const`, or a static
// `failover_hint failover(const E&)` in its error_codec specialisation (for enums and
// integers).
#pragma once

#include <occams_rpc/core/failover_hint.hpp>

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace occams_rpc::api {

enum class error_kind {
  code,     ///< flag 1: `static std::uint32_t to_code(const E&)`, `static E from_code(std::uint32_t)`
  string,   ///< flag 2: `static std::string_view to_string(const E&)`, `static E from_string(std::string_view)`
  encoded,  ///< flag 2: the codec encodes and decodes E (it must be codec-encodable)
};

template <class E, class = void>
struct error_codec {
  static constexpr error_kind kind = error_kind::encoded;
};

template <class E>
struct error_codec<E, std::enable_if_t<(std::is_integral_v<E> && !std::is_same_v<E, bool>) || std::is_enum_v<E>>> {
  static constexpr error_kind kind = error_kind::code;
  static std::uint32_t to_code(E e) noexcept { return static_cast<std::uint32_t>(e); }
  static E from_code(std::uint32_t c) noexcept { return static_cast<E>(c); }
};

template <>
struct error_codec<std::string> {
  static constexpr error_kind kind = error_kind::string;
  static std::string_view to_string(const std::string& e) noexcept { return e; }
  static std::string from_string(std::string_view s) { return std::string(s); }
};

/// Whether a method's error type says where to retry (see the top of this file).
template <class E>
concept declares_failover =
    requires(const E& e) {
      { e.failover() } -> std::convertible_to<failover_hint>;
    } || requires(const E& e) {
      { error_codec<E>::failover(e) } -> std::convertible_to<failover_hint>;
    };

/// The failover hint an error declares.
template <declares_failover E>
failover_hint failover_of(const E& e) {
  if constexpr (requires { e.failover(); }) return e.failover();
  else return error_codec<E>::failover(e);
}

}  // namespace occams_rpc::api
