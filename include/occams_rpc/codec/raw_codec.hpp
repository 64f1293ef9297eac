// The raw-bytes codec: the msg is the bytes themselves, for byte-string types only.
#pragma once

#include <occams_rpc/codec/codec.hpp>
#include <occams_rpc/core/error.hpp>

#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace occams_rpc {

template <class T>
concept byte_container = requires(T& t, const char* p, std::size_t n) {
  t.assign(p, p + n);
  { t.data() };
  { t.size() } -> std::convertible_to<std::size_t>;
} && sizeof(typename T::value_type) == 1;

class raw_codec {
 public:
  template <byte_container T>
  std::error_code encode(const T& value, byte_buffer& out) const noexcept {
    try {
      out.append(reinterpret_cast<const char*>(value.data()), value.size());
      return {};
    } catch (...) {
      return errc::encode;
    }
  }
  template <byte_container T>
  std::error_code decode(std::span<const char> bytes, T& out) const noexcept {
    try {
      using V = typename T::value_type;
      out.assign(reinterpret_cast<const V*>(bytes.data()), reinterpret_cast<const V*>(bytes.data() + bytes.size()));
      return {};
    } catch (...) {
      return errc::decode;
    }
  }
};

static_assert(codec_for<raw_codec, std::string>);
static_assert(codec_for<raw_codec, std::vector<unsigned char>>);

}  // namespace occams_rpc
