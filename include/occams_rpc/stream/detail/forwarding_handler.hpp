// A completion handler that adapts the arguments for the user's handler and is, to Asio, that
// handler: its associated executor, allocator and cancellation slot are the user's (see the
// associator at the end). An operation that runs as a coroutine (co_spawn) or hops through
// another operation completes through one of these, so that a handler bound to a strand runs
// on that strand and a bound cancellation slot still reaches the operation.
#pragma once

#include <occams_rpc/core/error.hpp>

#include <boost/asio/associator.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <tuple>
#include <system_error>
#include <type_traits>
#include <utility>

namespace occams_rpc::detail {

/// Calls `adapt(std::move(handler), args...)` when completed with `args`.
template <class Handler, class Adapt>
struct forwarding_handler {
  Handler handler;
  Adapt adapt;

  template <class... Args>
  void operator()(Args&&... args) {
    std::move(adapt)(std::move(handler), std::forward<Args>(args)...);
  }
};

template <class Handler, class Adapt>
forwarding_handler<std::decay_t<Handler>, Adapt> forward_to(Handler&& handler, Adapt adapt) {
  return {std::forward<Handler>(handler), std::move(adapt)};
}

/// `handler` without its cancellation slot (its executor and allocator stay): for an
/// operation that cannot be cancelled, so that it leaves the token's slot alone.
template <class Handler>
auto without_cancellation(Handler&& handler) {
  return boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(), std::forward<Handler>(handler));
}

/// The error an operation run as a coroutine completes with when an exception escaped it:
/// errc::cancelled for Asio's operation_aborted (a co_await in a cancelled coroutine throws
/// it), else `otherwise`.
inline std::error_code error_from_exception(const std::exception_ptr& e, errc otherwise) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& se) {
    if (se.code() == boost::asio::error::operation_aborted) return make_error_code(errc::cancelled);
  } catch (...) {
  }
  return make_error_code(otherwise);
}

/// Completes a user's handler from co_spawn's completion: (exception_ptr, tuple<error_code, T>)
/// becomes (error_code, T), and (exception_ptr) becomes (error_code). An escaped exception
/// completes with error_from_exception(e, on_exception).
struct unpack_coroutine_result {
  errc on_exception;

  template <class Handler, class T>
  void operator()(Handler&& handler, std::exception_ptr e, std::tuple<std::error_code, T> r) const {
    if (e) std::move(handler)(error_from_exception(e, on_exception), T{});
    else std::move(handler)(std::get<0>(r), std::move(std::get<1>(r)));
  }
  template <class Handler>
  void operator()(Handler&& handler, std::exception_ptr e) const {
    std::move(handler)(e ? error_from_exception(e, on_exception) : std::error_code{});
  }
};

}  // namespace occams_rpc::detail

template <template <class, class> class Associator, class Handler, class Adapt, class Default>
struct boost::asio::associator<Associator, occams_rpc::detail::forwarding_handler<Handler, Adapt>, Default>
    : Associator<Handler, Default> {
  static typename Associator<Handler, Default>::type get(
      const occams_rpc::detail::forwarding_handler<Handler, Adapt>& h) noexcept {
    return Associator<Handler, Default>::get(h.handler);
  }
  static auto get(const occams_rpc::detail::forwarding_handler<Handler, Adapt>& h, const Default& d) noexcept
      -> decltype(Associator<Handler, Default>::get(h.handler, d)) {
    return Associator<Handler, Default>::get(h.handler, d);
  }
};
