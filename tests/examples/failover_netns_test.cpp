// A cut link, not a dead process: one calculator_server runs in its own network namespace,
// reached over a veth pair, and the link is set down while calls flow through a failover
// pool. Calls on the cut link fail by the call timeout, the health check marks the address
// down, and every call completes on the other server; none hangs. Needs root, `ip netns` and
// the right to create namespaces (CI runs as root); elsewhere it says so in its output and
// passes without running. The namespace and the
// veth pair are created here and removed at the end.
#include "calculator_services.hpp"
#include "child_process.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <unistd.h>

namespace asio = boost::asio;
using namespace occams_rpc;
using namespace std::chrono_literals;

namespace {

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

/// Root, `ip`, and the right to create a namespace (a container may lack it): tried for real.
bool can_make_namespaces() {
  if (::geteuid() != 0) return false;
  std::string probe = "occrpc-probe" + std::to_string(::getpid());
  if (sh("ip netns add " + probe) != 0) return false;
  sh("ip netns del " + probe);
  return true;
}

/// A network namespace joined to this one by a veth pair on a private /30.
struct netns_link {
  std::string id = std::to_string(::getpid() % 100000);
  std::string ns = "occrpc" + id, host_if = "ocr" + id + "h", peer_if = "ocr" + id + "p";
  std::string net = "10.213." + std::to_string(::getpid() % 250 + 1);
  std::string host_ip = net + ".1", peer_ip = net + ".2";
  bool ok = false;

  netns_link() {
    std::string in_ns = "ip netns exec " + ns + " ";
    ok = sh("ip netns add " + ns) == 0 && sh("ip link add " + host_if + " type veth peer name " + peer_if) == 0 &&
         sh("ip link set " + peer_if + " netns " + ns) == 0 && sh("ip addr add " + host_ip + "/30 dev " + host_if) == 0 &&
         sh("ip link set " + host_if + " up") == 0 && sh(in_ns + "ip addr add " + peer_ip + "/30 dev " + peer_if) == 0 &&
         sh(in_ns + "ip link set " + peer_if + " up") == 0 && sh(in_ns + "ip link set lo up") == 0;
  }
  void cut() { REQUIRE(sh("ip link set " + host_if + " down") == 0); }
  ~netns_link() {
    sh("ip link del " + host_if);
    sh("ip netns del " + ns);
  }
};

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::deferred);
}

}  // namespace

TEST_CASE("a failover pool moves off a server whose link is cut, and no call hangs", "[examples][pool][netns]") {
  const char* exe = std::getenv("CALCULATOR_SERVER");
  REQUIRE(exe);
  if (!can_make_namespaces()) {
    WARN("not run: creating network namespaces needs root, `ip` (iproute2) and CAP_SYS_ADMIN");
    return;
  }
  netns_link link;
  REQUIRE(link.ok);
  server_process far({"ip", "netns", "exec", link.ns, exe, "--listen", link.peer_ip + ":0"});
  server_process near({exe, "--listen", "127.0.0.1:0"});

  asio::io_context io(1);
  client_config ccfg{.call_timeout = 1s, .connect_timeout = 500ms, .timeout_tick = 100ms};
  failover_config fcfg{.retry_limit = 2,
                       .pool = {.health_check_period = 100ms, .reconnect_backoff = 100ms, .reconnect_backoff_max = 400ms}};
  failover_pool pool(io.get_executor(), {parse_address(far.address), parse_address(near.address)}, ccfg, fcfg);
  api::stub<CalService, failover_pool> cal(pool);

  constexpr std::int64_t total = 4000;
  std::int64_t next = 0, ok = 0, failed = 0;
  bool both_healthy = false, done = false;
  std::vector<address> healthy_after;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 500 && pool.healthy_addresses().size() < 2; ++i) co_await pause(10ms);
    both_healthy = pool.healthy_addresses().size() == 2;
    int running = 0;
    for (int w = 0; w < 8; ++w)
      asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        ++running;
        while (next < total) {
          auto n = next++;
          auto r = co_await cal.add(n, 1);
          (r && *r == n + 1 ? ok : failed)++;
          if (next == total / 2) link.cut();  // half done: the far server's link goes down
          if (next > total / 2 && next < total / 2 + 50) co_await pause(10ms);  // let calls meet the cut
        }
        --running;
      }, asio::detached);
    while (running > 0) co_await pause(5ms);
    healthy_after = pool.healthy_addresses();
    pool.close();
    done = true;
  }, asio::detached);
  io.run_for(60s);

  CHECK(both_healthy);
  REQUIRE(done);  // nothing hung
  CHECK(failed == 0);
  CHECK(ok == total);
  REQUIRE(healthy_after.size() == 1);
  CHECK(healthy_after[0] == parse_address(near.address));
  far.stop(SIGKILL);  // its connections cannot close gracefully over the cut link
}
