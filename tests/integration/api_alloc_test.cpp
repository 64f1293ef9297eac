// The API layer's allocations per call in steady state. Client and server run in one process
// and one thread here, so both sides are counted together. Encode buffers, coroutine frames and
// the decoder's state are reused, and the simplest types decode without msgpack-c's object tree:
// a call allocates only what its decoded values own (a long string, a vector), one per side.
#include "test_support.hpp"

#include "calculator_services.hpp"
#include "unit/support/alloc_counter.hpp"

using namespace occams_rpc;
using namespace ::test;

OCCAMS_RPC_SERVICE(BlobService, (echo, occams_rpc::bytes(occams_rpc::bytes)));

namespace {

struct blob_echo {
  bytes echo(bytes b) { return b; }  // answers with a view of the request: encoded straight from it
};

// A handful of one-time growths (a cache of Asio's that misses once under AddressSanitizer)
// must not fail a per-call bound.
constexpr long one_off_slack = 16;

/// Makes `calls` sequential calls of `method` through `stub`; counts the wrong answers.
template <class Call>
asio::awaitable<void> repeat_calls(int calls, Call call, int& wrong) {
  for (int i = 0; i < calls; ++i)
    if (!co_await call(i)) ++wrong;
}

template <class Call>
long count_allocations(Call call, int& wrong) {
  asio::io_context io;
  api::router routes;
  routes.add<CalService>(calculator{}).add<EchoService>(echo{}).add<BlobService>(blob_echo{});
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(true));
  long counted = -1;
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where);
    co_await repeat_calls(2000, call(stream), wrong);  // warm up: pools and buffers grow
    occams_rpc::test::counting_allocations counter;
    co_await repeat_calls(2000, call(stream), wrong);
    counted = static_cast<long>(counter.stop());
  });
  return counted;
}

}  // namespace

TEST_CASE("steady-state typed calls with integer arguments allocate nothing", "[api][alloc]") {
  int wrong = 0;
  long counted = count_allocations(
      [](client_stream& s) {
        return [cal = api::stub<CalService>(s)](int i) -> asio::awaitable<bool> {
          auto r = co_await cal.add(i, 1);
          co_return r && *r == i + 1;
        };
      },
      wrong);
  CHECK(wrong == 0);
  INFO("allocations during 2000 calls of CalService.add, client and server: " << counted);
  CHECK(counted <= one_off_slack);
}

TEST_CASE("steady-state typed calls to a coroutine method with a short string allocate nothing", "[api][alloc]") {
  int wrong = 0;
  long counted = count_allocations(
      [](client_stream& s) {
        return [echo = api::stub<EchoService>(s)](int) -> asio::awaitable<bool> {
          auto r = co_await echo.repeat("short");
          co_return r && *r == "short";
        };
      },
      wrong);
  CHECK(wrong == 0);
  INFO("allocations during 2000 calls of EchoService.repeat, client and server: " << counted);
  CHECK(counted <= one_off_slack);
}

TEST_CASE("steady-state typed calls allocate at most once per call on each side for values that own memory", "[api][alloc]") {
  int wrong = 0;
  static const std::string long_text(200, 'l');  // past the small-string buffer: decoding allocates
  long counted = count_allocations(
      [](client_stream& s) {
        return [echo = api::stub<EchoService>(s)](int) -> asio::awaitable<bool> {
          auto r = co_await echo.repeat(long_text);
          co_return r && *r == long_text;
        };
      },
      wrong);
  CHECK(wrong == 0);
  INFO("allocations during 2000 calls of EchoService.repeat with 200 bytes, client and server: " << counted);
  CHECK(counted <= 2 * 2000 + one_off_slack);
}

TEST_CASE("steady-state typed calls with bytes allocate nothing: the result takes the response buffer, which comes back",
          "[api][alloc]") {
  int wrong = 0;
  static const std::string payload(64 * 1024, 'p');  // large: the answer goes out by reference
  long counted = count_allocations(
      [](client_stream& s) {
        return [blobs = api::stub<BlobService>(s)](int) -> asio::awaitable<bool> {
          auto r = co_await blobs.echo(payload);
          co_return r && r->owns() && r->view() == payload;  // the result owns what it views
        };
      },
      wrong);
  CHECK(wrong == 0);
  INFO("allocations during 2000 calls of BlobService.echo with 64 KiB, client and server: " << counted);
  CHECK(counted <= one_off_slack);
}
