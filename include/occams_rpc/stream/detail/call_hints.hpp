// A failover_pool call's key and error classifier, carried by its completion handler as the
// deadline is (call_deadline.hpp): an adapter of a forwarding_handler (the typed stub's) may
// have a `key` member (std::optional<std::uint64_t>, api::with_key) and a static `classifier`
// (the method's error type's failover hint); wrappers are looked through.
#pragma once

#include <occams_rpc/core/failover_hint.hpp>
#include <occams_rpc/stream/detail/forwarding_handler.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>

#include <cstdint>
#include <optional>

namespace occams_rpc::detail {

template <class Handler>
std::optional<std::uint64_t> call_key(const Handler&) noexcept {
  return std::nullopt;
}
template <class Handler, class Adapt>
std::optional<std::uint64_t> call_key(const forwarding_handler<Handler, Adapt>& h) noexcept {
  if constexpr (requires { std::optional<std::uint64_t>(h.adapt.key); }) {
    if (h.adapt.key) return h.adapt.key;
  }
  return call_key(h.handler);
}
template <class T, class Slot>
std::optional<std::uint64_t> call_key(const boost::asio::cancellation_slot_binder<T, Slot>& h) noexcept {
  return call_key(h.get());
}

template <class Handler>
failover_classifier call_classifier(const Handler&) noexcept {
  return nullptr;
}
template <class Handler, class Adapt>
failover_classifier call_classifier(const forwarding_handler<Handler, Adapt>& h) noexcept {
  if constexpr (requires { failover_classifier(Adapt::classifier); }) {
    failover_classifier c = Adapt::classifier;  // null when the error type declares no hint
    if (c) return c;
  }
  return call_classifier(h.handler);
}
template <class T, class Slot>
failover_classifier call_classifier(const boost::asio::cancellation_slot_binder<T, Slot>& h) noexcept {
  return call_classifier(h.get());
}

}  // namespace occams_rpc::detail
