// The one JSON line a client prints on stdout (BENCHMARK.md), and a human summary on stderr
// when stderr is a terminal.
#pragma once

#include "latency_histogram.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include <fmt/format.h>

namespace bench {

struct report {
  std::string system;  // "occams" or "raw"
  std::string workload;
  std::uint32_t connections = 0;
  std::uint32_t inflight = 0;
  std::uint64_t payload = 0;
  double seconds = 0;  // the measured window, as timed
  std::uint64_t requests = 0;
  const latency_histogram* latency = nullptr;
  double client_cpu_s = 0;
  std::optional<double> server_cpu_s;

  double rps() const noexcept { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }
  /// Megabytes (10^6) of payload per second, one direction.
  double mbps() const noexcept { return rps() * static_cast<double>(payload) / 1e6; }
  double quantile_us(double q) const noexcept { return latency ? latency->quantile(q) / 1e3 : 0; }
};

inline void print_json(const report& r) {
  std::string server_cpu = r.server_cpu_s ? fmt::format("{:.3f}", *r.server_cpu_s) : "null";
  fmt::print(
      "{{\"system\":\"{}\",\"workload\":\"{}\",\"connections\":{},\"inflight\":{},\"payload\":{},"
      "\"seconds\":{:.3f},\"requests\":{},\"rps\":{:.1f},\"mbps\":{:.3f},\"p50_us\":{:.2f},"
      "\"p99_us\":{:.2f},\"p999_us\":{:.2f},\"client_cpu_s\":{:.3f},\"server_cpu_s\":{}}}\n",
      r.system, r.workload, r.connections, r.inflight, r.payload, r.seconds, r.requests, r.rps(), r.mbps(),
      r.quantile_us(0.5), r.quantile_us(0.99), r.quantile_us(0.999), r.client_cpu_s, server_cpu);
  std::fflush(stdout);
}

inline void print_summary_if_terminal(const report& r) {
  if (!isatty(STDERR_FILENO)) return;
  double cpu = r.client_cpu_s + r.server_cpu_s.value_or(0);
  fmt::print(stderr,
             "{} {}: {} requests in {:.2f} s = {:.0f} req/s, {:.1f} MB/s; latency p50 {:.1f} us, "
             "p99 {:.1f} us, p99.9 {:.1f} us; CPU {:.2f} us/request ({})\n",
             r.system, r.workload, r.requests, r.seconds, r.rps(), r.mbps(), r.quantile_us(0.5),
             r.quantile_us(0.99), r.quantile_us(0.999),
             r.requests ? cpu * 1e6 / static_cast<double>(r.requests) : 0.0,
             r.server_cpu_s ? "client + server" : "client only");
}

}  // namespace bench
