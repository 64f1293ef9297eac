// libFuzzer target: arbitrary bytes decoded by msgpack_codec as several types. The codec must
// never throw (its functions are noexcept: an escaping exception terminates and is reported),
// never crash or reserve memory a forged length claims, and a value it decodes must survive
// an encode/decode round trip unchanged.
#include <occams_rpc/codec/msgpack_codec.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

using namespace occams_rpc;

struct point {
  std::int32_t x = 0;
  std::int32_t y = 0;
  OCCAMS_RPC_FIELDS(x, y)
  bool operator==(const point&) const = default;
};

struct file_attr {
  std::uint64_t inode = 0;
  std::string name;
  std::vector<char> data;
  std::optional<std::uint32_t> mode;
  std::vector<point> points;
  std::map<std::string, std::int64_t> xattrs;
  bool dir = false;
  OCCAMS_RPC_FIELDS(inode, name, data, mode, points, xattrs, dir)
  bool operator==(const file_attr&) const = default;
};

const msgpack_codec codec;

// Decodes `bytes` as T; if that works, encoding the value and decoding it again must give the
// same value.
template <class T>
void decode_as(std::span<const char> bytes) {
  T value{};
  std::error_code ec = codec.decode(bytes, value);
  if (ec) {
    FUZZ_CHECK(ec == errc::decode);
    return;
  }
  byte_buffer out;
  FUZZ_CHECK(!codec.encode(value, out));
  T again{};
  FUZZ_CHECK(!codec.decode(out.span(), again));
  FUZZ_CHECK(again == value);
}

template <class... Args>
void decode_args_as(std::span<const char> bytes) {
  std::tuple<Args...> args{};
  std::error_code ec = codec.decode_args(bytes, args);
  if (ec) {
    FUZZ_CHECK(ec == errc::decode);
    return;
  }
  byte_buffer out;
  FUZZ_CHECK(!std::apply([&](const auto&... a) { return codec.encode_args(out, a...); }, args));
  std::tuple<Args...> again{};
  FUZZ_CHECK(!codec.decode_args(out.span(), again));
  FUZZ_CHECK(again == args);
}

/// The direct decoder and msgpack-c's object tree must agree: both refuse, or both give the
/// same value.
template <class T>
void same_as_general(std::span<const char> bytes) {
  T fast{}, general{};
  std::error_code a = codec.decode(bytes, fast);
  std::error_code b = msgpack_codec::decode_general(bytes, general);
  FUZZ_CHECK(static_cast<bool>(a) == static_cast<bool>(b));
  if constexpr (std::is_floating_point_v<T>) {
    if (!a) FUZZ_CHECK(std::memcmp(&fast, &general, sizeof fast) == 0);
  } else {
    if (!a) FUZZ_CHECK(fast == general);
  }
}

template <class... Args>
void args_same_as_general(std::span<const char> bytes) {
  std::tuple<Args...> fast{}, general{};
  std::error_code a = codec.decode_args(bytes, fast);
  std::error_code b = msgpack_codec::decode_args_general(bytes, general);
  FUZZ_CHECK(static_cast<bool>(a) == static_cast<bool>(b));
  if (!a) FUZZ_CHECK(fast == general);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const char> bytes(reinterpret_cast<const char*>(data), size);
  decode_as<file_attr>(bytes);
  decode_as<point>(bytes);
  decode_as<std::vector<std::string>>(bytes);
  decode_as<std::map<std::string, std::int64_t>>(bytes);
  decode_as<std::tuple<std::int64_t, std::int64_t>>(bytes);
  decode_as<std::vector<std::vector<std::uint8_t>>>(bytes);
  decode_as<std::vector<char>>(bytes);
  decode_as<std::string>(bytes);
  decode_as<std::optional<std::int64_t>>(bytes);
  decode_as<std::uint64_t>(bytes);
  decode_as<std::int8_t>(bytes);
  decode_as<bool>(bytes);
  decode_as<unit>(bytes);
  decode_args_as<>(bytes);
  decode_args_as<point>(bytes);
  decode_args_as<std::int64_t, std::string>(bytes);
  decode_args_as<std::string, std::vector<char>, bool>(bytes);
  {
    // Doubles: compare bit patterns (NaN != NaN).
    double d = 0;
    if (!codec.decode(bytes, d)) {
      byte_buffer out;
      FUZZ_CHECK(!codec.encode(d, out));
      double again = 1;
      FUZZ_CHECK(!codec.decode(out.span(), again));
      FUZZ_CHECK(std::memcmp(&d, &again, sizeof d) == 0);
    }
  }
  same_as_general<std::int8_t>(bytes);
  same_as_general<std::uint8_t>(bytes);
  same_as_general<std::int16_t>(bytes);
  same_as_general<std::uint32_t>(bytes);
  same_as_general<std::int64_t>(bytes);
  same_as_general<std::uint64_t>(bytes);
  same_as_general<char>(bytes);
  same_as_general<bool>(bytes);
  same_as_general<float>(bytes);
  same_as_general<double>(bytes);
  same_as_general<std::string>(bytes);
  same_as_general<std::vector<char>>(bytes);
  same_as_general<std::vector<unsigned char>>(bytes);
  same_as_general<unit>(bytes);
  args_same_as_general<>(bytes);
  args_same_as_general<std::int64_t, std::int64_t>(bytes);
  args_same_as_general<std::string, std::vector<char>, bool, double>(bytes);
  return 0;
}
