// A call's deadline, carried by its completion handler: an adapter of a forwarding_handler
// (the typed stub's) may have a `deadline` member; wrappers are looked through. The call
// times out at the sooner of it and call_timeout, and with the deadline extension on the
// request carries the caller's remaining time (docs/protocol.md, "v1 extensions").
#pragma once

#include <occams_rpc/stream/detail/forwarding_handler.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>

#include <chrono>

namespace occams_rpc::detail {

using deadline_clock = std::chrono::steady_clock;
inline constexpr deadline_clock::time_point no_deadline = deadline_clock::time_point::max();

template <class Handler>
deadline_clock::time_point call_deadline(const Handler&) noexcept {
  return no_deadline;
}
template <class Handler, class Adapt>
deadline_clock::time_point call_deadline(const forwarding_handler<Handler, Adapt>& h) noexcept {
  if constexpr (requires { deadline_clock::time_point(h.adapt.deadline); }) {
    if (h.adapt.deadline != no_deadline) return h.adapt.deadline;
  }
  return call_deadline(h.handler);
}
template <class T, class Slot>
deadline_clock::time_point call_deadline(const boost::asio::cancellation_slot_binder<T, Slot>& h) noexcept {
  return call_deadline(h.get());
}

}  // namespace occams_rpc::detail
