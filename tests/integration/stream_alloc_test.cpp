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

/// One caller: `calls` sequential calls reusing one response buffer.
asio::awaitable<void> caller(client_stream& c, int calls, const std::string& msg, call_response& buffers,
                             int& failures) {
  for (int i = 0; i < calls; ++i) {
    auto [ec, r] = co_await c.async_call(1, bytes(msg), {}, std::move(buffers), tok);
    if (ec || r.msg.size() != msg.size()) ++failures;
    buffers = std::move(r);
  }
}
}  // namespace

TEST_CASE("steady-state calls allocate nothing on the client and server hot paths", "[stream][alloc]") {
  asio::io_context io;
  server srv(io.get_executor(), echo{});
  auto where = srv.listen(listen_address(true));
  long counted = -1;
  int failures = 0;
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    std::string msg(64, 'm');
    call_response buffers;
    co_await caller(client, 2000, msg, buffers, failures);  // warm up: buffers and pools grow
    occams_rpc::test::counting_allocations counter;  // counts this thread: client and server
    co_await caller(client, 2000, msg, buffers, failures);
    counted = static_cast<long>(counter.stop());
  });
  CHECK(failures == 0);
  INFO("allocations during 2000 calls: " << counted);
  CHECK(counted == 0);
}

TEST_CASE("echoing large blobs allocates nothing once warm: the server keeps large buffers within its budget", "[stream][alloc]") {
  asio::io_context io;
  server srv(io.get_executor(), echo{});  // answers with the request's own buffers: no copy
  auto where = srv.listen(listen_address(true));
  long counted = -1;
  int failures = 0;
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    std::string blob(256 * 1024, 'b');  // above 16 x buffer_size: a "large" buffer
    call_response buffers;
    auto calls = [&](int n) -> asio::awaitable<void> {
      for (int i = 0; i < n; ++i) {
        auto [e, r] = co_await client.async_call(1, bytes("m"), bytes(blob), std::move(buffers), tok);
        if (e || r.blob.size() != blob.size()) ++failures;
        buffers = std::move(r);
      }
    };
    co_await calls(20);
    occams_rpc::test::counting_allocations counter;
    co_await calls(50);
    counted = static_cast<long>(counter.stop());
  });
  CHECK(failures == 0);
  // With max_retained_buffers = 0 this counts one allocation per call.
  INFO("allocations during 50 calls with 256 KiB blobs: " << counted);
  CHECK(counted == 0);
}
