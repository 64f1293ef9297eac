// A method's description: its signature and its error type. OCCAMS_RPC_SERVICE (service.hpp)
// derives one type per method from api::method and adds the names; the stub and the router
// read everything else from here.
#pragma once

#include <occams_rpc/api/result.hpp>
#include <occams_rpc/codec/unit.hpp>

#include <cstddef>
#include <tuple>
#include <type_traits>

namespace occams_rpc::api {

namespace detail {
template <class T>
struct signature_traits {
  static constexpr bool is_function = false;
};
template <class R, class... Args>
struct signature_traits<R(Args...)> {
  static constexpr bool is_function = true;
  using return_type = R;
  using args = std::tuple<Args...>;
  static constexpr bool args_are_values =
      ((!std::is_reference_v<Args> && !std::is_pointer_v<Args> && !std::is_const_v<Args>) && ...);
  static constexpr bool return_is_value =
      !std::is_reference_v<R> && !std::is_pointer_v<R> && !std::is_const_v<R>;
};

template <class R>
using value_of = std::conditional_t<std::is_void_v<R>, unit, R>;

template <class Sig>
struct checked_signature : signature_traits<Sig> {
  static_assert(signature_traits<Sig>::is_function,
                "occams_rpc: a method's signature must be a function type, such as "
                "std::int64_t(std::int64_t, std::int64_t)");
};
}  // namespace detail

/// Base of a method description. `Sig` is the signature, e.g. std::int64_t(std::int64_t);
/// `E` the method's own error type (none by default).
template <class Sig, class E = no_error>
struct method {
  using traits = detail::checked_signature<Sig>;
  static_assert(traits::args_are_values,
                "occams_rpc: a method's argument types must be plain values (no references, pointers "
                "or const): they are copied over the wire");
  static_assert(traits::return_is_value,
                "occams_rpc: a method's return type must be a plain value or void (no reference, "
                "pointer or const)");
  static_assert(!std::is_reference_v<E> && !std::is_void_v<E>, "occams_rpc: a method's error type must be a value type");

  using signature = Sig;
  using error_type = E;
  /// The value a call returns: the signature's return type (api::unit for void).
  using value_type = detail::value_of<typename traits::return_type>;
  /// The arguments, as decoded on the server.
  using args_tuple = typename traits::args;
  using result_type = result<value_type, E>;
  static constexpr std::size_t arity = std::tuple_size_v<args_tuple>;
};

/// The methods of a service, in declaration order.
template <class... Methods>
struct method_list {
  static constexpr std::size_t size = sizeof...(Methods);
};

namespace detail {
// OCCAMS_RPC_SERVICE writes method_list<void, A, B...>: drop the leading void.
template <class List>
struct drop_void;
template <class... M>
struct drop_void<method_list<void, M...>> {
  using type = method_list<M...>;
};
}  // namespace detail

}  // namespace occams_rpc::api
