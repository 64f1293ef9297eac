#pragma once

#include <occams_rpc/session/balancer.hpp>

#include <algorithm>
#include <string>

namespace occams_rpc::session {

OCCAMS_RPC_DECL void balancer::rebuild(std::span<const failover_candidate> candidates,
                                       std::span<const std::string_view> names) {
  current_.assign(candidates.size(), 0);
  ring_.clear();
  if (order_ != failover_order::consistent_hash) return;
  // At most 2^20 points in all: weights scale down past that (the shares stay).
  std::uint64_t want = 0;
  for (auto& c : candidates) want += std::uint64_t{points_} * c.weight;
  const double scale = want > (1u << 20) ? static_cast<double>(1u << 20) / static_cast<double>(want) : 1.0;
  for (std::size_t i = 0; i < candidates.size() && i < names.size(); ++i) {
    auto count = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(static_cast<double>(points_) * candidates[i].weight * scale));
    std::uint64_t base = hash_key(names[i]);
    for (std::uint64_t k = 0; k < count; ++k)
      ring_.push_back({mix64(base ^ hash_key(k)), candidates[i].id, static_cast<std::uint32_t>(i)});
  }
  std::sort(ring_.begin(), ring_.end(), [](const point& a, const point& b) { return a.hash < b.hash; });
}

OCCAMS_RPC_DECL std::size_t balancer::next_random(std::size_t bound) noexcept {
  // xorshift64*: cheap, and good enough to pick two of a few addresses.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return static_cast<std::size_t>((rng_ * 0x2545f4914f6cdd1dULL) >> 32) % bound;
}

}  // namespace occams_rpc::session
