// The stream layer's hot path allocates nothing per call in steady state (client and server
// in one process, so both sides are counted).
#include "test_support.hpp"

#include "unit/support/alloc_counter.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string_view>
#include <vector>

using namespace occams_rpc;
using namespace ::test;

namespace {
struct echo {
  void operator()(server_request req) { req.respond(req.msg(), req.blob()); }
};

/// Makes `warm` calls with `calls(client, n, failures)` on a fresh echo server (buffers and
/// pools grow), then `measured` more while counting this thread's allocations: client and
/// server both. With `observer`, both sides tell it of every call.
template <class Calls>
long allocations_of(Calls& calls, int warm, int measured, int& failures, call_observer* observer = nullptr) {
  asio::io_context io;
  // Short ticks: both sides' tick timers fire during the warm-up (a slow build, under TSan
  // say, would otherwise meet its first tick, and one-time cache growth, while counting).
  server srv(io.get_executor(), echo{}, {.timer_tick = 10ms, .observer = observer});  // answers with the request's own buffers: no copy
  auto where = srv.listen(listen_address(true));
  long counted = -1;
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.timeout_tick = 10ms, .observer = observer});
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

TEST_CASE("steady-state calls allocate nothing with metrics on: a registry counts them on both sides", "[stream][alloc][metrics]") {
  const std::string msg(64, 'm');
  call_response buffers;
  auto calls = [&](client_stream& c, int n, int& failures) -> asio::awaitable<void> {
    for (int i = 0; i < n; ++i) {
      auto [ec, r] = co_await c.async_call(1, text_bytes(msg), {}, std::move(buffers), tok);
      if (ec || r.msg.size() != msg.size()) ++failures;
      buffers = std::move(r);
    }
  };
  metrics::registry reg;
  int failures = 0;
  long counted = allocations_of(calls, 2000, 2000, failures, &reg);
  CHECK(failures == 0);
  INFO("allocations during 2000 calls: " << counted);
  CHECK(counted == 0);
  // The calls were counted: 2000 + 200 + 2000 on each side.
  std::string text = reg.scrape();
  INFO(text);
  CHECK(text.find("occams_rpc_calls_completed_total{side=\"server\",action=\"1\",outcome=\"ok\"} 4200\n") != std::string::npos);
  CHECK(text.find("occams_rpc_calls_completed_total{side=\"client\",action=\"1\",outcome=\"ok\"} 4200\n") != std::string::npos);
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

TEST_CASE("the W3 shape (8 calls of 256 KiB in flight on one connection) allocates nothing once warm, on the "
          "client and the server", "[stream][alloc]") {
  // 8 loops call async_call_into without pause; the test counts the allocations made while
  // the loops complete `measured` calls in all, after `warm`. The loops are started once, so
  // their coroutine frames are not counted; a timer that the loop completing the last call
  // of a phase cancels wakes the test (no polling).
  constexpr int loops = 8, warm = 80, measured = 160;
  std::string blob(256 * 1024, 'b');
  for (std::size_t i = 0; i < blob.size(); i += 4096) blob[i] = static_cast<char>('a' + i / 4096 % 26);
  asio::io_context io;
  server srv(io.get_executor(), echo{}, {.timer_tick = 10ms});
  auto where = srv.listen(listen_address(false));
  int completed = 0, failures = 0, target = warm, running = 0;
  bool stop = false;
  long counted = -1;
  asio::steady_timer phase(io);
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.timeout_tick = 10ms});
    auto loop = [&]() -> asio::awaitable<void> {
      call_response response;
      ++running;
      while (!stop) {
        auto [ec] = co_await client.async_call_into(1, text_bytes("m"), text_bytes(blob), response, tok);
        if (ec || response.blob.view() != std::string_view(blob)) ++failures;
        if (++completed == target) phase.cancel();
      }
      if (--running == 0) phase.cancel();
    };
    phase.expires_at(asio::steady_timer::time_point::max());
    for (int i = 0; i < loops; ++i) asio::co_spawn(io, loop(), asio::detached);
    co_await phase.async_wait(tok);
    co_await sleep_for(50ms);  // both sides' tick timers fire once, outside the count
    target = completed + measured;
    phase.expires_at(asio::steady_timer::time_point::max());
    occams_rpc::test::counting_allocations counter;
    co_await phase.async_wait(tok);
    counted = static_cast<long>(counter.stop());
    stop = true;
    phase.expires_at(asio::steady_timer::time_point::max());
    co_await phase.async_wait(tok);  // every loop has seen stop
  });
  CHECK(failures == 0);
  CHECK(running == 0);
  INFO("allocations during " << measured << " calls of 256 KiB, 8 in flight: " << counted);
  CHECK(counted == 0);
}

namespace {
/// socket_transport, counting its start steps; `Declared` says whether it declares one. The
/// server runs a declared step as it runs a TLS handshake: in a coroutine of its own, raced
/// against the handshake timeout.
template <bool Declared>
struct counted_socket_transport : socket_transport {
  static constexpr bool has_start_step = Declared;
  static inline std::atomic<int> starts{0};
  asio::awaitable<std::error_code> start(socket_type& s, transport_role role) const {
    ++starts;
    return socket_transport::start(s, role);
  }
};
using unstepped_transport = counted_socket_transport<false>;
using stepped_transport = counted_socket_transport<true>;
static_assert(!has_start_step<socket_transport>() && has_start_step<stepped_transport>() &&
              !has_start_step<unstepped_transport>());

struct accepts_result {
  long allocations = -1;  // this thread's, the server's and its raw clients', for the measured accepts
  double seconds = 0;     // the measured accepts' wall time
};

/// `measured` connections accepted after `warm` were, in bursts: the connections made, then
/// each pinged, then each answer read (the server answers pings once a connection runs).
template <class Transport>
accepts_result accepts(int warm, int measured) {
  asio::io_context io;
  basic_server<echo, Transport> srv(io.get_executor(), echo{});
  auto where = srv.listen("127.0.0.1:0");
  std::vector<asio::generic::stream_protocol::socket> clients;
  clients.reserve(static_cast<std::size_t>(warm + measured));
  accepts_result result;
  int failures = 0;
  run(io, [&]() -> asio::awaitable<void> {
    auto burst = [&](int n) -> asio::awaitable<void> {
      std::size_t first = clients.size();
      for (int i = 0; i < n; ++i) clients.push_back(co_await raw_connect(where));
      std::array<char, proto::request_header_size> ping{};
      proto::encode(proto::request_header{.seq = 1}, ping.data());
      for (std::size_t i = first; i < clients.size(); ++i) {
        auto [wec, wn] = co_await asio::async_write(clients[i], asio::buffer(ping), tok);
        if (wec) ++failures;
      }
      std::array<char, proto::response_header_size> pong{};
      for (std::size_t i = first; i < clients.size(); ++i) {
        auto [rec, rn] = co_await asio::async_read(clients[i], asio::buffer(pong), tok);
        if (rec) ++failures;
      }
    };
    co_await burst(warm);
    auto start = std::chrono::steady_clock::now();
    occams_rpc::test::counting_allocations counter;
    co_await burst(measured);
    result.allocations = static_cast<long>(counter.stop());
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  });
  CHECK(failures == 0);
  CHECK(srv.accepted_count() == static_cast<std::size_t>(warm + measured));
  return result;
}
}  // namespace

TEST_CASE("a server starts the connections of a transport without a start step at once: the step is never run or "
          "raced against a timer", "[stream][alloc]") {
  unstepped_transport::starts = 0;
  stepped_transport::starts = 0;
  auto plain = accepts<unstepped_transport>(5, 20);
  auto stepped = accepts<stepped_transport>(5, 20);
  CHECK(unstepped_transport::starts == 0);
  CHECK(stepped_transport::starts == 25);  // the same transport with a step declared runs it
  // Asio's recycling allocator serves the skipped coroutine frames once warm: the saving is
  // their work (a frame, a parallel group of two branches, a timer armed and cancelled), not
  // a malloc; the accepts allocate no more without the step.
  INFO("allocations for 20 accepts: without a start step " << plain.allocations << ", with one "
                                                          << stepped.allocations);
  CHECK(plain.allocations >= 0);
  CHECK(plain.allocations <= stepped.allocations);
}

// Not a test: what the skipped step saves per accept. Run by hand:
//   occams_rpc_integration_tests "[accept-cost]"
TEST_CASE("measure: accepts with and without a start step", "[.][accept-cost]") {
  std::vector<double> plain, stepped;
  for (int i = 0; i < 11; ++i) {  // interleaved
    plain.push_back(accepts<unstepped_transport>(50, 400).seconds);
    stepped.push_back(accepts<stepped_transport>(50, 400).seconds);
  }
  std::sort(plain.begin(), plain.end());
  std::sort(stepped.begin(), stepped.end());
  std::printf("400 accepts in bursts, server and raw clients on one thread, median of 11 (us per accept): "
              "without a start step %.2f, with one %.2f, ratio %.3f\n",
              plain[5] / 400 * 1e6, stepped[5] / 400 * 1e6, plain[5] / stepped[5]);
}
