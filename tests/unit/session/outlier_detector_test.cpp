// Outlier ejection with invented times: no socket, no sleep.
#include <occams_rpc/session/outlier_detector.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

using namespace occams_rpc;
using namespace occams_rpc::session;
using namespace std::chrono_literals;

namespace {

using clock_t_ = outlier_detector::clock;
const clock_t_::time_point t0 = clock_t_::time_point{} + 1000h;

struct events {
  std::vector<std::pair<std::size_t, outlier_detector::event>> seen;
  auto tell() {
    return [this](std::size_t i, outlier_detector::event e, clock_t_::time_point) { seen.push_back({i, e}); };
  }
};

std::vector<failover_candidate> addresses(std::size_t n) {
  std::vector<failover_candidate> c;
  for (std::size_t i = 0; i < n; ++i) c.push_back({i + 1, true});
  return c;
}

outlier_config consecutive(std::size_t n) {
  outlier_config o;
  o.consecutive_failures = n;
  o.base_ejection_time = 10s;
  o.max_ejection_time = 25s;
  o.max_ejection_percent = 50;
  return o;
}

}  // namespace

TEST_CASE("consecutive failures eject an address for the base time, then it returns", "[session][outlier]") {
  outlier_detector d(consecutive(3));
  auto c = addresses(2);
  events ev;
  d.on_result(c, 0, true, t0, ev.tell());
  d.on_result(c, 0, true, t0, ev.tell());
  CHECK_FALSE(c[0].ejected);
  d.on_result(c, 0, true, t0, ev.tell());
  CHECK(c[0].ejected);
  REQUIRE(ev.seen.size() == 1);
  CHECK(ev.seen[0].second == outlier_detector::event::ejected);
  d.on_time(c, t0 + 9s, ev.tell());
  CHECK(c[0].ejected);
  d.on_time(c, t0 + 10s, ev.tell());
  CHECK_FALSE(c[0].ejected);
  CHECK(ev.seen.back().second == outlier_detector::event::returned);
}

TEST_CASE("a success breaks a run of failures", "[session][outlier]") {
  outlier_detector d(consecutive(3));
  auto c = addresses(2);
  events ev;
  for (int i = 0; i < 10; ++i) {
    d.on_result(c, 0, true, t0, ev.tell());
    d.on_result(c, 0, true, t0, ev.tell());
    d.on_result(c, 0, false, t0, ev.tell());
  }
  CHECK_FALSE(c[0].ejected);
  CHECK(ev.seen.empty());
}

TEST_CASE("each ejection in a row lasts longer, up to the cap", "[session][outlier]") {
  auto cfg = consecutive(1);
  cfg.interval = 1h;  // no decay meanwhile
  outlier_detector d(cfg);
  auto c = addresses(2);
  events ev;
  auto now = t0;
  std::vector<clock_t_::duration> lengths;
  for (int round = 0; round < 4; ++round) {
    d.on_result(c, 0, true, now, ev.tell());  // the probe after the return fails again
    REQUIRE(c[0].ejected);
    lengths.push_back(c[0].outlier.ejected_until - now);
    now = c[0].outlier.ejected_until;
    d.on_time(c, now, ev.tell());
    REQUIRE_FALSE(c[0].ejected);
  }
  CHECK(lengths == std::vector<clock_t_::duration>{10s, 20s, 25s, 25s});
}

TEST_CASE("no more than max_ejection_percent of the addresses are ejected, but at least one", "[session][outlier]") {
  auto cfg = consecutive(1);
  cfg.max_ejection_percent = 10;
  outlier_detector d(cfg);
  auto c = addresses(3);
  events ev;
  d.on_result(c, 0, true, t0, ev.tell());
  d.on_result(c, 1, true, t0, ev.tell());
  d.on_result(c, 2, true, t0, ev.tell());
  CHECK(c[0].ejected);  // the first one, though 1 of 3 is over 10 %
  CHECK_FALSE(c[1].ejected);
  CHECK_FALSE(c[2].ejected);
  cfg.max_ejection_percent = 0;  // 0: never
  outlier_detector none(cfg);
  auto c2 = addresses(3);
  none.on_result(c2, 0, true, t0, ev.tell());
  CHECK_FALSE(c2[0].ejected);
}

TEST_CASE("the failure-rate rule ejects at the end of an interval with enough volume", "[session][outlier]") {
  outlier_config cfg;
  cfg.failure_rate_percent = 50;
  cfg.minimum_volume = 10;
  cfg.interval = 10s;
  cfg.base_ejection_time = 30s;
  cfg.max_ejection_percent = 100;
  outlier_detector d(cfg);
  auto c = addresses(3);
  events ev;
  d.on_time(c, t0, ev.tell());  // the interval starts
  for (int i = 0; i < 10; ++i) {
    d.on_result(c, 0, i % 2 == 0, t0 + 1s, ev.tell());  // 50 % of 10: ejected
    d.on_result(c, 1, i < 4, t0 + 1s, ev.tell());       // 40 %: kept
  }
  for (int i = 0; i < 5; ++i) d.on_result(c, 2, true, t0 + 1s, ev.tell());  // 100 % of 5: too few
  d.on_time(c, t0 + 9s, ev.tell());
  CHECK_FALSE(c[0].ejected);  // not before the interval ends
  d.on_time(c, t0 + 10s, ev.tell());
  CHECK(c[0].ejected);
  CHECK_FALSE(c[1].ejected);
  CHECK_FALSE(c[2].ejected);
  CHECK(c[0].outlier.ejected_until == t0 + 40s);
}

TEST_CASE("an address's ejection count decays by one per interval it stays in", "[session][outlier]") {
  auto cfg = consecutive(1);
  cfg.interval = 60s;
  outlier_detector d(cfg);
  auto c = addresses(2);
  events ev;
  d.on_time(c, t0, ev.tell());  // the interval starts
  d.on_result(c, 0, true, t0, ev.tell());
  d.on_time(c, t0 + 10s, ev.tell());  // back
  REQUIRE_FALSE(c[0].ejected);
  d.on_result(c, 0, true, t0 + 10s, ev.tell());  // out again at once: twice in a row
  CHECK(c[0].outlier.times_ejected == 2);
  CHECK(c[0].outlier.ejected_until == t0 + 30s);
  d.on_time(c, t0 + 30s, ev.tell());  // back
  d.on_time(c, t0 + 60s, ev.tell());  // an interval spent in: 2 -> 1
  CHECK(c[0].outlier.times_ejected == 1);
  d.on_time(c, t0 + 120s, ev.tell());
  CHECK(c[0].outlier.times_ejected == 0);
}

TEST_CASE("outlier ejection is off unless a rule is set", "[session][outlier]") {
  outlier_detector d(outlier_config{});
  CHECK_FALSE(d.enabled());
}
