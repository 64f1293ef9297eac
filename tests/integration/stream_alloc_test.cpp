// The stream layer's hot path allocates nothing per call in steady state (client and server
// in one process, so both sides are counted).
#include "test_support.hpp"

#include "unit/support/alloc_counter.hpp"

using namespace occams_rpc;
using namespace ::test;

namespace {
struct echo {
  void operator()(server_request req) { req.respond(req.msg(), req.blob()); }
};

/// Makes `warm` calls with `calls(client, n, failures)` on a fresh echo server (buffers and
/// pools grow), then `measured` more while counting this thread's allocations: client and
/// server both.
template <class Calls>
long allocations_of(Calls& calls, int warm, int measured, int& failures) {
  asio::io_context io;
  // Short ticks: both sides' tick timers fire during the warm-up (a slow build, under TSan
  // say, would otherwise meet its first tick, and one-time cache growth, while counting).
  server srv(io.get_executor(), echo{}, {.timer_tick = 10ms});  // answers with the request's own buffers: no copy
  auto where = srv.listen(listen_address(true));
  long counted = -1;
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.timeout_tick = 10ms});
    co_await calls(client, warm, failures);
    co_await sleep_for(50ms);
    co_await calls(client, warm / 10, failures);
    occams_rpc::test::counting_allocations counter;
    co_await calls(client, measured, failures);
    counted = static_cast<long>(counter.stop());
  });
  return counted;
}
}  // namespace

TEST_CASE("steady-state calls allocate nothing on the client and server hot paths", "[stream][alloc]") {
  const std::string msg(64, 'm');
  call_response buffers;  // handed back to each next call
  auto calls = [&](client_stream& c, int n, int& failures) -> asio::awaitable<void> {
    for (int i = 0; i < n; ++i) {
      auto [ec, r] = co_await c.async_call(1, text_bytes(msg), {}, std::move(buffers), tok);
      if (ec || r.msg.size() != msg.size()) ++failures;
      buffers = std::move(r);
    }
  };
  int failures = 0;
  long counted = allocations_of(calls, 2000, 2000, failures);
  CHECK(failures == 0);
  INFO("allocations during 2000 calls: " << counted);
  CHECK(counted == 0);
}

TEST_CASE("echoing large blobs allocates nothing once warm: the server keeps large buffers within its budget", "[stream][alloc]") {
  const std::string blob(256 * 1024, 'b');  // above 16 x buffer_size: a "large" buffer
  call_response buffers;
  auto calls = [&](client_stream& c, int n, int& failures) -> asio::awaitable<void> {
    for (int i = 0; i < n; ++i) {
      auto [e, r] = co_await c.async_call(1, text_bytes("m"), text_bytes(blob), std::move(buffers), tok);
      if (e || r.blob.size() != blob.size()) ++failures;
      buffers = std::move(r);
    }
  };
  int failures = 0;
  long counted = allocations_of(calls, 20, 50, failures);
  CHECK(failures == 0);
  // With max_retained_buffers = 0 this counts one allocation per call.
  INFO("allocations during 50 calls with 256 KiB blobs: " << counted);
  CHECK(counted == 0);
}

TEST_CASE("async_call_into writes the response into the caller's storage and allocates nothing once warm",
          "[stream][alloc]") {
  const std::string msg(64, 'm'), blob(32, 'b');
  call_response response;  // the caller's storage, written by each call
  auto calls = [&](client_stream& c, int n, int& failures) -> asio::awaitable<void> {
    for (int i = 0; i < n; ++i) {
      auto [ec] = co_await c.async_call_into(1, text_bytes(msg), text_bytes(blob), response, tok);
      if (ec || response.msg.view() != msg || response.blob.view() != blob) ++failures;
    }
  };
  int failures = 0;
  long counted = allocations_of(calls, 2000, 2000, failures);
  CHECK(failures == 0);
  INFO("allocations during 2000 calls: " << counted);
  CHECK(counted == 0);
}
