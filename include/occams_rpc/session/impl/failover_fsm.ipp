#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/session/failover_fsm.hpp>

#include <algorithm>

namespace occams_rpc::session {

failover_action failover_fsm::start(std::span<const failover_candidate> candidates, bool closed) {
  last_ = make_error_code(closed ? errc::closed : errc::unreachable);
  return next(candidates, closed);
}

failover_action failover_fsm::on_result(std::error_code ec, std::span<const failover_candidate> candidates,
                                        bool closed, bool cancelled) {
  bool removed = std::none_of(candidates.begin(), candidates.end(), [&](auto& c) { return c.id == current_; });
  if (!ec || !(is_retriable(ec) || (removed && ec == errc::closed))) return {failover_step::complete};
  last_ = ec;
  if (cancelled) {  // cancelled as the attempt failed: no retry
    last_ = make_error_code(errc::cancelled);
    return {failover_step::fail, 0, last_};
  }
  return next(candidates, closed);
}

failover_action failover_fsm::next(std::span<const failover_candidate> candidates, bool closed) {
  if (closed || attempts_ > retry_limit_) return {failover_step::fail, 0, last_};
  std::size_t i = choose(candidates);
  if (i == candidates.size()) {
    tried_.clear();  // every address tried once: go round again while attempts remain
    i = choose(candidates);
    if (i == candidates.size()) return {failover_step::fail, 0, last_};  // no address at all
  }
  current_ = candidates[i].id;
  tried_.push_back(current_);
  ++attempts_;
  return {failover_step::attempt, i};
}

bool failover_fsm::tried(std::uintptr_t id) const noexcept {
  return std::find(tried_.begin(), tried_.end(), id) != tried_.end();
}

std::size_t failover_fsm::choose(std::span<const failover_candidate> candidates) const noexcept {
  auto candidate = [&](const failover_candidate& c) { return c.healthy && !tried(c.id); };
  auto healthy = static_cast<std::size_t>(std::count_if(candidates.begin(), candidates.end(), candidate));
  if (healthy > 0) {
    // Round robin: the turn-th of them; primary/backup: the first.
    std::size_t skip = order_ == failover_order::round_robin ? turn_ % healthy : 0;
    for (std::size_t i = 0; i < candidates.size(); ++i)
      if (candidate(candidates[i]) && skip-- == 0) return i;
  }
  for (std::size_t i = 0; i < candidates.size(); ++i)
    if (!tried(candidates[i].id)) return i;
  return candidates.size();
}

}  // namespace occams_rpc::session
