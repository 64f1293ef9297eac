// Metrics end to end: a server and a client feeding metrics::registry, the Beast exporter's
// GET /metrics (checked by promtool), and the exporter against hostile HTTP peers.
#include "test_support.hpp"

#include "calculator_services.hpp"
#include "unit/support/promtool.hpp"

#include <occams_rpc/metrics/exporter.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <mutex>
#include <string>
#include <vector>

using namespace occams_rpc;
using namespace ::test;
using tcp = asio::ip::tcp;

namespace {

tcp::endpoint endpoint_of(const address& a) { return {asio::ip::make_address(a.host), a.port}; }

/// Sends `request` on a fresh connection and reads until the exporter closes it.
asio::awaitable<std::string> http_exchange(tcp::endpoint ep, std::string request) {
  tcp::socket s(co_await asio::this_coro::executor);
  co_await s.async_connect(ep, asio::deferred);
  co_await asio::async_write(s, asio::buffer(request), asio::deferred);
  std::string out;
  // Until EOF: the error that ends the read is the exporter's close, expected.
  co_await asio::async_read(s, asio::dynamic_buffer(out), tok);
  co_return out;
}

asio::awaitable<std::string> scrape(tcp::endpoint ep) {
  co_return co_await http_exchange(ep, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
}

std::string body_of(const std::string& response) {
  auto p = response.find("\r\n\r\n");
  return p == std::string::npos ? std::string() : response.substr(p + 4);
}
bool has_line(const std::string& body, const std::string& line) {
  return ("\n" + body).find("\n" + line + "\n") != std::string::npos;
}

/// Serves CalService and EchoService; holds numeric action 2 unanswered (for a timeout).
struct cal_dispatch {
  api::router* routes;
  std::vector<server_request>* held;
  void operator()(server_request req) {
    if (req.has_string_action()) (*routes)(std::move(req));
    else held->push_back(std::move(req));
  }
};

}  // namespace

TEST_CASE("GET /metrics shows the calls as they are made, by method and outcome, and promtool accepts it",
          "[metrics]") {
  asio::io_context io;
  api::router routes;
  routes.add<CalService>(calculator{}).add<EchoService>(echo{});
  metrics::registry on_server, on_client;
  on_server.declare_methods(routes);  // other names: method="unknown"
  std::vector<server_request> held;
  server srv(io.get_executor(), cal_dispatch{&routes, &held}, {.observer = &on_server});
  auto where = srv.listen("127.0.0.1:0");
  metrics::exporter http(io.get_executor(), on_server);
  auto ep = endpoint_of(http.listen(parse_address("127.0.0.1:0")));
  metrics::exporter client_http(io.get_executor(), on_client);
  auto client_ep = endpoint_of(client_http.listen(parse_address("127.0.0.1:0")));

  std::string before, after, later, client_side;
  run(io, [&]() -> asio::awaitable<void> {
    before = co_await scrape(ep);
    auto stream = co_await connect(where, {.call_timeout = 50ms, .timeout_tick = 10ms, .observer = &on_client});
    api::stub<CalService> cal(stream);
    auto sum = co_await cal.add(1, 2);
    CHECK(sum.value() == 3);
    auto q = co_await cal.div(1, 0);  // the method's own error
    CHECK(q.has_error());
    std::string_view mul = "CalService.mul";  // a framework error: rpc_method_notfound
    auto [ec, r] = co_await stream.async_call(mul, std::span<const char>("\x92\x01\x02", 3), {}, {}, tok);
    CHECK(ec == errc::method_not_found);
    auto [ec2, r2] = co_await stream.async_call(2, {}, {}, {}, tok);  // held: times out
    CHECK(ec2 == errc::timeout);
    after = co_await scrape(ep);
    auto sum2 = co_await cal.add(2, 3);
    CHECK(sum2.value() == 5);
    later = co_await scrape(ep);
    client_side = co_await scrape(client_ep);
    held.clear();
  });

  INFO(after);
  CHECK(after.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(after.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
  std::string b0 = body_of(before), b1 = body_of(after), b2 = body_of(later), bc = body_of(client_side);
  CHECK(b0.find("occams_rpc_calls_started_total{") == std::string::npos);  // nothing yet
  CHECK(has_line(b1, R"(occams_rpc_calls_completed_total{side="server",method="CalService.add",outcome="ok"} 1)"));
  CHECK(has_line(b1, R"(occams_rpc_calls_completed_total{side="server",method="CalService.div",outcome="error"} 1)"));
  CHECK(has_line(b1, R"(occams_rpc_calls_completed_total{side="server",method="unknown",outcome="method_not_found"} 1)"));
  CHECK(has_line(b1, R"(occams_rpc_calls_started_total{side="server",action="2"} 1)"));
  CHECK(has_line(b1, R"(occams_rpc_calls_in_flight{side="server"} 1)"));  // action 2, held
  CHECK(has_line(b1, "occams_rpc_server_connections_opened_total 1"));
  CHECK(has_line(b1, "occams_rpc_server_connections_open 1"));
  CHECK(has_line(b2, R"(occams_rpc_calls_completed_total{side="server",method="CalService.add",outcome="ok"} 2)"));
  CHECK(has_line(b2, R"(occams_rpc_call_duration_seconds_count{side="server",method="CalService.add"} 2)"));
  INFO(client_side);
  CHECK(has_line(bc, R"(occams_rpc_calls_completed_total{side="client",action="2",outcome="timeout"} 1)"));
  CHECK(has_line(bc, R"(occams_rpc_calls_completed_total{side="client",method="CalService.mul",outcome="method_not_found"} 1)"));
  CHECK(has_line(bc, R"(occams_rpc_calls_completed_total{side="client",method="CalService.add",outcome="ok"} 2)"));
  for (const auto* b : {&b0, &b1, &b2, &bc}) {
    auto check = occams_rpc::test::promtool_check(*b);
    INFO(check.output);
    CHECK(check.status == 0);
  }
}

TEST_CASE("the exporter answers 404 and 405, closes hostile HTTP peers, and still serves a scrape meanwhile",
          "[metrics]") {
  asio::io_context io;
  metrics::registry reg;
  std::mutex m;
  std::vector<std::string> logged;
  logger log(log_level::debug, [&](log_level, std::string_view s) {
    std::lock_guard lock(m);
    logged.emplace_back(s);
  });
  // `http` closes silent peers after 300 ms; `capped` holds them (60 s) to test the cap.
  metrics::exporter http(io.get_executor(), reg,
                         {.timeout = std::chrono::milliseconds{300}, .max_header_bytes = 1024, .log = log});
  auto ep = endpoint_of(http.listen(parse_address("127.0.0.1:0")));
  metrics::exporter capped(io.get_executor(), reg, {.max_connections = 3, .timeout = std::chrono::seconds{60}, .log = log});
  auto capped_ep = endpoint_of(capped.listen(parse_address("127.0.0.1:0")));

  std::string not_found, not_allowed, too_large, with_body, normal, refused, silent_got, after_silent;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    not_found = co_await http_exchange(ep, "GET /other HTTP/1.1\r\nHost: t\r\n\r\n");
    not_allowed = co_await http_exchange(ep, "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    too_large = co_await http_exchange(ep, "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
    with_body = co_await http_exchange(ep, "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");

    // A peer that never finishes its request is closed by the timeout, unanswered.
    tcp::socket slow(ex);
    co_await slow.async_connect(ep, asio::deferred);
    co_await asio::async_write(slow, asio::buffer(std::string_view("GET /metrics HTTP/1.1\r\n")), asio::deferred);
    auto [sec, sn] = co_await asio::async_read(slow, asio::dynamic_buffer(silent_got), tok);
    CHECK(sec == asio::error::eof);

    // Two silent peers hold two of `capped`'s three connections; a scrape is served meanwhile.
    std::vector<tcp::socket> silent;
    for (int i = 0; i < 2; ++i) {
      silent.emplace_back(ex);
      co_await silent.back().async_connect(capped_ep, asio::deferred);
      co_await asio::async_write(silent.back(), asio::buffer(std::string_view("GET /metrics HTTP/1.1\r\n")),
                                 asio::deferred);
    }
    co_await wait_until([&] { return capped.connection_count() == 2; });
    normal = co_await scrape(capped_ep);
    // With three open, a fourth is closed at once, unanswered.
    silent.emplace_back(ex);
    co_await silent.back().async_connect(capped_ep, asio::deferred);
    co_await wait_until([&] { return capped.connection_count() == 3; });
    refused = co_await http_exchange(capped_ep, "GET /metrics HTTP/1.1\r\n\r\n");
    for (auto& s : silent) s.close();  // the exporter sees them go and frees their places
    co_await wait_until([&] { return capped.connection_count() == 0; });
    after_silent = co_await scrape(capped_ep);
  });

  CHECK(not_found.rfind("HTTP/1.1 404", 0) == 0);
  CHECK(not_allowed.rfind("HTTP/1.1 405", 0) == 0);
  CHECK(not_allowed.find("Allow: GET\r\n") != std::string::npos);
  CHECK(too_large.rfind("HTTP/1.1 431", 0) == 0);
  CHECK(with_body.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(normal.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(refused.empty());
  CHECK(silent_got.empty());
  CHECK(after_silent.rfind("HTTP/1.1 200", 0) == 0);
  std::lock_guard lock(m);
  auto logged_with = [&](std::string_view what) {
    return std::any_of(logged.begin(), logged.end(), [&](auto& l) { return l.find(what) != std::string::npos; });
  };
  CHECK(logged_with("answered 431"));
  CHECK(logged_with("no whole request within the timeout"));
  CHECK(logged_with("max_connections"));
}

TEST_CASE("a server's metrics count its connections as they open and close", "[metrics]") {
  // connections opened/closed through a real server: opened on start, closed on close.
  asio::io_context io;
  metrics::registry reg;
  server srv(io.get_executor(), [](server_request req) { req.respond(req.msg(), req.blob()); }, {.observer = &reg});
  auto where = srv.listen("127.0.0.1:0");
  run(io, [&]() -> asio::awaitable<void> {
    {
      auto s = co_await connect(where, {});
      auto [ec, r] = co_await s.async_call(1, text_bytes("x"), {}, {}, tok);
      CHECK_FALSE(ec);
      s.close();
    }
    co_await wait_until([&] { return srv.connection_count() == 0; });
  });
  std::string text = reg.scrape();
  INFO(text);
  CHECK(has_line(text, "occams_rpc_server_connections_opened_total 1"));
  CHECK(has_line(text, "occams_rpc_server_connections_closed_total 1"));
  CHECK(has_line(text, "occams_rpc_server_connections_open 0"));
}
