// The call observer (metrics/call_observer.hpp): told of each call's start and end, with its
// action, duration, outcome and bytes, on the server and on the client.
#include "test_support.hpp"

#include "calculator_services.hpp"

#include <occams_rpc/metrics/call_observer.hpp>

#include <mutex>
#include <string>
#include <vector>

using namespace occams_rpc;
using namespace test;

namespace {

struct recorded {
  bool end = false;
  call_side side{};
  std::string action;
  std::uint32_t numeric_action = 0;
  std::uint64_t seq = 0;
  std::error_code outcome;
  std::size_t request_bytes = 0, response_bytes = 0;
  std::chrono::nanoseconds duration{-1};
};

/// Keeps every event (its views copied).
struct recorder : call_observer {
  std::mutex m;
  std::vector<recorded> events;
  void note(const call_info& c, bool end) {
    std::lock_guard lock(m);
    events.push_back({end, c.side, std::string(c.action), c.numeric_action, c.seq, c.outcome, c.request_bytes,
                      c.response_bytes, c.duration});
  }
  void on_call_start(const call_info& c) noexcept override { note(c, false); }
  void on_call_end(const call_info& c) noexcept override { note(c, true); }
  std::vector<recorded> ends() {
    std::vector<recorded> out;
    for (auto& e : events)
      if (e.end) out.push_back(e);
    return out;
  }
};

}  // namespace

TEST_CASE("an observer sees each call's action, outcome and frame bytes on the server and the client", "[stream]") {
  bool use_unix = unix_transport();
  auto on_server = std::make_shared<recorder>();
  auto on_client = std::make_shared<recorder>();
  asio::io_context io;
  api::router routes;
  routes.add<CalService>(calculator{}).add<EchoService>(echo{});
  server_config scfg;
  scfg.observer = on_server.get();
  server srv(io.get_executor(), std::move(routes), scfg);
  auto where = srv.listen(listen_address(use_unix));
  client_config ccfg;
  ccfg.observer = on_client.get();
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where, ccfg);
    api::stub<CalService> cal(stream);
    api::stub<EchoService> echo(stream);
    auto sum = co_await cal.add(1, 2);          // inline answer: OK
    CHECK(sum.value() == 3);
    auto q = co_await cal.div(1, 0);            // the method's string error
    CHECK(q.has_error());
    auto r = co_await echo.repeat("hello");     // a coroutine's answer, through the slot
    CHECK(r.value() == "hello");
    auto e = co_await echo.io_error("x");       // the method's error code
    CHECK(e.has_error());
    std::string_view mul = "CalService.mul";    // a framework error
    auto [ec, resp] = co_await stream.async_call(mul, std::span<const char>("\x92\x01\x02", 3), {}, {},
                                                 asio::as_tuple(asio::deferred));
    CHECK(ec == errc::method_not_found);
    co_await stream.async_ping(asio::as_tuple(asio::deferred));  // pings are not calls
  });

  struct want {
    std::string action;
    std::error_code outcome;
    std::size_t request_bytes, response_bytes;
  };
  std::vector<want> wanted = {
      {"CalService.add", {}, 32 + 14 + 3, 20 + 1},                                 // PROTOCOL.md's golden frames
      {"CalService.div", errc::remote_error, 32 + 14 + 3, 20 + 14},                // "divide by zero"
      {"EchoService.repeat", {}, 32 + 18 + 6, 20 + 6},
      {"EchoService.io_error", {5, remote_category()}, 32 + 20 + 2, 20},
      {"CalService.mul", errc::method_not_found, 32 + 14 + 3, 20 + 19},            // "rpc_method_notfound"
  };
  for (auto* rec : {on_server.get(), on_client.get()}) {
    bool server_side = rec == on_server.get();
    INFO((server_side ? "server" : "client"));
    std::lock_guard lock(rec->m);
    auto ends = rec->ends();
    REQUIRE(ends.size() == wanted.size());
    REQUIRE(rec->events.size() == 2 * wanted.size());
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      INFO(wanted[i].action);
      CHECK(ends[i].side == (server_side ? call_side::server : call_side::client));
      CHECK(ends[i].action == wanted[i].action);
      CHECK(ends[i].outcome == wanted[i].outcome);
      CHECK(ends[i].request_bytes == wanted[i].request_bytes);
      // Both sides count the frame, a framework error the server sent included.
      CHECK(ends[i].response_bytes == wanted[i].response_bytes);
      CHECK(ends[i].duration.count() >= 0);
    }
    // Each call starts before it ends, with the same seq.
    for (std::size_t i = 0; i < rec->events.size(); i += 2) {
      CHECK_FALSE(rec->events[i].end);
      CHECK(rec->events[i + 1].end);
      CHECK(rec->events[i].seq == rec->events[i + 1].seq);
      CHECK(rec->events[i].action == rec->events[i + 1].action);
    }
  }
}

TEST_CASE("an observer sees numeric actions, and a client call that times out ends with rpc_timeout", "[stream]") {
  auto on_server = std::make_shared<recorder>();
  auto on_client = std::make_shared<recorder>();
  asio::io_context io;
  std::vector<server_request> held;  // action 2 is never answered while the test runs
  auto dispatch = [&](server_request req) {
    if (req.numeric_action() == 2) held.push_back(std::move(req));
    else req.respond(req.msg(), req.blob());
  };
  server_config scfg;
  scfg.observer = on_server.get();
  server srv(io.get_executor(), dispatch, scfg);
  auto where = srv.listen(listen_address(false));
  client_config ccfg;
  ccfg.observer = on_client.get();
  ccfg.call_timeout = 50ms;
  ccfg.timeout_tick = 10ms;
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where, ccfg);
    std::string blob(100, 'b');
    auto [ec1, r1] = co_await stream.async_call(1, std::span<const char>("ab", 2), blob, {}, asio::as_tuple(asio::deferred));
    CHECK_FALSE(ec1);
    auto [ec2, r2] = co_await stream.async_call(2, {}, {}, {}, asio::as_tuple(asio::deferred));
    CHECK(ec2 == errc::timeout);
    held.clear();  // answered rpc_internal_err now; the client dropped the call
  });
  auto client_ends = on_client->ends();
  REQUIRE(client_ends.size() == 2);
  CHECK(client_ends[0].numeric_action == 1);
  CHECK(client_ends[0].action.empty());
  CHECK(client_ends[0].request_bytes == 32 + 2 + 100);
  CHECK(client_ends[0].response_bytes == 20 + 2 + 100);
  CHECK(client_ends[1].numeric_action == 2);
  CHECK(client_ends[1].outcome == errc::timeout);
  CHECK(client_ends[1].response_bytes == 0);
  auto server_ends = on_server->ends();
  REQUIRE(server_ends.size() >= 1);
  CHECK(server_ends[0].numeric_action == 1);
  CHECK(server_ends[0].response_bytes == 20 + 2 + 100);
}
