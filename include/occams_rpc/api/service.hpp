// OCCAMS_RPC_SERVICE: describes a service once; the stub's methods and the server's routing
// come from that description.
//
//   OCCAMS_RPC_SERVICE(CalService,
//       (inc, std::int64_t(std::int64_t)),
//       (add, std::int64_t(std::int64_t, std::int64_t)),
//       (div, std::int64_t(std::int64_t, std::int64_t), std::string));  // error type: string
//
// defines `struct CalService` with:
// - `CalService::service_name` ("CalService") and, per method, a type `CalService::add` (an
//   api::method) with `method_name` "add" and `action` "CalService.add", as the Rust
//   `#[service]` macro names them;
// - `CalService::methods`, the list of those types;
// - `CalService::stub<Channel>`, whose member `add(a, b)` makes the call (see api/stub.hpp).
// Each entry is (name, signature) or (name, signature, error type). Types with commas in
// their template arguments are fine in both.
// Reserved method names (the same list as docs/api.md), as they name members of the generated
// types: the service's service_name, methods and stub; a method type's method_name, action,
// invoke, signature, traits, error_type, value_type, args_tuple, result_type and arity; the
// stub's call and channel; and the service's own name. Most stop the build inside stub.hpp or
// router.hpp; signature, traits and channel build but hide the member of that name.
#pragma once

#include <occams_rpc/api/method.hpp>
#include <occams_rpc/api/stub.hpp>

#include <string_view>
#include <utility>

// --- a small for-each over macro arguments (C++20 __VA_OPT__) --------------------------------
#define OCCAMS_RPC_PP_EXPAND(...) OCCAMS_RPC_PP_EXPAND4(OCCAMS_RPC_PP_EXPAND4(OCCAMS_RPC_PP_EXPAND4(__VA_ARGS__)))
#define OCCAMS_RPC_PP_EXPAND4(...) OCCAMS_RPC_PP_EXPAND3(OCCAMS_RPC_PP_EXPAND3(OCCAMS_RPC_PP_EXPAND3(__VA_ARGS__)))
#define OCCAMS_RPC_PP_EXPAND3(...) OCCAMS_RPC_PP_EXPAND2(OCCAMS_RPC_PP_EXPAND2(OCCAMS_RPC_PP_EXPAND2(__VA_ARGS__)))
#define OCCAMS_RPC_PP_EXPAND2(...) OCCAMS_RPC_PP_EXPAND1(OCCAMS_RPC_PP_EXPAND1(OCCAMS_RPC_PP_EXPAND1(__VA_ARGS__)))
#define OCCAMS_RPC_PP_EXPAND1(...) __VA_ARGS__
#define OCCAMS_RPC_PP_PARENS ()
// Calls m(data, x) for each x (up to 81 of them).
#define OCCAMS_RPC_PP_FOR_EACH(m, data, ...) \
  __VA_OPT__(OCCAMS_RPC_PP_EXPAND(OCCAMS_RPC_PP_FOR_EACH_STEP(m, data, __VA_ARGS__)))
#define OCCAMS_RPC_PP_FOR_EACH_STEP(m, data, x, ...) \
  m(data, x) __VA_OPT__(OCCAMS_RPC_PP_FOR_EACH_AGAIN OCCAMS_RPC_PP_PARENS(m, data, __VA_ARGS__))
#define OCCAMS_RPC_PP_FOR_EACH_AGAIN() OCCAMS_RPC_PP_FOR_EACH_STEP
#define OCCAMS_RPC_PP_UNPAREN(...) __VA_ARGS__
#define OCCAMS_RPC_PP_CALL(m, ...) m(__VA_ARGS__)

// --- one method's pieces ------------------------------------------------------------------------
#define OCCAMS_RPC_DETAIL_METHOD(service, entry) OCCAMS_RPC_PP_CALL(OCCAMS_RPC_DETAIL_METHOD_, service, OCCAMS_RPC_PP_UNPAREN entry)
#define OCCAMS_RPC_DETAIL_METHOD_(service, method_id, ...)                                     \
  struct method_id : ::occams_rpc::api::method<__VA_ARGS__> {                                  \
    static constexpr std::string_view method_name = #method_id;                                \
    static constexpr std::string_view action = #service "." #method_id;                        \
    /* Calls the implementation's member function of the same name. */                        \
    template <class Impl, class... A>                                                          \
    static auto invoke(Impl& impl, A&&... a) -> decltype(impl.method_id(std::forward<A>(a)...)) { \
      return impl.method_id(std::forward<A>(a)...);                                            \
    }                                                                                          \
  };

#define OCCAMS_RPC_DETAIL_LIST_ITEM(service, entry) OCCAMS_RPC_PP_CALL(OCCAMS_RPC_DETAIL_LIST_ITEM_, service, OCCAMS_RPC_PP_UNPAREN entry)
#define OCCAMS_RPC_DETAIL_LIST_ITEM_(service, method_id, ...) , service::method_id

#define OCCAMS_RPC_DETAIL_STUB_METHOD(service, entry) OCCAMS_RPC_PP_CALL(OCCAMS_RPC_DETAIL_STUB_METHOD_, service, OCCAMS_RPC_PP_UNPAREN entry)
#define OCCAMS_RPC_DETAIL_STUB_METHOD_(service, method_id, ...)                                \
  template <class... A>                                                                        \
  auto method_id(A&&... a) const {                                                             \
    return this->template call<service::method_id>(std::forward<A>(a)...);                    \
  }

/// Defines `struct service` from its methods: see the top of this header.
#define OCCAMS_RPC_SERVICE(service, ...)                                                       \
  struct service {                                                                             \
    static constexpr std::string_view service_name = #service;                                 \
    OCCAMS_RPC_PP_FOR_EACH(OCCAMS_RPC_DETAIL_METHOD, service, __VA_ARGS__)                     \
    using methods = typename ::occams_rpc::api::detail::drop_void<::occams_rpc::api::method_list< \
        void OCCAMS_RPC_PP_FOR_EACH(OCCAMS_RPC_DETAIL_LIST_ITEM, service, __VA_ARGS__)>>::type; \
    template <class Channel, class Codec = ::occams_rpc::msgpack_codec>                        \
    class stub : public ::occams_rpc::api::stub_base<Channel, Codec> {                         \
     public:                                                                                   \
      using ::occams_rpc::api::stub_base<Channel, Codec>::stub_base;                           \
      OCCAMS_RPC_PP_FOR_EACH(OCCAMS_RPC_DETAIL_STUB_METHOD, service, __VA_ARGS__)              \
    };                                                                                         \
  }
