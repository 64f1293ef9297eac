// A log-linear latency histogram in nanoseconds: fixed storage, recording never allocates.
// Values below 128 ns are exact; above, each power of two is cut into 64 buckets (under
// 1.6% error), up to 2^40 ns (18 minutes).
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace bench {

class latency_histogram {
  static constexpr unsigned sub_bits = 6;  // 64 buckets per power of two
  static constexpr unsigned max_shift = 34;
  static constexpr std::size_t linear = std::size_t{2} << sub_bits;  // 128 exact buckets
  static constexpr std::size_t bucket_count = linear + max_shift * (std::size_t{1} << sub_bits);

 public:
  void record(std::uint64_t ns) noexcept {
    ++counts_[index(ns)];
    ++total_;
  }
  std::uint64_t count() const noexcept { return total_; }
  /// Adds another histogram's samples (another client thread's).
  void merge(const latency_histogram& o) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
  }

  /// The value below which a fraction `q` (0..1) of the samples lie, in nanoseconds; the
  /// middle of its bucket. 0 when empty.
  double quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    if (rank >= total_) rank = total_ - 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen > rank) return middle(i);
    }
    return middle(bucket_count - 1);
  }

 private:
  static std::size_t index(std::uint64_t ns) noexcept {
    if (ns < linear) return static_cast<std::size_t>(ns);
    unsigned shift = static_cast<unsigned>(std::bit_width(ns)) - (sub_bits + 1);  // >= 1
    if (shift > max_shift) return bucket_count - 1;
    std::uint64_t top = (ns >> shift) - (std::uint64_t{1} << sub_bits);  // 0..63
    return linear + (shift - 1) * (std::size_t{1} << sub_bits) + static_cast<std::size_t>(top);
  }
  static double middle(std::size_t i) noexcept {
    if (i < linear) return static_cast<double>(i);
    std::size_t k = i - linear;
    unsigned shift = static_cast<unsigned>(k >> sub_bits) + 1;
    std::uint64_t top = (k & ((std::size_t{1} << sub_bits) - 1)) + (std::uint64_t{1} << sub_bits);
    double low = static_cast<double>(top << shift);
    return low + static_cast<double>(std::uint64_t{1} << shift) / 2;
  }

  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t total_ = 0;
};

}  // namespace bench
