// failover_pool's policies, outlier ejection and leader redirect over loopback (Unix sockets):
// calls counted per server. No timing asserts: every wait is a bounded poll.
#include "test_support.hpp"

#include <occams_rpc/stream/failover_pool.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace occams_rpc;
using namespace ::test;

namespace {

/// The answer of a follower: the leader's address, or empty for "ask another node".
struct not_leader {
  std::string leader;
  OCCAMS_RPC_FIELDS(leader)
  failover_hint failover() const {
    return leader.empty() ? failover_hint::retry_elsewhere() : failover_hint::retry_at(leader);
  }
};

}  // namespace

OCCAMS_RPC_SERVICE(KvService, (get, std::string(std::string), not_leader));

namespace {

/// A server that answers each call with its msg (or, while `failing`, with rpc_timeout) and
/// records the msgs it served.
struct recording_server {
  struct dispatch {
    recording_server* s;
    void operator()(server_request req) {
      if (s->failing) {
        ++s->failed;
        req.respond_error(errc::timeout);
        return;
      }
      ++s->served;
      s->keys.insert(std::string(req.msg().data(), req.msg().size()));
      req.respond(req.msg());
    }
  };
  address where = parse_address(listen_address(true));
  std::size_t served = 0, failed = 0;
  bool failing = false;
  std::set<std::string> keys;
  server<dispatch> srv;
  explicit recording_server(asio::io_context& io) : srv(io.get_executor(), dispatch{this}) { srv.listen(where); }
};

constexpr client_config fast_client{.call_timeout = 5s, .connect_timeout = 500ms, .timeout_tick = 20ms};
constexpr pool_config fast_pool{.health_check_period = 50ms, .reconnect_backoff = 10ms, .reconnect_backoff_max = 50ms};

/// `workers` coroutines make `total` calls with msg `key(i)` between them; returns the failures.
template <class Key>
asio::awaitable<std::size_t> spread(failover_pool& pool, std::size_t total, std::size_t workers, Key key,
                                    bool keyed = false) {
  std::size_t next = 0, failed = 0, running = workers;
  for (std::size_t w = 0; w < workers; ++w)
    asio::co_spawn(pool.get_executor(), [&]() -> asio::awaitable<void> {
      while (next < total) {
        std::string msg = key(next++);
        failover_call_options o;
        if (keyed) o.key = balance_key(msg);
        auto [ec, r] = co_await pool.async_call(o, 1, text_bytes(msg), {}, {}, tok);
        if (ec || r.msg.view() != msg) ++failed;
      }
      --running;
    }, asio::detached);
  co_await wait_until([&] { return running == 0; }, 1ms);
  co_return failed;
}

std::string numbered(std::size_t i) { return "call-" + std::to_string(i); }

}  // namespace

TEST_CASE("each policy spreads calls over three servers as documented", "[pool][failover][balancing]") {
  asio::io_context io;
  recording_server a(io), b(io), c(io);
  auto order = GENERATE(failover_order::round_robin, failover_order::primary_backup,
                        failover_order::weighted_round_robin, failover_order::least_in_flight);
  INFO("order " << static_cast<int>(order));
  failover_pool pool(io.get_executor(), std::vector<naming::endpoint>{{a.where, 3}, {b.where, 2}, {c.where, 1}},
                     fast_client, {.order = order, .pool = fast_pool});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 3; });
    auto failed = co_await spread(pool, 6000, 8, numbered);
    CHECK(failed == 0);
    INFO("a " << a.served << ", b " << b.served << ", c " << c.served);
    CHECK(a.served + b.served + c.served == 6000);
    switch (order) {
      case failover_order::round_robin:  // weights ignored: a third each
        for (auto n : {a.served, b.served, c.served}) CHECK(n == 2000);
        break;
      case failover_order::primary_backup:
        CHECK(a.served == 6000);
        break;
      case failover_order::weighted_round_robin:  // 3 : 2 : 1
        CHECK(a.served == 3000);
        CHECK(b.served == 2000);
        CHECK(c.served == 1000);
        break;
      default:  // least in flight: every server takes a share, the heavier more
        for (auto n : {a.served, b.served, c.served}) CHECK(n > 600);
        CHECK(a.served > c.served);
        break;
    }
  }, 60s);
}

TEST_CASE("consistent hashing sends each key to one server", "[pool][failover][balancing]") {
  asio::io_context io;
  recording_server a(io), b(io), c(io);
  failover_pool pool(io.get_executor(), {a.where, b.where, c.where}, fast_client,
                     {.order = failover_order::consistent_hash, .pool = fast_pool});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 3; });
    // One call at a time: nothing in flight, so the load bound never moves a key.
    auto failed = co_await spread(pool, 3000, 1, [](std::size_t i) { return "key-" + std::to_string(i % 300); }, true);
    CHECK(failed == 0);
    INFO("a " << a.served << ", b " << b.served << ", c " << c.served);
    for (auto* s : {&a, &b, &c}) CHECK(s->keys.size() > 30);  // 100 keys each on average
    std::size_t keys = a.keys.size() + b.keys.size() + c.keys.size();
    CHECK(keys == 300);  // no key on two servers
  }, 60s);
}

TEST_CASE("a server that fails its calls is ejected, then probed back once it recovers", "[pool][failover][balancing]") {
  asio::io_context io;
  recording_server a(io), b(io), bad(io);
  bad.failing = true;
  std::vector<std::string> log_lines;
  failover_config cfg{.order = failover_order::round_robin, .pool = fast_pool};
  cfg.outlier.consecutive_failures = 3;
  cfg.outlier.base_ejection_time = 2s;
  cfg.outlier.max_ejection_time = 4s;
  cfg.outlier.max_ejection_percent = 50;
  failover_pool pool(io.get_executor(), {a.where, b.where, bad.where}, fast_client, cfg,
                     logger(log_level::info, [&](log_level, std::string_view m) { log_lines.emplace_back(m); }));
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 3; });
    auto failed = co_await spread(pool, 300, 1, numbered);
    CHECK(failed == 0);  // every failure was retried on a good server
    INFO("a " << a.served << ", b " << b.served << ", bad failed " << bad.failed);
    // Round robin would send it 100; ejected after 3 failures in a row, it gets at most a
    // few more at each return (2 s, then 4 s later): far fewer however slow the machine.
    CHECK(bad.failed >= 3);
    CHECK(bad.failed < 30);
    auto ejected = std::count_if(log_lines.begin(), log_lines.end(), [](auto& l) { return l.find("ejected") != std::string::npos; });
    CHECK(ejected >= 1);
    // It recovers: once its ejection ends, it gets calls again and answers them.
    bad.failing = false;
    std::size_t calls = 0;
    while (bad.served == 0 && calls < 100'000) {
      co_await spread(pool, 3, 1, numbered);
      calls += 3;
      co_await sleep_for(5ms);
    }
    CHECK(bad.served > 0);
    auto returned = std::count_if(log_lines.begin(), log_lines.end(), [](auto& l) { return l.find("returns") != std::string::npos; });
    CHECK(returned >= 1);
  }, 60s);
}

namespace {

/// A KvService node: the leader answers, a follower names `leader` (or no one).
struct kv_node {
  std::string* leader;  // empty: this node leads
  std::size_t* served;
  api::result<std::string, not_leader> get(std::string key) {
    ++*served;
    if (!leader->empty()) return api::fail(not_leader{*leader});
    return "value of " + key;
  }
};

struct kv_server {
  std::string leader;
  std::size_t served = 0;
  std::optional<server<api::router>> srv;
  address where;
  explicit kv_server(asio::io_context& io, std::string leader_ = {}) : leader(std::move(leader_)) {
    api::router routes;
    routes.add<KvService>(kv_node{&leader, &served});
    srv.emplace(io.get_executor(), std::move(routes));
    where = srv->listen(listen_address(true));
  }
};

}  // namespace

TEST_CASE("a follower's redirect lands the call on the leader, which joins the pool's set", "[pool][failover][balancing][api]") {
  asio::io_context io;
  kv_server leader(io);
  kv_server follower(io, leader.where.to_string());
  failover_pool pool(io.get_executor(), {follower.where}, fast_client, {.pool = fast_pool});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 1; });
    api::stub<KvService, failover_pool> kv(pool);
    auto v = co_await kv.get("x");
    REQUIRE(v.has_value());
    CHECK(*v == "value of x");
    CHECK(follower.served == 1);
    CHECK(leader.served == 1);
    auto set = pool.endpoints();
    REQUIRE(set.size() == 2);
    CHECK(set[1].where == leader.where);
  });
}

TEST_CASE("a redirect loop between two followers is cut with too_many_redirects", "[pool][failover][balancing][api]") {
  asio::io_context io;
  kv_server x(io), y(io);
  x.leader = y.where.to_string();
  y.leader = x.where.to_string();
  failover_pool pool(io.get_executor(), {x.where, y.where}, fast_client,
                     {.order = failover_order::primary_backup, .retry_limit = 10, .pool = fast_pool, .max_redirects = 3});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; });
    api::stub<KvService, failover_pool> kv(pool);
    auto v = co_await kv.get("x");
    CHECK(v.framework_error() == errc::too_many_redirects);
    CHECK(x.served + y.served == 4);  // the first attempt and three redirects
  });
}

TEST_CASE("redirects to ever new addresses add at most max_redirect_addresses of them", "[pool][failover][balancing]") {
  // A hostile node names a new address in every answer, through failover_config::classify
  // (the untyped path: the classifier reads the error string).
  struct hostile {
    std::size_t* n;
    void operator()(server_request req) {
      req.respond_error_string("leader-at unix:/tmp/occams-rpc-nowhere-" + std::to_string(::getpid()) + "-" +
                               std::to_string((*n)++) + ".sock");
    }
  };
  asio::io_context io;
  std::size_t n = 0;
  server<hostile> srv(io.get_executor(), hostile{&n});
  auto where = srv.listen(listen_address(true));
  failover_config cfg{.order = failover_order::primary_backup, .retry_limit = 3,
                      .pool = {.health_check_period = 50ms, .wait_for_connection = false},
                      .max_redirects = 3, .max_redirect_addresses = 2};
  cfg.classify = [](std::error_code ec, std::span<const char> msg) {
    std::string_view s(msg.data(), msg.size());
    if (ec == errc::remote_error && s.starts_with("leader-at ")) return failover_hint::retry_at(std::string(s.substr(10)));
    return failover_hint{};
  };
  failover_pool pool(io.get_executor(), {where}, fast_client, cfg);
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 1; });
    for (int i = 0; i < 5; ++i) {
      auto [ec, r] = co_await pool.async_call(1, text_bytes("x"), {}, {}, tok);
      CHECK(ec);  // never a success: the set holds no leader
    }
    CHECK(pool.endpoints().size() == 3);  // the hostile node and two added addresses, no more
  });
}

TEST_CASE("typed calls with api::with_key go to one server per key under consistent hashing", "[pool][failover][balancing][api]") {
  asio::io_context io;
  kv_server a(io), b(io), c(io);
  failover_pool pool(io.get_executor(), {a.where, b.where, c.where}, fast_client,
                     {.order = failover_order::consistent_hash, .pool = fast_pool});
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 3; });
    api::stub<KvService, failover_pool> kv(pool);
    std::set<std::size_t> homes;
    for (int user = 0; user < 12; ++user) {
      std::size_t before[3] = {a.served, b.served, c.served};
      auto keyed = api::with_key(kv, user);
      for (int i = 0; i < 10; ++i) {
        auto v = co_await keyed.get("k");
        CHECK(v.has_value());
      }
      std::size_t got[3] = {a.served - before[0], b.served - before[1], c.served - before[2]};
      INFO("user " << user << ": " << got[0] << " " << got[1] << " " << got[2]);
      auto home = static_cast<std::size_t>(std::find(got, got + 3, 10) - got);
      CHECK(home < 3);  // all ten on one server
      homes.insert(home);
    }
    CHECK(homes.size() > 1);  // and the users spread over the servers
  });
}
