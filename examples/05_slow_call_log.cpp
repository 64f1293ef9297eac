// 05_slow_call_log: a call observer that logs slow calls (docs/observability.md).
//
// A call_observer is told of each call's end with its action, duration, outcome and bytes; this
// one logs the calls slower than a threshold, on the server and on the client, and counts
// them. The server serves Sleepy.nap(ms), which waits ms milliseconds; the client makes quick
// calls and a few slow ones. The same observer type would feed a tracer (OpenTelemetry or your
// own) or a latency histogram. Exits 0 if every slow call was logged on both sides.
//
//   05_slow_call_log [--threshold-ms T] [--nap-ms N]     (defaults 50 and 150; N >= T)

#include <occams_rpc.hpp>
#include <occams_rpc/metrics/call_observer.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <fmt/format.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using namespace occams_rpc;
using namespace std::chrono_literals;

OCCAMS_RPC_SERVICE(Sleepy, (nap, std::int64_t(std::int64_t)));  // waits ms milliseconds, answers ms

struct sleepy {
  asio::awaitable<std::int64_t> nap(std::int64_t ms) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await t.async_wait(asio::deferred);
    co_return ms;
  }
};

/// Logs each call slower than `threshold`. Called from every thread the connections run on,
/// so its only state is atomic; it never blocks and never throws.
class slow_call_log final : public call_observer {
 public:
  slow_call_log(std::chrono::nanoseconds threshold, logger log) : threshold_(threshold), log_(std::move(log)) {}

  void on_call_end(const call_info& c) noexcept override {
    if (c.duration < threshold_) return;  // the common case: one comparison
    slow_.fetch_add(1, std::memory_order_relaxed);
    try {
      log_.warn("slow call on the {}: {} took {:.1f} ms ({}; {} bytes in, {} bytes out)",
                c.side == call_side::server ? "server" : "client",
                c.action.empty() ? fmt::format("action {}", c.numeric_action) : std::string(c.action),
                std::chrono::duration<double, std::milli>(c.duration).count(),
                c.outcome ? c.outcome.message() : "ok", c.request_bytes, c.response_bytes);
    } catch (...) {  // formatting may allocate: an observer must not throw
    }
  }
  std::uint64_t slow_calls() const noexcept { return slow_.load(std::memory_order_relaxed); }

 private:
  std::chrono::nanoseconds threshold_;
  logger log_;
  std::atomic<std::uint64_t> slow_{0};
};

int main(int argc, char** argv) {
  std::int64_t threshold_ms = 50, nap_ms = 150;
  for (int i = 1; i < argc; i += 2) {
    std::string_view arg = argv[i];
    std::int64_t* target = arg == "--threshold-ms" ? &threshold_ms : arg == "--nap-ms" ? &nap_ms : nullptr;
    std::string_view v = i + 1 < argc ? argv[i + 1] : "";
    if (!target || std::from_chars(v.data(), v.data() + v.size(), *target).ec != std::errc{} || *target < 0) {
      fmt::print(stderr, "usage: 05_slow_call_log [--threshold-ms T] [--nap-ms N]\n");
      return 2;
    }
  }
  if (nap_ms < threshold_ms) nap_ms = threshold_ms;

  asio::io_context io(1);
  auto log = logger::to_stderr(log_level::warn);
  auto on_server = std::make_shared<slow_call_log>(std::chrono::milliseconds(threshold_ms), log);
  auto on_client = std::make_shared<slow_call_log>(std::chrono::milliseconds(threshold_ms), log);

  api::router routes(log);
  routes.add<Sleepy>(sleepy{});
  server_config scfg;
  scfg.observer = on_server.get();  // every connection of this server tells it (it outlives them)
  server srv(io.get_executor(), std::move(routes), scfg, log);
  address where = srv.listen("127.0.0.1:0");

  constexpr int quick = 21, slow = 3;  // calls 7, 15 and 23 are the slow ones
  int status = 1;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<int> {
        client_config ccfg;
        ccfg.observer = on_client.get();  // every call on this stream tells it
        auto [ec, stream] = co_await client_stream::async_connect(io.get_executor(), where, ccfg, log,
                                                                  asio::as_tuple(asio::deferred));
        if (ec) {
          fmt::print(stderr, "connect: {}\n", ec.message());
          co_return 1;
        }
        api::stub<Sleepy> sleepy_stub(stream);
        int wrong = 0;
        for (int i = 0; i < quick + slow; ++i) {
          std::int64_t ms = i % 8 == 7 ? nap_ms : 0;
          auto r = co_await sleepy_stub.nap(ms);
          if (!r || *r != ms) ++wrong;
        }
        co_await stream.async_close(asio::as_tuple(asio::deferred));
        co_await srv.async_shutdown(asio::as_tuple(asio::deferred));
        co_return wrong;
      },
      [&](std::exception_ptr e, int wrong) {
        if (e) std::rethrow_exception(e);
        // Every slow call was logged on both sides (a quick call may be too, on a busy machine).
        fmt::print("{} calls, {} wrong; slow calls logged: {} on the server, {} on the client (at least {} each)\n",
                   quick + slow, wrong, on_server->slow_calls(), on_client->slow_calls(), slow);
        status = wrong == 0 && on_server->slow_calls() >= slow && on_client->slow_calls() >= slow ? 0 : 1;
      });
  io.run();
  return status;
}
