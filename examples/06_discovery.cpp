// 06_discovery: servers that register on etcd, a typed client that follows them
// (docs/discovery.md).
//
// Starts S servers (default 3) of a Greeter service, each on a free port, each registering its
// address under /services/greeter in the etcd given by --etcd, with a lease of --ttl seconds
// kept alive. A failover_pool follows etcd://.../services/greeter through a
// naming::pool_follower, and a typed stub calls Greeter.hello through it: the calls spread over
// the servers. Then the first server leaves gracefully (deregisters, then shuts down) while
// calls flow, and the rest of the calls go to the others. Prints how many calls each server
// answered. Exits 0 if every call succeeded, every server got calls before the departure, and
// none after it went to the server that left.
//
//   06_discovery --etcd etcd://127.0.0.1:2379 [--servers S] [--calls N] [--ttl S]
//
// examples/with_etcd.sh starts a throwaway etcd for it (the ctest test does so).

#include <occams_rpc.hpp>
#include <occams_rpc/naming/etcd_registration.hpp>
#include <occams_rpc/naming/pool_follower.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>

#include <charconv>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
using namespace occams_rpc;
using namespace std::chrono_literals;

OCCAMS_RPC_SERVICE(Greeter, (hello, std::string(std::string)));  // "NAME from ADDRESS"

namespace {

struct greeter {
  std::shared_ptr<std::string> self;  // known once the server listens
  std::string hello(std::string name) { return name + " from " + *self; }
};

/// One server and its registration.
struct member {
  std::unique_ptr<server<api::router>> srv;
  std::unique_ptr<naming::etcd_registration> reg;
  std::string where;
};

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::deferred));
}

struct options {
  std::string etcd;
  std::uint64_t servers = 3, calls = 3000, ttl = 10;
};

asio::awaitable<int> run(const options& opt) {
  auto ex = co_await asio::this_coro::executor;
  const std::string url = opt.etcd + "/services/greeter";
  auto log = logger::to_stderr(log_level::warn);

  // The servers: each listens on a free port, then registers the address it got.
  std::vector<member> members(opt.servers);
  for (auto& m : members) {
    auto self = std::make_shared<std::string>();
    api::router routes(log);
    routes.add<Greeter>(greeter{self});
    m.srv = std::make_unique<server<api::router>>(ex, std::move(routes), server_config{}, log);
    address local = m.srv->listen(parse_address("127.0.0.1:0"));
    m.where = *self = local.to_string();
    m.reg = std::make_unique<naming::etcd_registration>(
        ex, url, local, naming::registration_config{.ttl_seconds = static_cast<std::int64_t>(opt.ttl)},
        naming::naming_config{}, log);
    m.reg->start();
  }

  // The client: a failover pool with no address yet, following the etcd prefix.
  failover_pool pool(ex, std::vector<naming::endpoint>{});
  naming::pool_follower<failover_pool> follow(ex, url, pool, {}, log);
  api::stub<Greeter, failover_pool> greet(pool);
  // Wait (bounded) until every server is registered and reachable.
  for (int i = 0; i < 500 && pool.healthy_addresses().size() < members.size(); ++i) co_await sleep_for(20ms);
  if (pool.healthy_addresses().size() < members.size()) {
    fmt::print(stderr, "06_discovery: only {} of {} servers seen through etcd\n", pool.healthy_addresses().size(),
               members.size());
    co_return 1;
  }

  std::map<std::string, std::uint64_t> before, after;
  std::uint64_t failed = 0;
  auto call = [&](std::map<std::string, std::uint64_t>& count) -> asio::awaitable<void> {
    auto r = co_await greet.hello("hi");
    if (!r) ++failed;
    else ++count[r->substr(r->find(" from ") + 6)];
  };
  for (std::uint64_t i = 0; i < opt.calls / 2; ++i) co_await call(before);

  // The first server leaves gracefully: deregister, wait until the client has dropped it,
  // then shut the server down.
  co_await members[0].reg->async_stop(asio::as_tuple(asio::deferred));
  for (int i = 0; i < 500 && pool.healthy_addresses().size() >= members.size(); ++i) co_await sleep_for(10ms);
  co_await members[0].srv->async_shutdown(asio::as_tuple(asio::deferred));
  for (std::uint64_t i = opt.calls / 2; i < opt.calls; ++i) co_await call(after);

  bool ok = failed == 0 && before.size() == members.size() && !after.contains(members[0].where);
  for (auto& m : members)
    fmt::print("{}: {} calls, then {}{}\n", m.where, before[m.where], after[m.where],
               &m == &members[0] ? " (left after the first half)" : "");
  fmt::print("{} calls, {} failed: {}\n", opt.calls, failed, ok ? "ok" : "WRONG");

  follow.stop();
  co_await pool.async_close(asio::as_tuple(asio::deferred));
  for (std::size_t i = 1; i < members.size(); ++i) {
    co_await members[i].reg->async_stop(asio::as_tuple(asio::deferred));
    co_await members[i].srv->async_shutdown(asio::as_tuple(asio::deferred));
  }
  co_return ok ? 0 : 1;
}

bool parse_count(std::string_view s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && !s.empty() && out > 0;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view arg = argv[i], value = argv[i + 1];
    bool ok = arg == "--etcd"      ? (opt.etcd = value, true)
              : arg == "--servers" ? parse_count(value, opt.servers)
              : arg == "--calls"   ? parse_count(value, opt.calls)
              : arg == "--ttl"     ? parse_count(value, opt.ttl)
                                   : false;
    if (!ok) {
      fmt::print(stderr, "06_discovery: bad argument {} {}\n", arg, value);
      return 2;
    }
  }
  if (opt.etcd.empty() || argc % 2 == 0) {
    fmt::print(stderr, "usage: 06_discovery --etcd etcd://HOST:PORT [--servers S] [--calls N] [--ttl S]\n");
    return 2;
  }
  asio::io_context io(1);
  int status = 1;
  asio::co_spawn(io, run(opt), [&](std::exception_ptr e, int s) {
    if (e) std::rethrow_exception(e);
    status = s;
  });
  io.run();
  return status;
}
