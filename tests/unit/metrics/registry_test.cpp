// metrics::registry fed directly with call_info (no sockets): the figures, their exposition
// (checked by promtool), the cardinality bounds, and sums over several threads.
#include "unit/support/promtool.hpp"

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/metrics/observer_pair.hpp>
#include <occams_rpc/metrics/registry.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace occams_rpc;
using namespace std::chrono_literals;

namespace {

call_info named(std::string_view action, call_side side = call_side::server) {
  call_info c;
  c.side = side;
  c.action = action;
  return c;
}
call_info numbered(std::uint32_t n, call_side side = call_side::server) {
  call_info c;
  c.side = side;
  c.numeric_action = n;
  return c;
}
void call(call_observer& o, call_info c, std::error_code outcome = {}, std::chrono::nanoseconds d = 30us,
          std::size_t req = 40, std::size_t resp = 25) {
  o.on_call_start(c);
  c.duration = d;
  c.outcome = outcome;
  c.request_bytes = req;
  c.response_bytes = resp;
  o.on_call_end(c);
}
bool has_line(const std::string& text, const std::string& line) { return text.find("\n" + line + "\n") != std::string::npos; }
std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

struct captured_log {
  std::mutex m;
  std::vector<std::string> lines;
  logger make() {
    return {log_level::debug, [this](log_level, std::string_view s) {
              std::lock_guard lock(m);
              lines.emplace_back(s);
            }};
  }
};

}  // namespace

TEST_CASE("a registry counts calls by side, method and outcome, and promtool accepts its exposition", "[metrics]") {
  metrics::registry reg;
  call(reg, named("CalService.add"));
  call(reg, named("CalService.add"), {}, 2ms);
  call(reg, named("CalService.div"), make_error_code(errc::remote_error));
  call(reg, named("EchoService.io_error"), {5, remote_category()});
  call(reg, named("CalService.mul"), make_error_code(errc::method_not_found));
  call(reg, numbered(7, call_side::client), make_error_code(errc::timeout), 50ms, 32, 0);
  reg.on_call_start(numbered(7, call_side::client));  // still in flight
  reg.on_event(call_side::server, observer_event::connection_opened);
  reg.on_event(call_side::server, observer_event::connection_opened);
  reg.on_event(call_side::server, observer_event::connection_closed);
  reg.on_event(call_side::client, observer_event::window_wait);

  std::string text = "\n" + reg.scrape();
  INFO(text);
  CHECK(has_line(text, R"(occams_rpc_calls_started_total{side="server",method="CalService.add"} 2)"));
  CHECK(has_line(text, R"(occams_rpc_calls_completed_total{side="server",method="CalService.add",outcome="ok"} 2)"));
  CHECK(has_line(text, R"(occams_rpc_calls_completed_total{side="server",method="CalService.div",outcome="error"} 1)"));
  CHECK(has_line(text, R"(occams_rpc_calls_completed_total{side="server",method="EchoService.io_error",outcome="error"} 1)"));
  CHECK(has_line(text, R"(occams_rpc_calls_completed_total{side="server",method="CalService.mul",outcome="method_not_found"} 1)"));
  CHECK(has_line(text, R"(occams_rpc_calls_started_total{side="client",action="7"} 2)"));
  CHECK(has_line(text, R"(occams_rpc_calls_completed_total{side="client",action="7",outcome="timeout"} 1)"));
  CHECK(has_line(text, R"(occams_rpc_request_bytes_total{side="server",method="CalService.add"} 80)"));
  CHECK(has_line(text, R"(occams_rpc_response_bytes_total{side="server",method="CalService.add"} 50)"));
  // 30 us falls in le=5e-05, 2 ms in le=0.0025; the buckets are cumulative.
  CHECK(has_line(text, R"(occams_rpc_call_duration_seconds_bucket{side="server",method="CalService.add",le="2.5e-05"} 0)"));
  CHECK(has_line(text, R"(occams_rpc_call_duration_seconds_bucket{side="server",method="CalService.add",le="5e-05"} 1)"));
  CHECK(has_line(text, R"(occams_rpc_call_duration_seconds_bucket{side="server",method="CalService.add",le="0.0025"} 2)"));
  CHECK(has_line(text, R"(occams_rpc_call_duration_seconds_bucket{side="server",method="CalService.add",le="+Inf"} 2)"));
  CHECK(has_line(text, R"(occams_rpc_call_duration_seconds_sum{side="server",method="CalService.add"} 0.00203)"));
  CHECK(has_line(text, R"(occams_rpc_call_duration_seconds_count{side="server",method="CalService.add"} 2)"));
  CHECK(has_line(text, R"(occams_rpc_calls_in_flight{side="server"} 0)"));
  CHECK(has_line(text, R"(occams_rpc_calls_in_flight{side="client"} 1)"));
  CHECK(has_line(text, "occams_rpc_server_connections_opened_total 2"));
  CHECK(has_line(text, "occams_rpc_server_connections_open 1"));
  CHECK(has_line(text, "occams_rpc_client_window_waits_total 1"));
  CHECK(has_line(text, "# TYPE occams_rpc_call_duration_seconds histogram"));

  auto check = test::promtool_check(text.substr(1));
  INFO(check.output);
  CHECK(check.status == 0);
}

TEST_CASE("a flood of distinct numeric actions and names gets series only up to the bounds, logged once", "[metrics]") {
  captured_log log;
  metrics::registry reg({.max_methods = 4, .max_numeric_actions = 3, .max_name_length = 128, .log = log.make()});
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) names.push_back("Random.m" + std::to_string(i));
  for (int i = 0; i < 1000; ++i) {
    call(reg, numbered(static_cast<std::uint32_t>(100000 + i)));
    call(reg, named(names[i]));
  }
  call(reg, named(std::string(200, 'x')));  // too long for a series of its own
  std::string text = "\n" + reg.scrape();
  INFO(text);
  CHECK(count_of(text, "\noccams_rpc_calls_started_total{") == 3 + 4 + 2);  // own series + the two "other"
  CHECK(has_line(text, R"(occams_rpc_calls_started_total{side="server",action="other"} 997)"));
  CHECK(has_line(text, R"(occams_rpc_calls_started_total{side="server",method="other"} 997)"));
  CHECK(has_line(text, R"(occams_rpc_calls_started_total{side="server",action="100002"} 1)"));
  CHECK_FALSE(has_line(text, R"(occams_rpc_calls_started_total{side="server",action="100003"} 1)"));
  std::lock_guard lock(log.m);
  REQUIRE(log.lines.size() == 2);
  CHECK(log.lines[0].find("action=\"other\"") != std::string::npos);
  CHECK(log.lines[1].find("method=\"other\"") != std::string::npos);
  CHECK(test::promtool_check(text.substr(1)).status == 0);
}

TEST_CASE("after declare_methods only the router's methods have series; other names count as unknown", "[metrics]") {
  struct method {
    std::string name;
  };
  struct service {
    std::string name;
    std::vector<method> methods;
  };
  struct fake_listing {  // what api::router::services() gives, in shape
    std::vector<service> s{{"CalService", {{"add"}, {"div"}}}};
    const std::vector<service>& services() const { return s; }
  };
  metrics::registry reg;
  reg.declare_methods(fake_listing{});
  call(reg, named("CalService.add"));
  for (int i = 0; i < 100; ++i) call(reg, named("Nope.m" + std::to_string(i)), make_error_code(errc::method_not_found));
  std::string text = "\n" + reg.scrape();
  INFO(text);
  CHECK(has_line(text, R"(occams_rpc_calls_started_total{side="server",method="CalService.add"} 1)"));
  CHECK(has_line(text, R"(occams_rpc_calls_completed_total{side="server",method="unknown",outcome="method_not_found"} 100)"));
  CHECK(text.find("Nope.") == std::string::npos);
  CHECK_THROWS_AS(metrics::registry({.max_methods = 1}).declare_methods(fake_listing{}), std::length_error);
}

TEST_CASE("label values are escaped so that a hostile name cannot break the exposition", "[metrics]") {
  metrics::registry reg;
  call(reg, named("Evil.\"m\\\n\xff"));
  std::string text = "\n" + reg.scrape();
  INFO(text);
  CHECK(has_line(text, R"(occams_rpc_calls_started_total{side="server",method="Evil.\"m\\??"} 1)"));
  auto check = test::promtool_check(text.substr(1));
  INFO(check.output);
  CHECK(check.status == 0);
}

TEST_CASE("calls reported on several threads are summed, scraped while they run", "[metrics]") {
  metrics::registry reg;
  constexpr int threads = 4, calls = 2000;
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < calls; ++i) call(reg, numbered(static_cast<std::uint32_t>(i % 3)), {}, 1us, 1, 1);
      reg.on_event(t % 2 ? call_side::server : call_side::client,
                   t % 2 ? observer_event::budget_wait : observer_event::reconnect);
      done.fetch_add(1);
    });
  while (done.load() < threads) (void)reg.scrape();  // concurrent reads: TSan checks them
  for (auto& t : ts) t.join();
  std::string text = "\n" + reg.scrape();
  INFO(text);
  std::uint64_t total = 0;
  for (int a = 0; a < 3; ++a) {
    auto key = "occams_rpc_calls_completed_total{side=\"server\",action=\"" + std::to_string(a) + "\",outcome=\"ok\"} ";
    auto p = text.find(key);
    REQUIRE(p != std::string::npos);
    total += std::stoull(text.substr(p + key.size()));
  }
  CHECK(total == threads * calls);
  CHECK(has_line(text, "occams_rpc_server_budget_waits_total 2"));
  CHECK(has_line(text, "occams_rpc_client_reconnects_total 2"));
}

TEST_CASE("an observer_pair tells both observers, and a registry behind it counts", "[metrics]") {
  struct counting : call_observer {
    int starts = 0, ends = 0, events = 0;
    void on_call_start(const call_info&) noexcept override { ++starts; }
    void on_call_end(const call_info&) noexcept override { ++ends; }
    void on_event(call_side, observer_event) noexcept override { ++events; }
  } mine;
  metrics::registry reg;
  observer_pair both(reg, mine);
  call(both, named("A.b"));
  both.on_event(call_side::server, observer_event::connection_rejected);
  CHECK(mine.starts == 1);
  CHECK(mine.ends == 1);
  CHECK(mine.events == 1);
  std::string text = "\n" + reg.scrape();
  CHECK(has_line(text, R"(occams_rpc_calls_completed_total{side="server",method="A.b",outcome="ok"} 1)"));
  CHECK(has_line(text, "occams_rpc_server_connections_rejected_total 1"));
}

TEST_CASE("a registry_config out of range is refused", "[metrics]") {
  CHECK(metrics::registry_config{}.problem() == std::nullopt);
  CHECK(metrics::registry_config{.max_methods = 0}.problem().has_value());
  CHECK_THROWS_AS(metrics::registry({.max_numeric_actions = 0}), std::invalid_argument);
}
