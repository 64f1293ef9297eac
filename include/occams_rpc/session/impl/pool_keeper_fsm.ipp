#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/session/pool_keeper_fsm.hpp>

#include <cassert>

namespace occams_rpc::session {

keeper_action pool_keeper_fsm::start(time_point) noexcept {
  if (state_ == state::closed) return {keeper_step::done};
  assert(state_ == state::idle);
  state_ = state::connecting;
  return {keeper_step::connect};
}

keeper_action pool_keeper_fsm::on_connected(time_point now) noexcept {
  if (state_ == state::closed) return {keeper_step::done};  // closed while connecting
  assert(state_ == state::connecting);
  backoff_ = backoff_first_;
  return wait_for_ping(now);
}

keeper_action pool_keeper_fsm::on_connect_failed(time_point now) noexcept {
  if (state_ == state::closed) return {keeper_step::done};
  assert(state_ == state::connecting);
  return back_off(now);
}

keeper_action pool_keeper_fsm::on_timer(time_point now) noexcept {
  switch (state_) {
    case state::backing_off:
      if (now < deadline_) return {keeper_step::wait, deadline_};
      state_ = state::connecting;
      return {keeper_step::connect};
    case state::up:
      if (now < deadline_) return {keeper_step::wait, deadline_};
      state_ = state::pinging;
      return {keeper_step::ping};
    case state::closed:
      return {keeper_step::done};
    default:
      assert(!"pool_keeper_fsm: a timer event while no wait was asked for");
      return {keeper_step::done};
  }
}

keeper_action pool_keeper_fsm::on_ping_ok(time_point now) noexcept {
  if (state_ == state::closed) return {keeper_step::done};
  assert(state_ == state::pinging);
  return wait_for_ping(now);
}

keeper_action pool_keeper_fsm::on_ping_failed(time_point) noexcept {
  if (state_ == state::closed) return {keeper_step::done};
  assert(state_ == state::pinging);
  state_ = state::dropping;
  return {keeper_step::drop};
}

keeper_action pool_keeper_fsm::on_connection_lost(time_point) noexcept {
  if (state_ == state::closed) return {keeper_step::done};
  assert(healthy());
  state_ = state::dropping;
  return {keeper_step::drop};
}

keeper_action pool_keeper_fsm::on_dropped(time_point now) noexcept {
  if (state_ == state::closed) return {keeper_step::done};
  assert(state_ == state::dropping);
  return back_off(now);
}

keeper_action pool_keeper_fsm::close() noexcept {
  state_ = state::closed;
  return {keeper_step::done};
}

keeper_action pool_keeper_fsm::back_off(time_point now) noexcept {
  state_ = state::backing_off;
  deadline_ = now + backoff_;
  // The next failure waits twice as long, up to the cap (compared without doubling: no overflow).
  backoff_ = backoff_ > backoff_max_ - backoff_ ? backoff_max_ : backoff_ * 2;
  return {keeper_step::wait, deadline_};
}

keeper_action pool_keeper_fsm::wait_for_ping(time_point now) noexcept {
  state_ = state::up;
  deadline_ = now + period_;
  return {keeper_step::wait, deadline_};
}

std::error_code admit_waiting_call(const pool_config& cfg, bool closed, std::size_t waiting) noexcept {
  if (closed) return make_error_code(errc::closed);
  if (!cfg.wait_for_connection) return make_error_code(errc::unreachable);
  if (waiting >= cfg.max_waiting) return make_error_code(errc::overloaded);
  return {};
}

}  // namespace occams_rpc::session
