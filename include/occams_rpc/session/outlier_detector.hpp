// Outlier ejection, sans-io (as gRPC's outlier detection): an address whose calls keep failing
// is left out of the choice for a while, then probed back. The shell reports each attempt's
// outcome and the time; the detector marks candidates ejected and returns them.
//
// - consecutive rule: `consecutive_failures` failures in a row eject at once;
// - rate rule: at the end of each `interval`, an address with at least `minimum_volume` calls
//   of which at least `failure_rate_percent` % failed is ejected;
// - an ejection lasts base_ejection_time x (times ejected in a row), capped at
//   max_ejection_time; each interval spent not ejected takes one off that count;
// - at most max_ejection_percent % of the addresses are ejected at once (one at least when
//   the percentage is not 0), so a broken network does not eject everything;
// - when an ejection ends the address is eligible again: its next calls are the probe, and a
//   failure run ejects it again, for longer.
// One detector per failover_pool shard: each executor judges from the calls it made.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/detail/config.hpp>
#include <occams_rpc/session/balancer.hpp>

#include <chrono>
#include <cstddef>
#include <span>

namespace occams_rpc::session {

class outlier_detector {
 public:
  using clock = std::chrono::steady_clock;
  enum class event { ejected, returned };

  explicit outlier_detector(const outlier_config& cfg) : cfg_(cfg) {}

  bool enabled() const noexcept { return cfg_.enabled(); }

  /// An attempt on candidates[i] completed; `failed` says whether it counts as a failure.
  /// Calls `tell(i, event::ejected, until)` when that ejects it.
  template <class Tell>
  void on_result(std::span<failover_candidate> c, std::size_t i, bool failed, clock::time_point now, Tell&& tell) {
    auto& s = c[i].outlier;
    if (!failed) {
      s.consecutive = 0;
      ++s.succeeded;
      return;
    }
    ++s.failed;
    ++s.consecutive;
    if (cfg_.consecutive_failures > 0 && s.consecutive >= cfg_.consecutive_failures && !c[i].ejected) eject(c, i, now, tell);
  }

  /// Before a choice: returns the addresses whose ejection is over, and at each interval's
  /// end applies the rate rule and decays the ejection counts.
  template <class Tell>
  void on_time(std::span<failover_candidate> c, clock::time_point now, Tell&& tell) {
    for (std::size_t i = 0; i < c.size(); ++i)
      if (c[i].ejected && now >= c[i].outlier.ejected_until) {
        c[i].ejected = false;
        c[i].outlier.consecutive = 0;
        tell(i, event::returned, now);
      }
    if (interval_start_ == clock::time_point{}) interval_start_ = now;
    if (now - interval_start_ < cfg_.interval) return;
    interval_start_ = now;
    for (std::size_t i = 0; i < c.size(); ++i) {
      auto& s = c[i].outlier;
      std::uint64_t volume = std::uint64_t{s.succeeded} + s.failed;
      if (cfg_.failure_rate_percent > 0 && !c[i].ejected && volume >= cfg_.minimum_volume && volume > 0 &&
          std::uint64_t{s.failed} * 100 >= volume * cfg_.failure_rate_percent)
        eject(c, i, now, tell);
      else if (!c[i].ejected && s.times_ejected > 0)
        --s.times_ejected;
      s.succeeded = s.failed = 0;
    }
  }

 private:
  template <class Tell>
  void eject(std::span<failover_candidate> c, std::size_t i, clock::time_point now, Tell& tell) {
    std::size_t ejected = 0;
    for (auto& x : c) ejected += x.ejected ? 1 : 0;
    if (cfg_.max_ejection_percent == 0) return;
    if (ejected > 0 && (ejected + 1) * 100 > c.size() * cfg_.max_ejection_percent) return;
    auto& s = c[i].outlier;
    ++s.times_ejected;
    auto span = cfg_.base_ejection_time * s.times_ejected;
    if (span > cfg_.max_ejection_time) span = cfg_.max_ejection_time;
    c[i].ejected = true;
    s.ejected_until = now + span;
    s.consecutive = 0;
    tell(i, event::ejected, s.ejected_until);
  }

  outlier_config cfg_;
  clock::time_point interval_start_{};
};

}  // namespace occams_rpc::session
