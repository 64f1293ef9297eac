// The measured window shared by every client: warm-up, measure (count and time only the
// responses that arrive inside the window, read CPU at both ends), stop issuing, drain for at
// most 2 s. One io_context thread runs everything, so there are no locks; a client on T
// threads has one measurement per thread, and thread 0's absorbs the others' at the end.
// With --calls C (for callgrind, where time means nothing) there is no warm-up and no timed
// window: exactly C calls are issued (at least N x W: raw_bench fills its windows first), all of
// them are counted, and the run ends when the last one has come back.
#pragma once

#include "bench_options.hpp"
#include "bench_report.hpp"
#include "cpu_usage.hpp"
#include "latency_histogram.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

namespace bench {

namespace asio = boost::asio;
using bench_clock = std::chrono::steady_clock;

class measurement {
 public:
  static constexpr auto max_drain = std::chrono::seconds(2);

  explicit measurement(const options& o) : opt_(o) {
    if (opt_.calls > 0) phase_ = phase::measuring;  // no warm-up: every call counts
  }

  /// Whether loops should send another request.
  bool issuing() const noexcept {
    return (phase_ == phase::warmup || phase_ == phase::measuring) && (opt_.calls == 0 || issued_ < opt_.calls);
  }

  /// One request sent / one response (or failure) received: the drain waits for zero.
  void sent() noexcept {
    ++outstanding_;
    ++issued_;
  }
  void received() noexcept {
    if (--outstanding_ == 0 && all_calls_back() && timer_) timer_->cancel();  // --calls: the run is over
  }
  std::uint64_t outstanding() const noexcept { return outstanding_; }

  /// A response that came back intact at `now` for a request sent at `start`.
  void record(bench_clock::time_point start, bench_clock::time_point now) noexcept {
    if (phase_ != phase::measuring) return;
    ++requests_;
    latency_.record(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - start).count()));
  }

  /// A protocol or echo error: the run stops early and fails. Only the first reason is kept.
  void fail(std::string why) {
    if (error_.empty()) {
      error_ = std::move(why);
      fmt::print(stderr, "error: {}\n", error_);
    }
    if (issuing()) phase_ = phase::draining;
    if (timer_) timer_->cancel();
  }
  bool failed() const noexcept { return !error_.empty(); }
  /// True once the drain is over: errors seen after that (connections cut) are expected.
  bool finished() const noexcept { return phase_ == phase::done; }

  /// Runs the window once the loops are going; returns whether everything in flight came
  /// back within the drain time. The caller then closes its connections.
  asio::awaitable<bool> run() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer_ = &timer;
    auto wait = [&](bench_clock::duration d) {
      timer.expires_after(d);
      return timer.async_wait(asio::as_tuple(asio::deferred));
    };
    auto seconds = [](double s) { return std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(s)); };

    if (opt_.calls > 0) {
      // Count mode: the window runs until the last call is back (received() cancels the wait).
      begin_ = snapshot();
      if (!failed() && !all_calls_back()) co_await wait(std::chrono::hours(24 * 365));
      if (!failed()) {
        end_ = snapshot();
        phase_ = phase::draining;
      }
    }
    if (!failed() && opt_.calls == 0) co_await wait(seconds(opt_.warmup));
    if (!failed() && opt_.calls == 0) {
      phase_ = phase::measuring;
      begin_ = snapshot();
      co_await wait(seconds(opt_.duration));
      if (!failed()) {
        end_ = snapshot();
        phase_ = phase::draining;
      }
    }
    // Drain: poll, since responses complete in many places. After a failure, do not wait.
    auto deadline = bench_clock::now() + max_drain;
    while (outstanding_ > 0 && !failed() && bench_clock::now() < deadline) co_await wait(std::chrono::milliseconds(1));
    phase_ = phase::done;
    timer_ = nullptr;
    if (outstanding_ > 0 && !failed()) fmt::print(stderr, "warning: {} requests still in flight after the 2 s drain\n", outstanding_);
    co_return outstanding_ == 0;
  }

  /// Adds another client thread's window (run alongside this one, from the same options): its
  /// responses and latencies, and its failure if any. The time and CPU figures stay this
  /// one's (CPU is the whole process's anyway).
  void absorb(const measurement& o) {
    requests_ += o.requests_;
    latency_.merge(o.latency_);
    if (error_.empty() && !o.error_.empty()) error_ = o.error_;
  }

  /// The client's exit status; on success prints the JSON line (and a summary on a terminal).
  int conclude(std::string system) const {
    if (failed()) return exit_failed;
    auto r = make_report(std::move(system));
    print_json(r);
    print_summary_if_terminal(r);
    return exit_ok;
  }

  report make_report(std::string system) const {
    report r;
    r.system = std::move(system);
    r.workload = workload_name(opt_);
    r.connections = opt_.connections;
    r.inflight = opt_.inflight;
    r.payload = opt_.payload;
    r.seconds = std::chrono::duration<double>(end_.at - begin_.at).count();
    r.requests = requests_;
    r.latency = &latency_;
    r.client_cpu_s = end_.client_cpu - begin_.client_cpu;
    if (begin_.server_cpu && end_.server_cpu) r.server_cpu_s = *end_.server_cpu - *begin_.server_cpu;
    return r;
  }

 private:
  enum class phase { warmup, measuring, draining, done };
  struct sample {
    bench_clock::time_point at{};
    double client_cpu = 0;
    std::optional<double> server_cpu;
  };
  bool all_calls_back() const noexcept { return opt_.calls > 0 && issued_ >= opt_.calls && outstanding_ == 0; }
  sample snapshot() const {
    return {bench_clock::now(), self_cpu_seconds(), opt_.server_pid ? process_cpu_seconds(opt_.server_pid) : std::nullopt};
  }

  const options& opt_;
  phase phase_ = phase::warmup;
  std::uint64_t outstanding_ = 0;
  std::uint64_t issued_ = 0;
  std::uint64_t requests_ = 0;
  latency_histogram latency_;
  sample begin_, end_;
  std::string error_;
  asio::steady_timer* timer_ = nullptr;
};

}  // namespace bench
