// Naming against the real thing: servers registering on a real etcd (started by the test),
// failover pools following it while servers stop, crash and appear and etcd restarts; and the
// file and dns sources.
#include "etcd_process.hpp"
#include "test_support.hpp"

#include <occams_rpc/naming/detail/base64.hpp>
#include <occams_rpc/naming/dns_source.hpp>
#include <occams_rpc/naming/etcd_json.hpp>
#include <occams_rpc/naming/etcd_registration.hpp>
#include <occams_rpc/naming/etcd_source.hpp>
#include <occams_rpc/naming/file_source.hpp>
#include <occams_rpc/naming/pool_follower.hpp>
#include <occams_rpc/stream/failover_pool.hpp>
#include <occams_rpc/stream/server.hpp>

#include <fstream>
#include <map>
#include <optional>

using namespace occams_rpc;
using namespace ::test;

namespace {

/// A TCP server that counts the calls it answered; stop() closes it at once.
struct counted_server {
  struct count_and_echo {
    std::size_t* served;
    void operator()(server_request req) {
      ++*served;
      req.respond(req.msg());
    }
  };
  std::size_t served = 0;
  std::optional<server<count_and_echo>> srv;
  address where;
  explicit counted_server(asio::io_context& io) {
    srv.emplace(io.get_executor(), count_and_echo{&served});
    where = srv->listen(parse_address("127.0.0.1:0"));
  }
  void stop() { srv.reset(); }
};

/// Silent, unless OCCAMS_TEST_LOG is set (then info and above on stderr: what the sources and
/// registrations did).
logger test_log() { return std::getenv("OCCAMS_TEST_LOG") ? logger::to_stderr(log_level::debug) : logger{}; }

/// Short periods, so that each test takes seconds.
naming::naming_config fast_naming() {
  naming::naming_config c;
  c.file_poll_period = 20ms;
  c.dns_refresh_period = 50ms;
  c.request_timeout = 2s;
  c.retry_backoff = 50ms;
  c.retry_backoff_max = 300ms;
  return c;
}
constexpr client_config fast_client{.call_timeout = 2s, .connect_timeout = 300ms, .timeout_tick = 20ms};
failover_config fast_failover() {
  failover_config f;
  f.retry_limit = 3;
  f.pool = {.health_check_period = 50ms, .reconnect_backoff = 20ms, .reconnect_backoff_max = 100ms};
  return f;
}

/// `n` calls one after another; how many failed.
asio::awaitable<std::size_t> calls(failover_pool& pool, std::size_t n) {
  std::size_t failed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto [ec, r] = co_await pool.async_call(1, text_bytes("ping"), {}, {}, tok);
    if (ec || r.msg.view() != "ping") ++failed;
  }
  co_return failed;
}

bool has(const std::vector<address>& v, const address& a) { return std::find(v.begin(), v.end(), a) != v.end(); }

/// The key a server registered as a crashed one would leave: written under a lease that no
/// one keeps alive.
void register_without_keepalive(const etcd_process& etcd, std::string_view prefix, const address& a, int ttl) {
  std::int64_t lease = 0, granted = 0;
  std::string why;
  REQUIRE(naming::etcd::parse_lease_grant(etcd.post("/v3/lease/grant", naming::etcd::lease_grant_request(ttl)), lease,
                                          granted, why));
  std::string key = std::string(prefix) + "/" + a.to_string();
  REQUIRE(naming::etcd::parse_ok(
      etcd.post("/v3/kv/put", naming::etcd::put_request(key, naming::etcd::endpoint_value({a, 1}), lease)), why));
}

void put(const etcd_process& etcd, std::string_view key, std::string_view value) {
  std::string why;
  REQUIRE(naming::etcd::parse_ok(etcd.post("/v3/kv/put", naming::etcd::put_request(key, value, 0)), why));
}

}  // namespace

TEST_CASE("servers registered on etcd share the calls and one leaving gracefully goes at once while a new one gets traffic",
          "[naming][etcd]") {
  etcd_process etcd;
  asio::io_context io;
  auto ex = io.get_executor();
  counted_server a(io), b(io), c(io);
  naming::registration_config rc{.ttl_seconds = 2};
  naming::etcd_registration reg_a(ex, etcd.url("/services/calc"), a.where, rc, fast_naming(), test_log());
  naming::etcd_registration reg_b(ex, etcd.url("/services/calc"), b.where, rc, fast_naming(), test_log());
  naming::etcd_registration reg_c(ex, etcd.url("/services/calc"), c.where, rc, fast_naming(), test_log());
  reg_a.start();
  reg_b.start();
  failover_pool pool(ex, std::vector<naming::endpoint>{}, fast_client, fast_failover(), test_log());
  naming::pool_follower<failover_pool> follow(ex, etcd.url("/services/calc"), pool, fast_naming(), test_log());
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return reg_a.registered() && reg_b.registered(); }, 10ms);
    test_log().info("test: both registered");
    auto [ready] = co_await follow.async_wait_ready(tok);
    CHECK_FALSE(ready);
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; }, 10ms);
    std::size_t failed = co_await calls(pool, 200);
    CHECK(failed == 0);
    CHECK(a.served > 0);
    CHECK(b.served > 0);
    CHECK(a.served + b.served == 200);

    // a leaves gracefully: deregistered (the key goes with its lease at once), then stopped.
    test_log().info("test: both served");
    co_await reg_a.async_stop(tok);
    co_await wait_until([&] { return !has(pool.healthy_addresses(), a.where); }, 10ms);
    test_log().info("test: a deregistered");
    a.stop();
    std::size_t b_before = b.served;
    failed = co_await calls(pool, 100);
    CHECK(failed == 0);
    CHECK(b.served == b_before + 100);

    // c appears and gets traffic.
    test_log().info("test: c starts");
    reg_c.start();
    co_await wait_until([&] { return has(pool.healthy_addresses(), c.where); }, 10ms);
    failed = co_await calls(pool, 100);
    CHECK(failed == 0);
    CHECK(c.served > 0);
    test_log().info("test: stopping");
    follow.stop();
    co_await reg_b.async_stop(tok);
    co_await reg_c.async_stop(tok);
    co_await pool.async_close(tok);
  }, 30s);
}

TEST_CASE("a crashed server disappears from etcd when its lease expires and calls flowing meanwhile are retried elsewhere",
          "[naming][etcd]") {
  etcd_process etcd;
  asio::io_context io;
  auto ex = io.get_executor();
  counted_server alive(io), crashing(io);
  naming::etcd_registration reg(ex, etcd.url("/svc"), alive.where, {.ttl_seconds = 2}, fast_naming());
  reg.start();
  register_without_keepalive(etcd, "/svc", crashing.where, 3);
  failover_pool pool(ex, std::vector<naming::endpoint>{}, fast_client, fast_failover());
  naming::pool_follower<failover_pool> follow(ex, etcd.url("/svc"), pool, fast_naming());
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; }, 10ms);
    crashing.stop();  // the crash: its key stays until the lease expires
    std::size_t failed = 0, made = 0;
    // Calls flow until etcd has dropped the key (about 2 s; bounded by run()'s limit).
    std::size_t snapshots_before = follow.snapshots();
    while (follow.snapshots() == snapshots_before) {
      failed += co_await calls(pool, 10);
      made += 10;
    }
    CHECK(made > 0);
    CHECK(failed == 0);  // retry_limit 3: a call that met the dead address went to the live one
    auto healthy = pool.healthy_addresses();
    CHECK(healthy == std::vector<address>{alive.where});
    follow.stop();
    co_await reg.async_stop(tok);
    co_await pool.async_close(tok);
  }, 30s);
}

TEST_CASE("clients keep the last list while etcd restarts and then resume the watch", "[naming][etcd]") {
  etcd_process etcd;
  asio::io_context io;
  auto ex = io.get_executor();
  counted_server a(io), b(io);
  naming::etcd_registration reg_a(ex, etcd.url("/svc"), a.where, {.ttl_seconds = 10}, fast_naming());
  naming::etcd_registration reg_b(ex, etcd.url("/svc"), b.where, {.ttl_seconds = 10}, fast_naming());
  reg_a.start();
  failover_pool pool(ex, std::vector<naming::endpoint>{}, fast_client, fast_failover());
  naming::pool_follower<failover_pool> follow(ex, etcd.url("/svc"), pool, fast_naming());
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 1; }, 10ms);
    etcd.kill();
    std::size_t failed = co_await calls(pool, 50);  // the last list stands
    CHECK(failed == 0);
    co_await sleep_for(300ms);  // the watch has broken and retries (with backoff)
    failed = co_await calls(pool, 50);
    CHECK(failed == 0);
    etcd.start();
    reg_b.start();  // a server registering after the restart is seen through the resumed watch
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; }, 10ms);
    failed = co_await calls(pool, 100);
    CHECK(failed == 0);
    CHECK(b.served > 0);
    follow.stop();
    co_await reg_a.async_stop(tok);
    co_await reg_b.async_stop(tok);
    co_await pool.async_close(tok);
  }, 40s);
}

TEST_CASE("malformed etcd values are skipped and an empty prefix makes calls fail with unreachable",
          "[naming][etcd]") {
  etcd_process etcd;
  asio::io_context io;
  auto ex = io.get_executor();
  counted_server a(io);
  put(etcd, "/m/bad1", "not an address");
  put(etcd, "/m/bad2", R"({"addr":"127.0.0.1:1","weight":-5})");
  put(etcd, "/m/good", naming::etcd::endpoint_value({a.where, 3}));
  std::vector<std::string> logged;
  logger log(log_level::warn, [&](log_level, std::string_view m) { logged.emplace_back(m); });
  std::vector<std::vector<naming::endpoint>> seen;
  naming::etcd_source src(ex, "127.0.0.1", etcd.port(), "/m/", fast_naming(), log);
  src.start([&](const std::vector<naming::endpoint>& eps) { seen.push_back(eps); });

  failover_pool empty_pool(ex, std::vector<naming::endpoint>{}, fast_client, fast_failover());
  naming::pool_follower<failover_pool> follow_empty(ex, etcd.url("/nothing"), empty_pool, fast_naming());
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return !seen.empty(); }, 10ms);
    REQUIRE(seen[0].size() == 1);
    CHECK(seen[0][0] == naming::endpoint{a.where, 3});
    CHECK(std::count_if(logged.begin(), logged.end(), [](auto& m) { return m.find("skipped") != std::string::npos; }) ==
          2);
    // A bad value arriving through the watch is skipped too; a good one is added.
    put(etcd, "/m/bad3", "{");
    put(etcd, "/m/other", "127.0.0.1:9");
    co_await wait_until([&] { return seen.size() == 2; }, 10ms);
    CHECK(seen[1].size() == 2);

    auto [ready] = co_await follow_empty.async_wait_ready(tok);
    CHECK_FALSE(ready);
    auto [ec, r] = co_await empty_pool.async_call(1, text_bytes("x"), {}, {}, tok);
    CHECK(ec == errc::unreachable);
    src.stop();
    follow_empty.stop();
    co_await empty_pool.async_close(tok);
  }, 30s);
}

TEST_CASE("a file source re-reads its file when it changes and keeps the last list when it goes", "[naming]") {
  std::string path = "/tmp/occams-naming-" + std::to_string(::getpid()) + ".list";
  auto write = [&](std::string_view text) {
    std::ofstream(path, std::ios::trunc) << text;
  };
  write("127.0.0.1:1\n127.0.0.1:2 5 # heavy\n");
  asio::io_context io;
  std::vector<std::vector<naming::endpoint>> seen;
  std::vector<std::string> logged;
  logger log(log_level::warn, [&](log_level, std::string_view m) { logged.emplace_back(m); });
  naming::file_source src(io.get_executor(), path, fast_naming(), log);
  src.start([&](const std::vector<naming::endpoint>& eps) { seen.push_back(eps); });
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return seen.size() == 1; });
    CHECK(seen[0] == std::vector<naming::endpoint>{{address::tcp("127.0.0.1", 1), 1}, {address::tcp("127.0.0.1", 2), 5}});
    write("127.0.0.1:3\nnot-an-address\n");
    co_await wait_until([&] { return seen.size() == 2; });
    CHECK(seen[1] == std::vector<naming::endpoint>{{address::tcp("127.0.0.1", 3), 1}});
    CHECK(std::any_of(logged.begin(), logged.end(), [](auto& m) { return m.find("line 2") != std::string::npos; }));
    std::filesystem::remove(path);
    co_await wait_until([&] { return std::any_of(logged.begin(), logged.end(), [](auto& m) {
      return m.find("keeping the last list") != std::string::npos;
    }); });
    CHECK(seen.size() == 2);  // no empty snapshot for a missing file
    src.stop();
  });
}

TEST_CASE("a dns source resolves its name into one endpoint per address record", "[naming]") {
  asio::io_context io;
  std::vector<std::vector<naming::endpoint>> seen;
  naming::dns_source src(io.get_executor(), "localhost", 4242, fast_naming());
  src.start([&](const std::vector<naming::endpoint>& eps) { seen.push_back(eps); });
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return !seen.empty(); });
    co_await sleep_for(200ms);  // several refreshes: an unchanged set is not delivered again
    CHECK(seen.size() == 1);
    CHECK(std::any_of(seen[0].begin(), seen[0].end(),
                      [](auto& e) { return e.where == address::tcp("127.0.0.1", 4242); }));
    src.stop();
  });
}

TEST_CASE("a pool following a file source takes its weights and changes them when the file does", "[naming]") {
  std::string path = "/tmp/occams-naming-w-" + std::to_string(::getpid()) + ".list";
  auto write = [&](std::string_view text) {
    std::ofstream(path, std::ios::trunc) << text;
  };
  asio::io_context io;
  counted_server a(io), b(io);
  write(a.where.to_string() + " 3\n" + b.where.to_string() + "\n");
  failover_pool pool(io.get_executor(), std::vector<address>{}, fast_client, fast_failover());
  naming::pool_follower<failover_pool> follow(io.get_executor(), "file://" + path, pool, fast_naming());
  // Snapshots come sorted by address, so compare the weights by address.
  auto weights = [&] {
    std::map<std::string, std::uint32_t> w;
    for (auto& e : pool.endpoints()) w[e.where.to_string()] = e.weight;
    return w;
  };
  using weight_map = std::map<std::string, std::uint32_t>;
  run(io, [&]() -> asio::awaitable<void> {
    co_await follow.async_wait_ready(tok);
    CHECK(weights() == weight_map{{a.where.to_string(), 3}, {b.where.to_string(), 1}});
    write(a.where.to_string() + "\n" + b.where.to_string() + " 7\n");
    co_await wait_until([&] { return follow.snapshots() == 2; });
    CHECK(weights() == weight_map{{a.where.to_string(), 1}, {b.where.to_string(), 7}});
    follow.stop();
    pool.close();
  });
  std::filesystem::remove(path);
}
