// The reflection service: a router that enables it answers rpc_reflection.list with its services.
#include "test_support.hpp"

#include "calculator_services.hpp"

#include <stdexcept>
#include <vector>

using namespace occams_rpc;
using namespace test;

namespace {

OCCAMS_RPC_SERVICE(rpc_mine, (x, void()));
struct mine {
  void x() {}
};

OCCAMS_RPC_SERVICE(LateService, (ping_me, std::string(std::string)));
struct late {
  std::string ping_me(std::string s) { return s; }
};

/// Calls rpc_reflection.list on a server with `routes`.
api::result<std::vector<api::service_info>> list_of(api::router routes) {
  asio::io_context io;
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(unix_transport()));
  api::result<std::vector<api::service_info>> out{errc::closed};
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where);
    api::stub<api::rpc_reflection> reflect(stream);
    out = co_await reflect.list();
  });
  return out;
}

}  // namespace

TEST_CASE("a router with reflection lists its services, methods, signatures and error types", "[api]") {
  api::router routes;
  routes.add<CalService>(calculator{}).add<EchoService>(echo{}).enable_reflection().add<LateService>(late{});
  auto r = list_of(routes);
  REQUIRE(r.has_value());
  std::vector<api::service_info> want = {
      {"CalService", {{"inc", "i64(i64)", ""}, {"add", "i64(i64, i64)", ""}, {"div", "i64(i64, i64)", "string"}}},
      {"EchoService", {{"repeat", "string(string)", ""}, {"io_error", "void(string)", "std::errc"}}},
      {"rpc_reflection", {{"list", "[occams_rpc::api::service_info]()", ""}}},
      {"LateService", {{"ping_me", "string(string)", ""}}},
  };
  CHECK(*r == want);
  CHECK(routes.services() == *r);
}

TEST_CASE("a router without reflection answers rpc_reflection.list with rpc_service_notfound", "[api]") {
  api::router routes;
  routes.add<CalService>(calculator{});
  auto r = list_of(routes);
  REQUIRE(r.has_framework_error());
  CHECK(r.framework_error() == errc::service_not_found);
}

TEST_CASE("a router refuses user services named with the framework's rpc_ prefix, and reflection twice", "[api]") {
  api::router routes;
  CHECK_THROWS_AS(routes.add<rpc_mine>(mine{}), std::invalid_argument);
  routes.enable_reflection();
  CHECK_THROWS_AS(routes.enable_reflection(), std::invalid_argument);
  CHECK(routes.services().size() == 1);
}
