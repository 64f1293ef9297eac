// Configuration structs with the documented defaults (mirroring the Rust occams-rpc).
// Aggregates: use designated initializers, e.g. client_config{.window = 256}.
#pragma once

#include <occams_rpc/detail/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace occams_rpc {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

/// Default largest frame a reader accepts (the v1 format sets none).
inline constexpr std::size_t default_max_frame_size = 64u << 20;

/// One client connection (client_stream).
struct client_config {
  milliseconds call_timeout = 20s;      ///< a call fails with `timeout` after this long
  std::size_t window = 128;             ///< requests in flight per connection
  std::size_t buffer_size = 8 * 1024;   ///< initial read/write buffer size
  milliseconds read_timeout = 5s;       ///< reserved: idle read guard for pools' health checks
  milliseconds write_timeout = 5s;      ///< a write stuck this long fails the connection
  milliseconds connect_timeout = 10s;   ///< connect fails with `unreachable` after this long
  milliseconds timeout_tick = 1s;       ///< how often timeouts are checked (one sweep a tick)
  std::size_t max_frame_size = default_max_frame_size;  ///< larger responses close the connection
  std::uint64_t client_id = 0;          ///< informational, sent in every request header

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

/// A server and each of its connections.
struct server_config {
  milliseconds idle_timeout = 120s;     ///< a connection with no traffic this long is closed
  milliseconds close_wait = 90s;        ///< graceful shutdown waits this long for calls in flight
  milliseconds write_timeout = 5s;      ///< a write stuck this long closes the connection
  std::size_t buffer_size = 8 * 1024;   ///< initial read/write buffer size
  std::size_t max_frame_size = default_max_frame_size;  ///< larger requests close the connection
  std::size_t max_inflight = 1024;      ///< requests in flight per connection before the
                                        ///< reader stops reading (back-pressure)
  std::size_t max_pending_write = 4u << 20;  ///< queued response bytes before the reader pauses
  std::size_t max_retained_buffers = 4u << 20;  ///< bytes of large request buffers (above 16 x
                                               ///< buffer_size) a connection keeps for reuse
  milliseconds timer_tick = 1s;         ///< how often idle connections are checked

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

/// Throws std::system_error(errc::invalid_config) with the reason if `cfg` is invalid.
template <class Config>
void validate(const Config& cfg);

}  // namespace occams_rpc

#include <occams_rpc/core/impl/config.hpp>
#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/core/impl/config.ipp>
#endif
