// Hex helpers for byte-exact assertions: "25 4d 01" <-> bytes.
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace occams_rpc::test {

/// Bytes from hex digits; spaces are ignored ("25 4d" and "254d" are the same).
inline std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("bad hex digit");
  };
  std::string out;
  int hi = -1;
  for (char c : hex) {
    if (c == ' ' || c == '\n') continue;
    if (hi < 0) {
      hi = nibble(c);
    } else {
      out.push_back(static_cast<char>(hi << 4 | nibble(c)));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::invalid_argument("odd number of hex digits");
  return out;
}

/// Lower-case hex with a space between bytes, for readable failure messages.
inline std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i) out.push_back(' ');
    auto b = static_cast<unsigned char>(bytes[i]);
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

inline std::string_view as_view(std::span<const char> s) { return {s.data(), s.size()}; }
inline std::span<const char> as_span(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace occams_rpc::test
