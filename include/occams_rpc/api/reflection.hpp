// Reflection: what a router serves, as a client can ask for it (like gRPC server reflection).
//
//   api::router routes;
//   routes.add<CalService>(calculator{}).enable_reflection();   // the one line
//
//   api::stub<api::rpc_reflection> reflect(stream);
//   auto r = co_await reflect.list();   // api::result<std::vector<api::service_info>>
//   // {name "CalService", methods {{"add", "i64(i64, i64)", ""}, {"div", "i64(i64, i64)", "string"}...}}
//
// The service's name, `rpc_reflection`, uses the `rpc_` prefix the protocol reserves for the
// framework: a router refuses user services whose names start with it. Its one method, `list`,
// takes no argument (msgpack nil) and answers an array of service maps (below), in the order
// the services were added, `rpc_reflection` included. Signatures and type names come from the
// C++ types (api/type_name.hpp), so they need no strings written by hand.
#pragma once

#include <occams_rpc/api/method.hpp>
#include <occams_rpc/api/service.hpp>
#include <occams_rpc/api/type_name.hpp>
#include <occams_rpc/codec/msgpack_codec.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace occams_rpc::api {

/// One method: its name, its signature (`i64(i64, i64)`) and its error type (empty for none).
struct method_info {
  std::string name;
  std::string signature;
  std::string error;
  OCCAMS_RPC_FIELDS(name, signature, error)
  bool operator==(const method_info&) const = default;
};

/// One service: its name and its methods, in declaration order.
struct service_info {
  std::string name;
  std::vector<method_info> methods;
  OCCAMS_RPC_FIELDS(name, methods)
  bool operator==(const service_info&) const = default;
};

/// The prefix of the framework's own service names.
inline constexpr std::string_view reserved_service_prefix = "rpc_";

OCCAMS_RPC_SERVICE(rpc_reflection, (list, std::vector<service_info>()));

namespace detail {
template <class... M>
std::vector<method_info> describe_methods(method_list<M...>) {
  return {method_info{std::string(M::method_name), signature_name<M>(), type_name<typename M::error_type>::get()}...};
}
}  // namespace detail

/// The listing entry of a service described with OCCAMS_RPC_SERVICE.
template <class Service>
service_info describe_service() {
  return {std::string(Service::service_name), detail::describe_methods(typename Service::methods{})};
}

/// One line per method, as `occams list` prints it: `add: i64(i64, i64)`, and for a method
/// with an error type `div: i64(i64, i64), error: string`.
inline std::string to_string(const method_info& m) {
  std::string out = m.name + ": " + m.signature;
  if (!m.error.empty()) out += ", error: " + m.error;
  return out;
}

}  // namespace occams_rpc::api
