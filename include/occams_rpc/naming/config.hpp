// naming_config: the periods, timeouts and limits of the naming sources and of etcd
// registration (docs/discovery.md, "Limits"). Every value has a default that suits a LAN.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace occams_rpc::naming {

struct naming_config {
  /// file://: how often the file's size and modification time are checked (re-read on change).
  std::chrono::milliseconds file_poll_period{1000};
  /// file://: a larger file is not read (logged; the last list is kept).
  std::size_t max_file_bytes = 1 << 20;
  /// dns://: how often the name is resolved again.
  std::chrono::milliseconds dns_refresh_period{5000};
  /// etcd: every request (connect, send, the whole response of a unary call, the headers of a
  /// watch) must finish within this.
  std::chrono::milliseconds request_timeout{5000};
  /// etcd: a watch that carries no byte for this long is re-established from its revision
  /// (a half-open connection to a vanished etcd is noticed this way).
  std::chrono::milliseconds watch_idle_timeout{60000};
  /// etcd: after a failure, wait this long, doubling up to retry_backoff_max.
  std::chrono::milliseconds retry_backoff{200};
  std::chrono::milliseconds retry_backoff_max{5000};
  /// etcd: the largest response header, unary response body, and watch message accepted;
  /// beyond, the request fails (logged) and is retried after the backoff.
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_response_bytes = 4 << 20;
  std::size_t max_watch_message_bytes = 1 << 20;
  /// Every source: at most this many endpoints in a snapshot; the rest are dropped (logged).
  std::size_t max_endpoints = 10000;
};

/// Registration of a server under an etcd prefix (etcd_registration).
struct registration_config {
  /// The lease's time to live, in seconds: a crashed server disappears within about this.
  std::int64_t ttl_seconds = 10;
  /// Keep-alive period; zero means ttl / 3.
  std::chrono::milliseconds keepalive_period{0};
  /// The weight written in the value (see docs/discovery.md, "Value format").
  std::uint32_t weight = 1;
};

/// Bounded exponential backoff: next() returns the wait, then doubles it up to `max`.
class backoff {
 public:
  backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max) noexcept
      : initial_(initial), max_(max < initial ? initial : max), next_(initial) {}
  std::chrono::milliseconds next() noexcept {
    auto d = next_;
    next_ = next_ * 2 > max_ ? max_ : next_ * 2;
    return d;
  }
  void reset() noexcept { next_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_, next_;
};

}  // namespace occams_rpc::naming
