// A failover_pool's load-balancing policies, sans-io: which address a call goes to, given the
// addresses as one executor's shard sees them (healthy, weight, calls in flight, ejected).
// One balancer per shard, touched only there: the smooth weighted round robin's current
// weights, the hash ring and the random state of the two choices live here.
//
// - round_robin: the eligible addresses in turn (the call's turn modulo their number).
// - primary_backup: the first eligible address in list order.
// - weighted_round_robin: smooth WRR (nginx): each pick adds every eligible address's weight
//   to its current weight, takes the largest, and takes the eligible total off it: weights
//   5,1,1 give a a b a c a a, not a a a a a b c.
// - least_in_flight: power of two choices: two distinct eligible addresses at random, the
//   one with fewer calls in flight per unit of weight.
// - consistent_hash: `points x weight` points per address on a 64-bit ring (hashed from the
//   address's name, so every client builds the same ring); a key goes to the first eligible
//   address clockwise whose calls in flight stay within ceil(load_factor x (all + 1) x
//   weight / total weight) (Mirrokni, Thorup, Zadimoghaddam: "consistent hashing with
//   bounded loads"), else on along the ring. Without a key: round robin.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/detail/config.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace occams_rpc::session {

/// An address's outlier-ejection counters (session/outlier_detector.hpp).
struct outlier_stats {
  std::uint32_t consecutive = 0;    ///< failures in a row
  std::uint32_t succeeded = 0;      ///< in the current interval
  std::uint32_t failed = 0;         ///< in the current interval
  std::uint32_t times_ejected = 0;  ///< decays by one per interval spent not ejected
  std::chrono::steady_clock::time_point ejected_until{};
};

/// An address as the next choice sees it.
struct failover_candidate {
  std::uintptr_t id;           ///< the same for the same address (its pool) while it stays in the list
  bool healthy;                ///< at least one connection up
  std::uint32_t weight = 1;    ///< relative share (weighted policies), at least 1
  std::uint32_t in_flight = 0; ///< this shard's calls on it now
  bool ejected = false;        ///< left out by outlier ejection
  outlier_stats outlier{};
};

/// The 64-bit hash of a call's key (FNV-1a then a finaliser): the same in every process.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}
constexpr std::uint64_t hash_key(std::string_view key) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : key) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return mix64(h);
}
constexpr std::uint64_t hash_key(std::uint64_t key) noexcept { return mix64(key + 0x9e3779b97f4a7c15ULL); }

class balancer {
 public:
  explicit balancer(const failover_config& cfg, std::uint64_t seed = 0x2545f4914f6cdd1dULL)
      : order_(cfg.order), load_factor_(cfg.hash_load_factor), points_(cfg.hash_points), rng_(seed | 1) {}

  failover_order order() const noexcept { return order_; }

  /// The address set changed: `names[i]` names candidates[i] (its address as text; the hash
  /// ring is built from them), in the same order as the candidates later picks are given.
  OCCAMS_RPC_DECL void rebuild(std::span<const failover_candidate> candidates, std::span<const std::string_view> names);

  /// The candidate the policy picks among those `ok(i)` accepts, or candidates.size() when it
  /// accepts none. `turn`: the call's step (round robin). `key`: the call's hashed key.
  template <class Ok>
  std::size_t pick(std::span<const failover_candidate> c, std::size_t turn, std::optional<std::uint64_t> key, Ok ok);

 private:
  struct point {
    std::uint64_t hash;
    std::uintptr_t id;
    std::uint32_t index;  // into the candidates the ring was built from
  };
  std::size_t next_random(std::size_t bound) noexcept;
  template <class Ok>
  std::size_t on_ring(std::span<const failover_candidate> c, std::uint64_t key, Ok& ok) const;

  failover_order order_;
  double load_factor_;
  std::size_t points_;
  std::uint64_t rng_;
  std::vector<std::int64_t> current_;  // smooth WRR, by candidate index
  std::vector<point> ring_;            // sorted by hash
};

template <class Ok>
std::size_t balancer::pick(std::span<const failover_candidate> c, std::size_t turn, std::optional<std::uint64_t> key,
                           Ok ok) {
  const std::size_t n = c.size();
  std::size_t eligible = 0;
  for (std::size_t i = 0; i < n; ++i) eligible += ok(i) ? 1 : 0;
  if (eligible == 0) return n;
  auto nth = [&](std::size_t k) {  // the k-th eligible candidate
    for (std::size_t i = 0; i < n; ++i)
      if (ok(i) && k-- == 0) return i;
    return n;
  };
  switch (order_) {
    case failover_order::primary_backup:
      return nth(0);
    case failover_order::weighted_round_robin: {
      if (current_.size() != n) current_.assign(n, 0);
      std::int64_t total = 0;
      std::size_t best = n;
      for (std::size_t i = 0; i < n; ++i) {
        if (!ok(i)) continue;
        current_[i] += c[i].weight;
        total += c[i].weight;
        if (best == n || current_[i] > current_[best]) best = i;
      }
      current_[best] -= total;
      return best;
    }
    case failover_order::least_in_flight: {
      if (eligible == 1) return nth(0);
      std::size_t a = next_random(eligible), b = next_random(eligible - 1);
      if (b >= a) ++b;
      std::size_t ia = nth(a), ib = nth(b);
      // Fewer calls in flight per unit of weight (cross-multiplied: no division).
      auto la = std::uint64_t{c[ia].in_flight} * c[ib].weight, lb = std::uint64_t{c[ib].in_flight} * c[ia].weight;
      return lb < la ? ib : ia;
    }
    case failover_order::consistent_hash:
      if (key && !ring_.empty()) {
        std::size_t i = on_ring(c, *key, ok);
        if (i < n) return i;
      }
      return nth(turn % eligible);
    case failover_order::round_robin:
    default:
      return nth(turn % eligible);
  }
}

template <class Ok>
std::size_t balancer::on_ring(std::span<const failover_candidate> c, std::uint64_t key, Ok& ok) const {
  const std::size_t n = c.size();
  // The bound: ceil(load_factor x (in flight + 1) x weight / total weight), over the eligible.
  std::uint64_t load = 0, total_weight = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (ok(i)) {
      load += c[i].in_flight;
      total_weight += c[i].weight;
    }
  auto index_of = [&](const point& p) -> std::size_t {
    if (p.index < n && c[p.index].id == p.id) return p.index;
    for (std::size_t i = 0; i < n; ++i)
      if (c[i].id == p.id) return i;
    return n;  // no longer in the list
  };
  auto start = std::lower_bound(ring_.begin(), ring_.end(), key, [](const point& p, std::uint64_t k) { return p.hash < k; });
  std::size_t first = n;  // the first eligible on the ring: the answer if every one is full
  std::size_t s = static_cast<std::size_t>(start - ring_.begin());
  for (std::size_t step = 0; step < ring_.size(); ++step) {
    const point& p = ring_[(s + step) % ring_.size()];
    std::size_t i = index_of(p);
    if (i == n || !ok(i)) continue;
    if (first == n) first = i;
    double cap = load_factor_ * static_cast<double>(load + 1) * c[i].weight / static_cast<double>(total_weight);
    if (static_cast<double>(c[i].in_flight) + 1.0 <= std::ceil(cap)) return i;
  }
  return first;
}

}  // namespace occams_rpc::session

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/session/impl/balancer.ipp>
#endif
