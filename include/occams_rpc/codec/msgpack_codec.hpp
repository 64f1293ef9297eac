// The default codec: msgpack, laid out like the Rust side (rmp-serde with named fields).
// - several arguments travel as one msgpack array, no argument as nil (encode_args/decode_args)
// - structs are maps keyed by field name: put OCCAMS_RPC_FIELDS(a, b, ...) in the struct
// - std::vector<char> / std::vector<unsigned char> / std::span<const char> / occams_rpc::bytes
//   travel as bin, std::string as str. A `bytes` decoded as the value or an argument views the
//   input (no copy); inside a struct or container it owns a copy.
#pragma once

#include <occams_rpc/codec/bytes.hpp>
#include <occams_rpc/codec/codec.hpp>
#include <occams_rpc/codec/detail/msgpack_fast_decode.hpp>
#include <occams_rpc/codec/unit.hpp>
#include <occams_rpc/core/error.hpp>

#include <msgpack.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <span>
#include <system_error>
#include <tuple>
#include <type_traits>

/// Declares the fields of a struct for the msgpack codec: a map keyed by the field names, like
/// a Rust struct with serde + rmp-serde named encoding. Missing keys keep their defaults.
#define OCCAMS_RPC_FIELDS(...) MSGPACK_DEFINE_MAP(__VA_ARGS__)

namespace occams_rpc {

namespace detail {
/// Decode limits derived from the input size, so that a forged length (an array of 2^32
/// items in ten bytes) cannot make the decoder reserve memory the input could not fill.
inline msgpack::unpack_limit limits_for(std::size_t n) noexcept {
  return msgpack::unpack_limit(n, n, n, n, n, 64);
}

/// Strings, bins and exts refer to the input bytes, which outlive the decoded tree.
inline bool reference_input(msgpack::type::object_type, std::size_t, void*) noexcept { return true; }
}  // namespace detail

class msgpack_codec {
 public:
  /// A std::string_view encodes as a std::string (str) and a std::span<const char> as a
  /// std::vector<char> (bin): the typed stub may pass arguments as views (api/codec.hpp).
  static constexpr bool encodes_views_as_values = true;

  template <class T>
  std::error_code encode(const T& value, byte_buffer& out) const noexcept {
    if constexpr (std::is_same_v<T, bytes> || std::is_same_v<T, std::span<const char>>) {
      return encode_bin(std::span<const char>(value), out);  // the common payload: no packer
    }
    std::size_t mark = out.size();
    try {
      msgpack::pack(out, value);
      return {};
    } catch (...) {
      out.truncate(mark);
      return errc::encode;
    }
  }

  template <class T>
  std::error_code decode(std::span<const char> bytes, T& out) const noexcept {
    if constexpr (detail::msgpack_fast::supported_scalar<T>) return detail::msgpack_fast::decode(bytes, out);
    else return decode_general(bytes, out);
  }

  /// decode() through msgpack-c's object tree, for every type (decode() takes a direct path
  /// for the simplest ones; tests compare the two).
  template <class T>
  static std::error_code decode_general(std::span<const char> bytes, T& out) noexcept {
    return decode_object(bytes, [&](const msgpack::object& o) { o.convert(out); });
  }

  /// Writes msgpack bin (the smallest header for the size), as msgpack-c's packer would.
  static std::error_code encode_bin(std::span<const char> v, byte_buffer& out) noexcept {
    if (v.size() > 0xffff'ffffu) return errc::encode;
    try {
      char* p = out.prepare(5 + v.size());
      std::size_t h;
      auto n = static_cast<std::uint32_t>(v.size());
      if (n <= 0xffu) {
        p[0] = static_cast<char>(0xc4u);
        p[1] = static_cast<char>(n);
        h = 2;
      } else if (n <= 0xffffu) {
        p[0] = static_cast<char>(0xc5u);
        _msgpack_store16(p + 1, static_cast<std::uint16_t>(n));
        h = 3;
      } else {
        p[0] = static_cast<char>(0xc6u);
        _msgpack_store32(p + 1, n);
        h = 5;
      }
      if (n) std::memcpy(p + h, v.data(), n);
      out.commit(h + n);
      return {};
    } catch (...) {
      return errc::encode;
    }
  }

  /// Encodes call arguments the way the Rust side expects one argument: none as nil, one as
  /// itself, several as one array.
  template <class... Args>
  std::error_code encode_args(byte_buffer& out, const Args&... args) const noexcept {
    if constexpr (sizeof...(Args) == 0) return encode(msgpack::type::nil_t{}, out);
    else if constexpr (sizeof...(Args) == 1) return encode(args..., out);
    else return encode(std::tie(args...), out);
  }

  /// The inverse of encode_args: fills a tuple of the argument types.
  template <class... Args>
  std::error_code decode_args(std::span<const char> bytes, std::tuple<Args...>& out) const noexcept {
    if constexpr (sizeof...(Args) == 0) {
      unit nil;
      return decode(bytes, nil);
    } else if constexpr (sizeof...(Args) == 1) {
      return decode(bytes, std::get<0>(out));
    } else if constexpr (detail::msgpack_fast::supported_args<std::tuple<Args...>>::value) {
      return detail::msgpack_fast::decode_array(bytes, out);
    } else {
      return decode_args_general(bytes, out);
    }
  }

  /// decode_args() through msgpack-c's object tree (see decode_general).
  template <class... Args>
  static std::error_code decode_args_general(std::span<const char> bytes, std::tuple<Args...>& out) noexcept {
    if constexpr (sizeof...(Args) == 0) {
      msgpack::type::nil_t nil;
      return decode_general(bytes, nil);
    } else if constexpr (sizeof...(Args) == 1) {
      return decode_general(bytes, std::get<0>(out));
    } else {
      // msgpack-c's tuple adaptor leaves missing elements untouched and ignores extra ones;
      // the Rust side rejects a wrong argument count, and so do we.
      return decode_object(bytes, [&](const msgpack::object& o) {
        if (o.type != msgpack::type::ARRAY || o.via.array.size != sizeof...(Args)) throw msgpack::type_error();
        o.convert(out);
      });
    }
  }

 private:
  template <class F>
  static std::error_code decode_object(std::span<const char> bytes, F&& convert) noexcept {
    if (bytes.empty()) return errc::decode;
    // The decoded tree lives in a zone reused by this thread (cleared, not freed), and strings
    // and bins point into `bytes` instead of being copied: decoding a small message allocates
    // nothing (converting into a std::string or vector still allocates what they hold). A decode nested in another (from a user's adaptor) gets a zone of its own.
    thread_local msgpack::zone reused;
    thread_local bool reused_busy = false;
    std::optional<msgpack::zone> own;
    msgpack::zone& zone = reused_busy ? own.emplace() : reused;
    bool owns_reused = &zone == &reused;
    if (owns_reused) reused_busy = true;
    std::error_code result;
    try {
      // msgpack-c's v1 parser allocates one vector per call, where the v2/v3 parser allocates
      // two. Its tree has the same layout as the v3 object's.
      std::size_t off = 0;
      msgpack::v1::object tree = msgpack::v1::unpack(zone, bytes.data(), bytes.size(), off, &detail::reference_input,
                                                     nullptr, detail::limits_for(bytes.size()));
      msgpack::object obj;
      obj.type = tree.type;
      obj.via = tree.via;
      convert(obj);
    } catch (...) {
      result = errc::decode;
    }
    zone.clear();
    if (owns_reused) reused_busy = false;
    return result;
  }
};

static_assert(codec_for<msgpack_codec, int>);
static_assert(args_codec_for<msgpack_codec, int, std::string_view>);

}  // namespace occams_rpc

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(v1) {
// Floats travel as msgpack float32/float64, always, as rmp-serde writes them. msgpack-c
// would write an integral float as an integer, and its range check lets 2^64 through to a
// float-to-integer conversion that is undefined behaviour (found by fuzz_msgpack_decode).
template <>
inline packer<occams_rpc::byte_buffer>& packer<occams_rpc::byte_buffer>::pack_float(float d) {
  char buf[5];
  buf[0] = static_cast<char>(0xcau);
  _msgpack_store32(&buf[1], std::bit_cast<std::uint32_t>(d));
  append_buffer(buf, 5);
  return *this;
}
template <>
inline packer<occams_rpc::byte_buffer>& packer<occams_rpc::byte_buffer>::pack_double(double d) {
  char buf[9];
  buf[0] = static_cast<char>(0xcbu);
  _msgpack_store64(&buf[1], std::bit_cast<std::uint64_t>(d));
  append_buffer(buf, 9);
  return *this;
}
}  // MSGPACK_API_VERSION_NAMESPACE(v1)
}  // namespace msgpack

// unit <-> nil
namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
namespace adaptor {
template <>
struct pack<occams_rpc::unit> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const occams_rpc::unit&) const {
    o.pack_nil();
    return o;
  }
};
// A span of bytes encodes as bin, like std::vector<char> (encode only: it owns nothing).
template <>
struct pack<std::span<const char>> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, std::span<const char> v) const {
    if (v.size() > 0xffff'ffffu) throw msgpack::container_size_overflow("bin too large");
    o.pack_bin(static_cast<std::uint32_t>(v.size()));
    o.pack_bin_body(v.data(), static_cast<std::uint32_t>(v.size()));
    return o;
  }
};
template <>
struct pack<occams_rpc::bytes> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const occams_rpc::bytes& v) const {
    return pack<std::span<const char>>()(o, v.span());
  }
};
// Inside another value (a struct field, a container) bytes are decoded as an owned copy: the
// value may outlive the input. Only a top-level value or call argument (the direct decoder)
// is a view of the input, whose lifetime the stub and the router manage.
template <>
struct convert<occams_rpc::bytes> {
  const msgpack::object& operator()(const msgpack::object& o, occams_rpc::bytes& v) const {
    std::span<const char> in;
    if (o.type == msgpack::type::BIN) in = {o.via.bin.ptr, o.via.bin.size};
    else if (o.type == msgpack::type::STR) in = {o.via.str.ptr, o.via.str.size};
    else throw msgpack::type_error();
    v = occams_rpc::bytes::copy_of(in);
    return o;
  }
};
template <>
struct convert<occams_rpc::unit> {
  const msgpack::object& operator()(const msgpack::object& o, occams_rpc::unit&) const {
    if (o.type != msgpack::type::NIL) throw msgpack::type_error();
    return o;
  }
};
}  // namespace adaptor
}
}  // namespace msgpack
