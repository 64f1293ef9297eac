// The codec concept: how msgs are encoded into a buffer and decoded from bytes.
// A codec never lets an exception escape and never crashes on truncated or malformed input:
// it returns errc::encode or errc::decode.
#pragma once

#include <occams_rpc/core/buffer.hpp>

#include <concepts>
#include <span>
#include <system_error>

namespace occams_rpc {

/// C can encode and decode values of type T.
template <class C, class T>
concept codec_for = requires(const C& c, const T& value, T& out, byte_buffer& buf, std::span<const char> bytes) {
  { c.encode(value, buf) } -> std::same_as<std::error_code>;   // appends to buf
  { c.decode(bytes, out) } -> std::same_as<std::error_code>;   // reads exactly one value
};

}  // namespace occams_rpc
