// The v1 request and response headers, encoded and decoded byte-exactly (PROTOCOL.md).
#pragma once

#include <occams_rpc/core/error.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <system_error>

namespace occams_rpc::proto {

inline constexpr std::uint16_t magic = 19749;  // bytes 25 4d
inline constexpr std::uint8_t version = 1;
inline constexpr std::size_t request_header_size = 32;
inline constexpr std::size_t response_header_size = 20;
/// Bit 31 of the action word: the low 31 bits are the length of an action string.
inline constexpr std::uint32_t string_action_bit = 0x8000'0000u;
inline constexpr std::uint32_t max_numeric_action = 0x7fff'ffffu;
inline constexpr std::uint32_t ping_action = 0;

struct request_header {
  std::uint8_t format = 0;        ///< peers write 0 and do not check it
  std::uint32_t action_word = 0;  ///< numeric action, or string_action_bit | string length
  std::uint64_t seq = 0;
  std::uint64_t client_id = 0;
  std::uint32_t msg_len = 0;
  std::uint32_t blob_len = 0;

  bool has_string_action() const noexcept { return action_word & string_action_bit; }
  std::uint32_t action_len() const noexcept { return has_string_action() ? action_word & ~string_action_bit : 0; }
  std::uint32_t numeric_action() const noexcept { return action_word; }
  bool is_ping() const noexcept { return action_word == ping_action && msg_len == 0; }
  /// Bytes after the header: action string, msg and blob.
  std::uint64_t body_len() const noexcept { return std::uint64_t{action_len()} + msg_len + blob_len; }
};

enum class response_flag : std::uint8_t { ok = 0, error_code = 1, error_string = 2 };

struct response_header {
  response_flag flag = response_flag::ok;
  std::uint32_t msg_len = 0;  ///< flag ok: msg length; flag error_code: the code itself
  std::uint64_t seq = 0;
  std::uint32_t blob_len = 0; ///< flag ok: blob length; flag error_string: string length

  std::uint32_t error_code() const noexcept { return msg_len; }
  /// Bytes after the header. A flag-1 msg_len is a code, never a length.
  std::uint64_t body_len() const noexcept {
    return flag == response_flag::ok ? std::uint64_t{msg_len} + blob_len : blob_len;
  }
};

namespace detail {
template <class T>
constexpr T byteswap(T v) noexcept {  // std::byteswap is C++23
  if constexpr (sizeof(T) == 2) return static_cast<T>(__builtin_bswap16(v));
  else if constexpr (sizeof(T) == 4) return static_cast<T>(__builtin_bswap32(v));
  else return static_cast<T>(__builtin_bswap64(v));
}
template <class T>
inline void store_le(char* p, T v) noexcept {
  if constexpr (std::endian::native == std::endian::big) v = byteswap(v);
  std::memcpy(p, &v, sizeof v);
}
template <class T>
inline T load_le(const char* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = byteswap(v);
  return v;
}
}  // namespace detail

/// Writes the 32 header bytes at `out`.
inline void encode(const request_header& h, char* out) noexcept {
  detail::store_le<std::uint16_t>(out, magic);
  out[2] = static_cast<char>(version);
  out[3] = static_cast<char>(h.format);
  detail::store_le(out + 4, h.action_word);
  detail::store_le(out + 8, h.seq);
  detail::store_le(out + 16, h.client_id);
  detail::store_le(out + 24, h.msg_len);
  detail::store_le(out + 28, h.blob_len);
}

/// Writes the 20 header bytes at `out`.
inline void encode(const response_header& h, char* out) noexcept {
  detail::store_le<std::uint16_t>(out, magic);
  out[2] = static_cast<char>(version);
  out[3] = static_cast<char>(h.flag);
  detail::store_le(out + 4, h.msg_len);
  detail::store_le(out + 8, h.seq);
  detail::store_le(out + 16, h.blob_len);
}

inline std::error_code check_magic_and_version(const char* in) noexcept {
  if (detail::load_le<std::uint16_t>(in) != magic) return errc::bad_magic;
  if (static_cast<std::uint8_t>(in[2]) != version) return errc::bad_version;
  return {};
}

/// Reads 32 header bytes; fails with bad_magic or bad_version.
inline std::error_code decode(const char* in, request_header& h) noexcept {
  if (auto ec = check_magic_and_version(in)) return ec;
  h.format = static_cast<std::uint8_t>(in[3]);
  h.action_word = detail::load_le<std::uint32_t>(in + 4);
  h.seq = detail::load_le<std::uint64_t>(in + 8);
  h.client_id = detail::load_le<std::uint64_t>(in + 16);
  h.msg_len = detail::load_le<std::uint32_t>(in + 24);
  h.blob_len = detail::load_le<std::uint32_t>(in + 28);
  if (h.blob_len > 0x7fff'ffffu) return errc::bad_frame;  // the format caps blobs at 2^31-1
  return {};
}

/// Reads 20 header bytes; fails with bad_magic, bad_version or bad_frame (unknown flag,
/// negative blob length).
inline std::error_code decode(const char* in, response_header& h) noexcept {
  if (auto ec = check_magic_and_version(in)) return ec;
  auto flag = static_cast<std::uint8_t>(in[3]);
  if (flag > 2) return errc::bad_frame;
  h.flag = static_cast<response_flag>(flag);
  h.msg_len = detail::load_le<std::uint32_t>(in + 4);
  h.seq = detail::load_le<std::uint64_t>(in + 8);
  h.blob_len = detail::load_le<std::uint32_t>(in + 16);
  if (h.blob_len > 0x7fff'ffffu) return errc::bad_frame;  // an i32 on the wire
  return {};
}

}  // namespace occams_rpc::proto
