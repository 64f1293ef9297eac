// A direct msgpack decoder for the simplest values (integers, floats, bool, nil, strings,
// bytes, and a tuple of those as call arguments), used by msgpack_codec before msgpack-c.
// msgpack-c builds an object tree first and allocates its parser stack on every decode; the
// common RPC arguments and results need neither. The rules are msgpack-c's own (which wire
// types convert to which C++ type, range checks), so both paths accept and refuse the same
// bytes; the fuzzer checks that they agree.
#pragma once

#include <occams_rpc/codec/bytes.hpp>
#include <occams_rpc/codec/unit.hpp>
#include <occams_rpc/core/error.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <system_error>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace occams_rpc::detail::msgpack_fast {

// The integer types msgpack-c converts (not bool, wchar_t or the charN_t types).
template <class T>
inline constexpr bool is_integer = std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, wchar_t> &&
                                   !std::is_same_v<T, char8_t> && !std::is_same_v<T, char16_t> &&
                                   !std::is_same_v<T, char32_t>;

template <class T>
inline constexpr bool is_bytes = std::is_same_v<T, std::vector<char>> || std::is_same_v<T, std::vector<unsigned char>>;

/// The types decoded here; anything else goes to msgpack-c.
template <class T>
inline constexpr bool supported_scalar = is_integer<T> || std::is_same_v<T, bool> || std::is_floating_point_v<T> ||
                                         std::is_same_v<T, std::string> || is_bytes<T> || std::is_same_v<T, unit> ||
                                         std::is_same_v<T, bytes>;

template <class T>
struct supported_args : std::false_type {};
template <class... T>
struct supported_args<std::tuple<T...>> : std::bool_constant<(supported_scalar<T> && ...)> {};

class reader {
 public:
  reader(const char* p, std::size_t n) noexcept
      : p_(reinterpret_cast<const unsigned char*>(p)), end_(p_ + n) {}

  bool byte(unsigned& out) noexcept {
    if (p_ == end_) return false;
    out = *p_++;
    return true;
  }
  template <class U>
  bool big_endian(U& out) noexcept {  // an unsigned integer of sizeof(U) bytes
    if (static_cast<std::size_t>(end_ - p_) < sizeof(U)) return false;
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>((v << 8) | p_[i]);
    p_ += sizeof(U);
    out = v;
    return true;
  }
  /// A length field: a big-endian U, widened.
  template <class U>
  bool length(std::size_t& out) noexcept {
    U n;
    if (!big_endian(n)) return false;
    out = n;
    return true;
  }
  bool take(std::size_t n, const char*& out) noexcept {
    if (static_cast<std::size_t>(end_ - p_) < n) return false;
    out = reinterpret_cast<const char*>(p_);
    p_ += n;
    return true;
  }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

/// An integer on the wire: its magnitude and sign (msgpack-c's POSITIVE/NEGATIVE_INTEGER).
struct wire_integer {
  bool negative = false;
  std::uint64_t u = 0;  // when !negative
  std::int64_t i = 0;   // when negative
};

enum class kind { integer, f32, f64, other };

/// Reads an integer or float header; `tag` is the first byte, already read.
inline kind read_number(reader& r, unsigned tag, wire_integer& n, double& f) noexcept {
  auto signed_value = [&](std::int64_t v) {
    if (v < 0) n = {true, 0, v};
    else n = {false, static_cast<std::uint64_t>(v), 0};
    return kind::integer;
  };
  if (tag <= 0x7f) return n = {false, tag, 0}, kind::integer;
  if (tag >= 0xe0) return signed_value(static_cast<std::int8_t>(tag));
  switch (tag) {
    case 0xcc: { std::uint8_t v; return r.big_endian(v) ? (n = {false, v, 0}, kind::integer) : kind::other; }
    case 0xcd: { std::uint16_t v; return r.big_endian(v) ? (n = {false, v, 0}, kind::integer) : kind::other; }
    case 0xce: { std::uint32_t v; return r.big_endian(v) ? (n = {false, v, 0}, kind::integer) : kind::other; }
    case 0xcf: { std::uint64_t v; return r.big_endian(v) ? (n = {false, v, 0}, kind::integer) : kind::other; }
    case 0xd0: { std::uint8_t v; return r.big_endian(v) ? signed_value(static_cast<std::int8_t>(v)) : kind::other; }
    case 0xd1: { std::uint16_t v; return r.big_endian(v) ? signed_value(static_cast<std::int16_t>(v)) : kind::other; }
    case 0xd2: { std::uint32_t v; return r.big_endian(v) ? signed_value(static_cast<std::int32_t>(v)) : kind::other; }
    case 0xd3: { std::uint64_t v; return r.big_endian(v) ? signed_value(static_cast<std::int64_t>(v)) : kind::other; }
    case 0xca: {
      std::uint32_t v;
      if (!r.big_endian(v)) return kind::other;
      float x;
      std::memcpy(&x, &v, sizeof x);
      f = x;
      return kind::f32;
    }
    case 0xcb: {
      std::uint64_t v;
      if (!r.big_endian(v)) return kind::other;
      std::memcpy(&f, &v, sizeof f);
      return kind::f64;
    }
    default: return kind::other;
  }
}

/// Reads a str or bin header and its bytes (msgpack-c converts either into a string or a
/// byte vector).
inline bool read_text_or_bytes(reader& r, unsigned tag, const char*& data, std::size_t& size) noexcept {
  // One switch (bin 8 is the common payload's header), not a chain of comparisons.
  switch (tag) {
    case 0xc4:
    case 0xd9:
      if (!r.length<std::uint8_t>(size)) return false;
      break;
    case 0xc5:
    case 0xda:
      if (!r.length<std::uint16_t>(size)) return false;
      break;
    case 0xc6:
    case 0xdb:
      if (!r.length<std::uint32_t>(size)) return false;
      break;
    default:
      if ((tag & 0xe0) != 0xa0) return false;  // fixstr: 0xa0..0xbf
      size = tag & 0x1f;
  }
  return r.take(size, data);
}

template <class T>
bool read_value(reader& r, T& out) {
  unsigned tag;
  if (!r.byte(tag)) return false;
  if constexpr (std::is_same_v<T, unit>) {
    return tag == 0xc0;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (tag != 0xc2 && tag != 0xc3) return false;
    out = tag == 0xc3;
    return true;
  } else if constexpr (is_integer<T>) {
    wire_integer n;
    double ignored;
    if (read_number(r, tag, n, ignored) != kind::integer) return false;
    if (n.negative) {
      if constexpr (std::is_unsigned_v<T>) return false;
      else if (n.i < static_cast<std::int64_t>(std::numeric_limits<T>::min())) return false;
      else out = static_cast<T>(n.i);
    } else {
      if (n.u > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return false;
      out = static_cast<T>(n.u);
    }
    return true;
  } else if constexpr (std::is_floating_point_v<T>) {
    wire_integer n;
    double f = 0;
    switch (read_number(r, tag, n, f)) {
      case kind::integer: out = n.negative ? static_cast<T>(n.i) : static_cast<T>(n.u); return true;
      case kind::f32:
      case kind::f64: out = static_cast<T>(f); return true;
      default: return false;
    }
  } else {  // std::string, std::vector<char>, std::vector<unsigned char>, bytes (a view of the input)
    const char* data;
    std::size_t size;
    if (!read_text_or_bytes(r, tag, data, size)) return false;
    if constexpr (std::is_same_v<T, bytes>) out = bytes(std::span<const char>(data, size));
    else out.assign(data, data + size);
    return true;
  }
}

/// Runs `read`, turning a refusal or an exception (out of memory) into errc::decode, as the
/// codec concept wants.
template <class Read>
std::error_code guarded(Read&& read) noexcept {
  try {
    return read() ? std::error_code{} : make_error_code(errc::decode);
  } catch (...) {
    return errc::decode;
  }
}

/// Whether read_value<T> cannot throw (it allocates only for a string or a byte vector).
template <class T>
inline constexpr bool reads_without_throwing = !std::is_same_v<T, std::string> && !is_bytes<T>;

/// Decodes one value; errc::decode for anything msgpack-c would refuse too.
template <class T>
std::error_code decode(std::span<const char> bytes, T& out) noexcept {
  auto read = [&] {
    reader r(bytes.data(), bytes.size());
    return read_value(r, out);
  };
  // No guard where nothing can throw: the read inlines into the caller.
  if constexpr (reads_without_throwing<T>) return read() ? std::error_code{} : make_error_code(errc::decode);
  else return guarded(read);
}

/// Reads call arguments sent as one array of exactly sizeof...(T) items.
template <class... T>
bool read_array(std::span<const char> bytes, std::tuple<T...>& out) {
  reader r(bytes.data(), bytes.size());
  unsigned tag;
  if (!r.byte(tag)) return false;
  std::size_t count;
  if (tag >= 0x90 && tag <= 0x9f) {
    count = tag & 0x0f;
  } else if (tag == 0xdc) {
    if (!r.length<std::uint16_t>(count)) return false;
  } else if (tag == 0xdd) {
    if (!r.length<std::uint32_t>(count)) return false;
  } else {
    return false;
  }
  if (count != sizeof...(T)) return false;
  return std::apply([&](auto&... v) { return (read_value(r, v) && ...); }, out);
}

/// Decodes call arguments sent as one array of exactly sizeof...(T) items.
template <class... T>
std::error_code decode_array(std::span<const char> bytes, std::tuple<T...>& out) noexcept {
  return guarded([&] { return read_array(bytes, out); });
}

}  // namespace occams_rpc::detail::msgpack_fast
