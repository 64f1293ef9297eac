// The request payload, allocated once, and the check of what comes back: the size of every
// echo, the content of every 1024th (BENCHMARK.md asks for at least that).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace bench {

class echo_payload {
 public:
  static constexpr std::uint64_t content_every = 1024;

  explicit echo_payload(std::size_t size) : bytes_(size) {
    // A pattern that is not periodic in any small power of two, so a shifted echo shows.
    std::uint32_t x = 2463534242u;
    for (auto& b : bytes_) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      b = static_cast<char>(x);
    }
  }

  std::span<const char> bytes() const noexcept { return {bytes_.data(), bytes_.size()}; }
  std::size_t size() const noexcept { return bytes_.size(); }

  /// True if `got` is a correct echo; otherwise says why in `why`.
  bool check(std::span<const char> got, std::string& why) noexcept {
    if (got.size() != bytes_.size()) {
      why = fmt::format("echo of {} bytes, expected {}", got.size(), bytes_.size());
      return false;
    }
    if (checked_++ % content_every == 0 && !bytes_.empty() && std::memcmp(got.data(), bytes_.data(), got.size()) != 0) {
      why = fmt::format("echo content differs ({} bytes)", got.size());
      return false;
    }
    return true;
  }

 private:
  std::vector<char> bytes_;
  std::uint64_t checked_ = 0;
};

}  // namespace bench
