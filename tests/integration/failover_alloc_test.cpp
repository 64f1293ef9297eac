// A failover_pool call's own cost in allocations, per policy: the balancer, the in-flight
// counts and the retry bookkeeping allocate nothing per call (the call's coroutine frame is
// the one allocation the pool documents, and Asio recycles it).
#include "test_support.hpp"

#include "unit/support/alloc_counter.hpp"

#include <occams_rpc/stream/failover_pool.hpp>

using namespace occams_rpc;
using namespace ::test;

namespace {
struct echo {
  void operator()(server_request req) { req.respond(req.msg(), req.blob()); }
};
}  // namespace

TEST_CASE("steady-state failover_pool calls allocate at most the call's coroutine, whatever the policy", "[pool][failover][alloc]") {
  auto order = GENERATE(failover_order::round_robin, failover_order::primary_backup,
                        failover_order::weighted_round_robin, failover_order::least_in_flight,
                        failover_order::consistent_hash);
  INFO("order " << static_cast<int>(order));
  asio::io_context io;
  server a(io.get_executor(), echo{}, {.timer_tick = 10ms}), b(io.get_executor(), echo{}, {.timer_tick = 10ms});
  auto wa = a.listen(listen_address(true)), wb = b.listen(listen_address(true));
  failover_pool pool(io.get_executor(), std::vector<naming::endpoint>{{wa, 2}, {wb, 1}}, {.timeout_tick = 10ms},
                     {.order = order, .pool = {.health_check_period = 1h}});
  const std::string msg(64, 'm');
  int failures = 0;
  long counted = -1;
  auto calls = [&](int n) -> asio::awaitable<void> {
    call_response buffers;
    for (int i = 0; i < n; ++i) {
      failover_call_options o{.key = balance_key(static_cast<std::uint64_t>(i % 64))};
      auto [ec, r] = co_await pool.async_call(o, 1, text_bytes(msg), {}, std::move(buffers), tok);
      if (ec || r.msg.size() != msg.size()) ++failures;
      buffers = std::move(r);
    }
  };
  run(io, [&]() -> asio::awaitable<void> {
    co_await wait_until([&] { return pool.healthy_addresses().size() == 2; });
    co_await calls(2000);
    co_await sleep_for(50ms);
    co_await calls(200);
    occams_rpc::test::counting_allocations counter;
    co_await calls(2000);
    counted = static_cast<long>(counter.stop());
  });
  CHECK(failures == 0);
  INFO("allocations during 2000 calls: " << counted);
  CHECK(counted <= 2000);
}
