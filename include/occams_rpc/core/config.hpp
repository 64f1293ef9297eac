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
  milliseconds read_timeout = 5s;       ///< a response frame must arrive whole within this once
                                        ///< its first byte has; a server stalled mid-frame
                                        ///< fails the connection (io_err)
  milliseconds write_timeout = 5s;      ///< a write stuck this long fails the connection
  milliseconds connect_timeout = 10s;   ///< connect fails with `unreachable` after this long
  milliseconds timeout_tick = 1s;       ///< how often timeouts are checked (one sweep a tick)
  std::size_t max_frame_size = default_max_frame_size;  ///< larger responses close the connection
  std::size_t max_retained_buffers = 8u << 20;  ///< read buffer kept after a large response;
                                               ///< a larger one is freed once it is empty
  std::uint64_t client_id = 0;          ///< informational, sent in every request header

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

/// A server and each of its connections.
struct server_config {
  milliseconds idle_timeout = 120s;     ///< a connection with no traffic this long is closed
  milliseconds close_wait = 90s;        ///< graceful shutdown waits this long for calls in flight
  milliseconds write_timeout = 5s;      ///< a write stuck this long closes the connection
  milliseconds read_timeout = 5s;       ///< a request frame must arrive whole within this once
                                        ///< its first byte has (time spent paused by the server's
                                        ///< own back-pressure does not count); else the
                                        ///< connection is closed
  std::size_t buffer_size = 8 * 1024;   ///< initial read/write buffer size
  std::size_t max_frame_size = default_max_frame_size;  ///< larger requests close the connection
  /// Server-wide: bytes of request frames larger than buffer_size, from the arrival of their
  /// header until they are answered. A frame's whole size is reserved (counted, not
  /// allocated) when its header arrives; while the budget cannot cover it, that connection
  /// stops reading (FIFO) until answers or closes return memory. 0 = unlimited. Must be at
  /// least max_frame_size.
  std::size_t max_buffered_bytes = 256u << 20;
  std::size_t max_inflight = 1024;      ///< requests in flight per connection before the
                                        ///< reader stops reading (back-pressure)
  std::size_t max_pending_write = 4u << 20;  ///< queued response bytes before the reader pauses
  std::size_t max_retained_buffers = 8u << 20;  ///< bytes of large request and answer buffers
                                               ///< (above 16 x buffer_size) a connection keeps
                                               ///< for reuse (8 MiB: 8 requests and answers of
                                               ///< 256 KiB in flight, with room to spare)
  milliseconds timer_tick = 1s;         ///< how often idle connections are checked

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

/// A client_pool: several connections to one address, kept healthy.
struct pool_config {
  std::size_t connections = 1;              ///< connections to the address
  milliseconds health_check_period = 1s;    ///< each connection is pinged this often
  milliseconds reconnect_backoff = 1s;      ///< first wait before reconnecting; doubles per failure
  milliseconds reconnect_backoff_max = 30s; ///< the cap of that wait
  /// While no connection is up, a call waits for one (up to client_config::connect_timeout,
  /// then fails with `unreachable`), or fails with `unreachable` at once when false.
  bool wait_for_connection = true;
  /// At most this many calls wait for a connection; more fail with `overloaded` at once (each
  /// waiting call holds its buffers and handler: the bound keeps memory bounded).
  std::size_t max_waiting = 4096;

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

/// How a failover_pool picks an address for each request.
enum class failover_order {
  round_robin,     ///< the healthy addresses in turn
  primary_backup,  ///< the first healthy address in the list
};

/// A failover_pool: one client_pool per address; retriable failures move to the next one.
struct failover_config {
  failover_order order = failover_order::round_robin;
  /// Further attempts after a retriable error (unreachable, io_err, timeout), each on another
  /// address when there is one. Retries mean at-least-once execution.
  std::size_t retry_limit = 2;
  pool_config pool;  ///< for each address's pool

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
