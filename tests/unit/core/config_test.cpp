#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

namespace {
struct milliseconds {};  // a user's own names, which occams_rpc must not collide with
struct seconds {};
}  // namespace

namespace names_probe {
using namespace occams_rpc;  // as a user would
// Were std::chrono names in occams_rpc, these lookups would be ambiguous (no build).
static_assert(std::is_same_v<milliseconds, ::milliseconds>);
static_assert(std::is_same_v<seconds, ::seconds>);
// Nor its literals: a dependent call finds operator""ms only if it is visible here.
template <class T>
concept sees_chrono_literals = requires(T n) { operator""ms(n); };
static_assert(!sees_chrono_literals<unsigned long long>);
}  // namespace names_probe

using namespace occams_rpc;
using namespace std::chrono_literals;

namespace {

// The message of the invalid_config error `validate(cfg)` throws, or "" if it throws none.
template <class Config>
std::string invalid_config_message(const Config& cfg) {
  try {
    validate(cfg);
  } catch (const std::system_error& e) {
    CHECK(e.code() == make_error_code(errc::invalid_config));
    CHECK(e.code() == errc::invalid_config);
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("client_config defaults equal the documented ones", "[core]") {
  client_config c;
  CHECK(c.call_timeout == std::chrono::seconds(20));
  CHECK(c.window == 128);
  CHECK(c.buffer_size == 8 * 1024);
  CHECK(c.read_timeout == std::chrono::seconds(5));
  CHECK(c.write_timeout == std::chrono::seconds(5));
  CHECK(c.connect_timeout == std::chrono::seconds(10));
  CHECK(c.timeout_tick == std::chrono::seconds(1));
  CHECK(c.max_frame_size == 64u * 1024 * 1024);
  CHECK(c.client_id == 0);
  CHECK_FALSE(c.problem());
  CHECK_NOTHROW(validate(c));
}

TEST_CASE("server_config defaults equal the documented ones", "[core]") {
  server_config s;
  CHECK(s.idle_timeout == std::chrono::seconds(120));
  CHECK(s.close_wait == std::chrono::seconds(90));
  CHECK(s.write_timeout == std::chrono::seconds(5));
  CHECK(s.buffer_size == 8 * 1024);
  CHECK(s.max_frame_size == 64u * 1024 * 1024);
  CHECK(s.max_inflight == 1024);
  CHECK(s.max_pending_write == 4u * 1024 * 1024);
  CHECK(s.timer_tick == std::chrono::seconds(1));
  CHECK_FALSE(s.problem());
  CHECK_NOTHROW(validate(s));
}

TEST_CASE("the default max frame size is 64 MiB", "[core]") {
  STATIC_REQUIRE(default_max_frame_size == 64u * 1024 * 1024);
}

TEST_CASE("designated initializers set some fields and keep the other defaults", "[core]") {
  client_config c{.call_timeout = 3s, .window = 256, .client_id = 42};
  CHECK(c.call_timeout == 3s);
  CHECK(c.window == 256);
  CHECK(c.client_id == 42);
  CHECK(c.buffer_size == 8 * 1024);
  CHECK(c.connect_timeout == 10s);
  CHECK(c.max_frame_size == default_max_frame_size);
  CHECK_NOTHROW(validate(c));

  server_config s{.idle_timeout = 30s, .max_inflight = 16};
  CHECK(s.idle_timeout == 30s);
  CHECK(s.max_inflight == 16);
  CHECK(s.close_wait == 90s);
  CHECK_NOTHROW(validate(s));
}

TEST_CASE("validate rejects a bad client_config with invalid_config naming the field", "[core]") {
  struct bad_case {
    client_config cfg;
    const char* field;
  };
  const bad_case cases[] = {
      {{.window = 0}, "window"},
      {{.window = 65537}, "window"},
      {{.call_timeout = 0ms}, "call_timeout"},
      {{.call_timeout = -1s}, "call_timeout"},
      {{.timeout_tick = 0ms}, "timeout_tick"},
      {{.connect_timeout = 0ms}, "connect_timeout"},
      {{.write_timeout = -5ms}, "write_timeout"},
      {{.buffer_size = 511}, "buffer_size"},
      {{.max_frame_size = 63}, "max_frame_size"},
      {{.max_frame_size = (std::size_t{1} << 32) + 1}, "max_frame_size"},
  };
  for (const auto& c : cases) {
    INFO("field " << c.field);
    auto why = c.cfg.problem();
    REQUIRE(why);
    CHECK_THAT(*why, Catch::Contains(std::string("client_config.") + c.field));
    CHECK_THAT(invalid_config_message(c.cfg), Catch::Contains(c.field));
  }
}

TEST_CASE("validate accepts client_config values at the edges of their ranges", "[core]") {
  CHECK_NOTHROW(validate(client_config{.window = 1}));
  CHECK_NOTHROW(validate(client_config{.window = 65536}));
  CHECK_NOTHROW(validate(client_config{.buffer_size = 512}));
  CHECK_NOTHROW(validate(client_config{.max_frame_size = 64}));
  CHECK_NOTHROW(validate(client_config{.max_frame_size = std::size_t{1} << 32}));
  CHECK_NOTHROW(validate(client_config{.call_timeout = 1ms}));
}

TEST_CASE("validate rejects a bad server_config with invalid_config naming the field", "[core]") {
  struct bad_case {
    server_config cfg;
    const char* field;
  };
  const bad_case cases[] = {
      {{.idle_timeout = 0ms}, "idle_timeout"},
      {{.close_wait = -1ms}, "close_wait"},
      {{.write_timeout = 0ms}, "write_timeout"},
      {{.max_inflight = 0}, "max_inflight"},
      {{.buffer_size = 100}, "buffer_size"},
      {{.max_frame_size = 10}, "max_frame_size"},
      {{.max_pending_write = 1024}, "max_pending_write"},
      {{.timer_tick = 0ms}, "timer_tick"},
  };
  for (const auto& c : cases) {
    INFO("field " << c.field);
    auto why = c.cfg.problem();
    REQUIRE(why);
    CHECK_THAT(*why, Catch::Contains(std::string("server_config.") + c.field));
    CHECK_THAT(invalid_config_message(c.cfg), Catch::Contains(c.field));
  }
  // A zero close_wait is valid: shutdown does not wait.
  CHECK_NOTHROW(validate(server_config{.close_wait = 0ms}));
}

TEST_CASE("pool and failover configs are valid by default and name the field that is not", "[core]") {
  CHECK_NOTHROW(validate(pool_config{}));
  CHECK_NOTHROW(validate(failover_config{}));
  struct bad_pool {
    pool_config cfg;
    const char* field;
  };
  const bad_pool cases[] = {
      {{.connections = 0}, "connections"},
      {{.health_check_period = 0ms}, "health_check_period"},
      {{.reconnect_backoff = 0ms}, "reconnect_backoff"},
      {{.reconnect_backoff = 2s, .reconnect_backoff_max = 1s}, "reconnect_backoff_max"},
      {{.max_waiting = 0}, "max_waiting"},
      {{.max_waiting = (std::size_t{1} << 20) + 1}, "max_waiting"},
      {{.max_waiting = static_cast<std::size_t>(-1)}, "max_waiting"},
  };
  for (const auto& c : cases) {
    INFO("field " << c.field);
    auto why = c.cfg.problem();
    REQUIRE(why);
    CHECK_THAT(*why, Catch::Contains(std::string("pool_config.") + c.field));
  }
  auto why = failover_config{.retry_limit = 65}.problem();
  REQUIRE(why);
  CHECK_THAT(*why, Catch::Contains("failover_config.retry_limit"));
  CHECK(failover_config{.pool = {.connections = 0}}.problem());  // the pool's own config is checked too
}

TEST_CASE("failover_config names a bad balancing, redirect or outlier field", "[core]") {
  using namespace std::chrono_literals;
  struct bad {
    failover_config cfg;
    const char* field;
  };
  failover_config base;
  auto with = [&](auto change) {
    failover_config c = base;
    change(c);
    return c;
  };
  std::vector<bad> cases{
      {with([](auto& c) { c.hash_load_factor = 0.9; }), "hash_load_factor"},
      {with([](auto& c) { c.hash_points = 0; }), "hash_points"},
      {with([](auto& c) { c.max_redirects = 65; }), "max_redirects"},
      {with([](auto& c) { c.max_redirect_addresses = 65; }), "max_redirect_addresses"},
      {with([](auto& c) { c.outlier.failure_rate_percent = 101; }), "outlier.failure_rate_percent"},
      {with([](auto& c) { c.outlier.max_ejection_percent = 101; }), "outlier.max_ejection_percent"},
      {with([](auto& c) { c.outlier.interval = 0ms; }), "outlier.interval"},
      {with([](auto& c) { c.outlier.base_ejection_time = 0ms; }), "outlier.base_ejection_time"},
      {with([](auto& c) { c.outlier.max_ejection_time = 1ms; }), "outlier.max_ejection_time"},
  };
  for (auto& c : cases) {
    INFO("field " << c.field);
    auto why = c.cfg.problem();
    REQUIRE(why);
    CHECK_THAT(*why, Catch::Contains(std::string("failover_config.") + c.field));
  }
  CHECK_FALSE(failover_config{}.outlier.enabled());  // off by default: no change for existing users
  CHECK(failover_config{}.order == failover_order::round_robin);
}

TEST_CASE("pool_config accepts max_waiting at the edges of its range, and any value without waiting", "[core]") {
  CHECK_NOTHROW(validate(pool_config{.max_waiting = 1}));
  CHECK_NOTHROW(validate(pool_config{.max_waiting = std::size_t{1} << 20}));
  CHECK(pool_config{}.max_waiting == 4096);
  // Calls never wait: the bound is unused.
  CHECK_NOTHROW(validate(pool_config{.wait_for_connection = false, .max_waiting = 0}));
  CHECK_THAT(invalid_config_message(failover_config{.pool = {.max_waiting = 0}}), Catch::Contains("max_waiting"));
}
