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
                                        bool closed, bool cancelled, failover_advice advice) {
  using kind = failover_hint::kind;
  if (advice.what == kind::stop || (!ec && advice.what != kind::usual)) return {failover_step::complete};
  if (advice.what == kind::elsewhere || advice.what == kind::at) {
    if (++redirects_ > max_redirects_) {
      last_ = make_error_code(errc::too_many_redirects);
      return {failover_step::fail, 0, last_};
    }
    last_ = ec;
    if (cancelled) {
      last_ = make_error_code(errc::cancelled);
      return {failover_step::fail, 0, last_};
    }
    // Out of attempts: the answer as it is (the caller sees the method's own error).
    if (closed || attempts_ > retry_limit_) return {failover_step::complete};
    if (advice.what == kind::at && advice.at < candidates.size()) return attempt(candidates, advice.at);
    return next(candidates, closed);
  }
  // closed from an address no longer listed: its pool closed as the set changed, before the
  // call was sent (a graceful close lets what was sent complete).
  bool removed = std::none_of(candidates.begin(), candidates.end(), [&](auto& c) { return c.id == current_; });
  bool unsent = removed && ec == errc::closed;
  if (!ec || !(is_retriable(ec) || unsent)) return {failover_step::complete};
  last_ = unsent && !closed ? make_error_code(errc::unreachable) : ec;  // not the caller's pool's close
  if (cancelled) {  // cancelled as the attempt failed: no retry
    last_ = make_error_code(errc::cancelled);
    return {failover_step::fail, 0, last_};
  }
  // Nothing reached a server: the attempt is given back, so that churn in the set (a naming
  // source's updates) does not use up the retries; bounded, since churn may not stop.
  if (unsent && reroutes_ < max_reroutes) {
    ++reroutes_;
    --attempts_;
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
  return attempt(candidates, i);
}

failover_action failover_fsm::attempt(std::span<const failover_candidate> candidates, std::size_t i) {
  current_ = candidates[i].id;
  if (!tried(current_)) tried_.push_back(current_);
  ++attempts_;
  return {failover_step::attempt, i};
}

bool failover_fsm::tried(std::uintptr_t id) const noexcept {
  return std::find(tried_.begin(), tried_.end(), id) != tried_.end();
}

std::size_t failover_fsm::choose(std::span<const failover_candidate> candidates) {
  std::size_t i = lb_->pick(candidates, turn_, key_, [&](std::size_t k) {
    return candidates[k].healthy && !candidates[k].ejected && !tried(candidates[k].id);
  });
  if (i < candidates.size()) return i;
  for (i = 0; i < candidates.size(); ++i)
    if (!tried(candidates[i].id)) return i;
  return candidates.size();
}

}  // namespace occams_rpc::session
