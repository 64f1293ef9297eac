// The v1 extensions (docs/protocol.md, "v1 extensions"): a hello that offers them, a
// deadline carried by a request, a cancel frame for a seq. Negotiated per connection: a peer
// that never sends a hello sees exactly v1. Byte layouts only; the sessions decide when.
#pragma once

#include <occams_rpc/proto/header.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace occams_rpc::proto::ext {

/// The hello's action string. It has no '.', so an API server that does not know it (this
/// library's router before the extensions, the Rust #[service] dispatch) answers rpc_decode.
inline constexpr std::string_view hello_action = "rpc_hello";
/// What the hello's msg and its answer start with: a plain echo of the hello is no answer.
inline constexpr std::string_view hello_offer_magic = "ocx1";
inline constexpr std::string_view hello_accept_magic = "OCX1";
inline constexpr std::size_t hello_msg_size = 8;  // magic, then a u32 of feature bits

/// Feature bits of the hello.
inline constexpr std::uint32_t feature_deadline = 1u << 0;
inline constexpr std::uint32_t feature_cancel = 1u << 1;
inline constexpr std::uint32_t all_features = feature_deadline | feature_cancel;

/// The request header's `format` byte on a negotiated connection. Below 0x80 it is v1's
/// (a codec format nobody checks); from 0x80 on it names an extension frame.
inline constexpr std::uint8_t extension_bit = 0x80;
/// A request whose msg starts with a u32 of the caller's remaining milliseconds (counted in
/// msg_len; the dispatch sees the msg without it).
inline constexpr std::uint8_t format_deadline = 0x80;
/// A cancel frame: action 0, no body; `seq` names the request the caller gave up. No answer.
inline constexpr std::uint8_t format_cancel = 0x81;
inline constexpr std::size_t deadline_prefix_size = 4;

/// The hello's msg (offer) or its answer's msg (accept): magic and feature bits.
inline void encode_hello(std::string_view magic, std::uint32_t features, char* out) noexcept {
  for (std::size_t i = 0; i < 4; ++i) out[i] = magic[i];
  detail::store_le(out + 4, features);
}

/// The feature bits of a hello msg starting with `magic`, or nothing if it is not one.
inline std::optional<std::uint32_t> decode_hello(std::string_view magic, std::span<const char> msg) noexcept {
  if (msg.size() != hello_msg_size || std::string_view(msg.data(), 4) != magic) return std::nullopt;
  return detail::load_le<std::uint32_t>(msg.data() + 4);
}

/// The remaining time as sent: whole milliseconds rounded up (a server never gives up before
/// its caller does), at least 1, at most 2^32-1 (about 49 days).
template <class Rep, class Period>
constexpr std::uint32_t remaining_ms(std::chrono::duration<Rep, Period> d) noexcept {
  if (d <= d.zero()) return 1;
  auto n = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  if (static_cast<std::uint64_t>(n) > 0xffff'ffffu) return 0xffff'ffffu;
  return static_cast<std::uint32_t>(n < 1 ? 1 : n);
}

}  // namespace occams_rpc::proto::ext
