// The codec concepts: how values and call arguments are encoded into a buffer and decoded
// from bytes. A codec never lets an exception escape and never crashes on truncated or
// malformed input: it returns errc::encode or errc::decode.
//
// The stream layer needs nothing from a codec (it moves bytes). The typed API (api::stub,
// api::router) needs, for each method, api::codec_for_method (api/codec.hpp): the arguments
// through encode_args/decode_args and the value (and an encoded error) through encode/decode.
// docs/api.md, "Codecs", says what a codec must provide; msgpack_codec is the default model.
#pragma once

#include <occams_rpc/core/buffer.hpp>

#include <concepts>
#include <span>
#include <system_error>
#include <tuple>

namespace occams_rpc {

/// C can encode and decode values of type T.
template <class C, class T>
concept codec_for = requires(const C& c, const T& value, T& out, byte_buffer& buf, std::span<const char> bytes) {
  { c.encode(value, buf) } -> std::same_as<std::error_code>;   // appends to buf
  { c.decode(bytes, out) } -> std::same_as<std::error_code>;   // reads exactly one value
};

/// C can encode a call's arguments, of types Args..., as one msg and decode that msg back.
/// How the arguments are laid out (and how none travel) is the codec's choice; decode_args
/// must refuse a msg that holds another number of arguments.
template <class C, class... Args>
concept args_codec_for = requires(const C& c, byte_buffer& buf, const Args&... args, std::span<const char> bytes,
                                  std::tuple<Args...>& out) {
  { c.encode_args(buf, args...) } -> std::same_as<std::error_code>;  // appends to buf
  { c.decode_args(bytes, out) } -> std::same_as<std::error_code>;    // fills every element
};

}  // namespace occams_rpc
