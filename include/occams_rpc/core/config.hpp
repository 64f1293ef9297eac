// Configuration structs with the documented defaults (mirroring the Rust occams-rpc).
// Aggregates: use designated initializers, e.g. client_config{.window = 256}.
#pragma once

#include <occams_rpc/core/failover_hint.hpp>
#include <occams_rpc/detail/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace occams_rpc {

class call_observer;  // metrics/call_observer.hpp

// No std::chrono names or literals at namespace scope here: a user's `using namespace
// occams_rpc` would take them along.

/// Default largest frame a reader accepts (the v1 format sets none).
inline constexpr std::size_t default_max_frame_size = 64u << 20;

/// One client connection (client_stream).
struct client_config {
  /// A call fails with `timeout` after this long.
  std::chrono::milliseconds call_timeout = std::chrono::seconds{20};
  std::size_t window = 128;             ///< requests in flight per connection
  std::size_t buffer_size = 8 * 1024;   ///< initial read/write buffer size
  /// A response frame must arrive whole within this once its first byte has; a server stalled
  /// mid-frame fails the connection (io_err).
  std::chrono::milliseconds read_timeout = std::chrono::seconds{5};
  /// A write stuck this long fails the connection.
  std::chrono::milliseconds write_timeout = std::chrono::seconds{5};
  /// Connect fails with `unreachable` after this long.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds{10};
  /// How often timeouts are checked (one sweep a tick).
  std::chrono::milliseconds timeout_tick = std::chrono::seconds{1};
  std::size_t max_frame_size = default_max_frame_size;  ///< larger responses close the connection
  std::size_t max_retained_buffers = 8u << 20;  ///< read buffer kept after a large response;
                                               ///< a larger one is freed once it is empty
  std::uint64_t client_id = 0;          ///< informational, sent in every request header
  /// Offer the v1 extensions (deadlines, cancel frames; docs/protocol.md, "v1 extensions")
  /// with a hello request when the connection starts. Off: the connection's bytes are exactly
  /// v1's. On: a server that does not know them answers the hello with an error and the
  /// connection stays plain v1.
  bool extensions = false;
  /// Told of each call's start and end (metrics/call_observer.hpp); null (the default): nothing
  /// is measured or told. Not owned: it must outlive every stream made with this config.
  call_observer* observer = nullptr;

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

/// A server and each of its connections.
struct server_config {
  /// A connection with no traffic this long is closed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds{120};
  /// Graceful shutdown waits this long for calls in flight.
  std::chrono::milliseconds close_wait = std::chrono::seconds{90};
  /// A write stuck this long closes the connection.
  std::chrono::milliseconds write_timeout = std::chrono::seconds{5};
  /// A connection's start step (the TLS handshake of tls_transport; nothing for plain TCP and
  /// Unix sockets) must finish within this, else the connection is closed and logged (the
  /// peer sees its connection closed). Meanwhile it counts as a connection.
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds{10};
  /// A request frame must arrive whole within this once its first byte has (time spent paused by
  /// the server's own back-pressure does not count); else the connection is closed.
  std::chrono::milliseconds read_timeout = std::chrono::seconds{5};
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
                                               ///< (above buffer_size) a connection keeps
                                               ///< for reuse (8 MiB: 8 requests and answers of
                                               ///< 256 KiB in flight, with room to spare)
  /// How often each connection checks its timeouts (idle, read, write, budget wait, close
  /// wait): every timeout fires at the first tick past it.
  std::chrono::milliseconds timer_tick = std::chrono::seconds{1};
  /// Accept the v1 extensions a client offers in a hello (docs/protocol.md, "v1 extensions").
  /// A client that never offers them sees plain v1 either way. Off: the hello goes to the
  /// dispatch like any request, as on a v1 server.
  bool extensions = true;
  /// Told of each call's start and end (metrics/call_observer.hpp), on every connection;
  /// null (the default): nothing is measured or told. Not owned: it must outlive the server.
  call_observer* observer = nullptr;

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

/// A client_pool: several connections to one address, kept healthy.
struct pool_config {
  std::size_t connections = 1;              ///< connections to the address
  /// Each connection is pinged this often.
  std::chrono::milliseconds health_check_period = std::chrono::seconds{1};
  /// First wait before reconnecting; doubles per failure.
  std::chrono::milliseconds reconnect_backoff = std::chrono::seconds{1};
  /// The cap of that wait.
  std::chrono::milliseconds reconnect_backoff_max = std::chrono::seconds{30};
  /// While no connection is up, a call waits for one (up to client_config::connect_timeout,
  /// then fails with `unreachable`), or fails with `unreachable` at once when false.
  bool wait_for_connection = true;
  /// At most this many calls wait for a connection; more fail with `overloaded` at once (each
  /// waiting call holds its buffers and handler: the bound keeps memory bounded). 1..2^20 when
  /// wait_for_connection is true.
  std::size_t max_waiting = 4096;

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

/// How a failover_pool picks an address for each request (docs/pools.md, "Choosing an address").
enum class failover_order {
  round_robin,           ///< the healthy addresses in turn (the default)
  primary_backup,        ///< the first healthy address in the list
  weighted_round_robin,  ///< smooth weighted round robin (nginx's): shares follow the weights, interleaved
  least_in_flight,       ///< power of two choices: of two random addresses, the one with fewer calls in flight
  consistent_hash,       ///< by the call's key on a hash ring, with bounded load; calls without a key: round robin
};

/// Outlier ejection (as gRPC's outlier detection): an address whose calls keep failing is
/// left out of the choice for a while, then tried again. Off by default (both rules 0).
struct outlier_config {
  /// Eject after this many failures in a row (0: rule off).
  std::size_t consecutive_failures = 0;
  /// Eject when at least this percentage of an interval's calls failed (0: rule off; 1..100).
  std::uint32_t failure_rate_percent = 0;
  /// The rate rule looks only at addresses with at least this many calls in the interval.
  std::size_t minimum_volume = 20;
  /// Length of the rate rule's interval; also how often an ejection count decays by one.
  std::chrono::milliseconds interval = std::chrono::seconds{10};
  /// An address ejected for the n-th time in a row stays out n x this long...
  std::chrono::milliseconds base_ejection_time = std::chrono::seconds{30};
  /// ... but never longer than this.
  std::chrono::milliseconds max_ejection_time = std::chrono::seconds{300};
  /// At most this percentage of the addresses is ejected at once (at least one when > 0).
  std::uint32_t max_ejection_percent = 10;
  /// Count a method's own error (a user error answer) as a failure too. By default only
  /// unreachable, io_err and timeout count.
  bool count_method_errors = false;

  bool enabled() const noexcept { return consecutive_failures > 0 || failure_rate_percent > 0; }
};

/// A failover_pool: one client_pool per address; retriable failures move to the next one.
struct failover_config {
  failover_order order = failover_order::round_robin;
  /// Further attempts after a retriable error (unreachable, io_err, timeout), each on another
  /// address when there is one. Retries mean at-least-once execution.
  std::size_t retry_limit = 2;
  pool_config pool;  ///< for each address's pool
  /// consistent_hash: an address takes a key's call only while its calls in flight stay
  /// under hash_load_factor x the average (weighted); else the key passes on along the ring.
  double hash_load_factor = 1.25;
  /// consistent_hash: points on the ring per unit of weight.
  std::size_t hash_points = 100;
  outlier_config outlier;  ///< off by default
  /// Leader redirect: answers that say "retry at X" or "retry elsewhere" followed per call
  /// (within retry_limit); one more fails the call with errc::too_many_redirects.
  std::size_t max_redirects = 3;
  /// Addresses a redirect may add to the set (new ones, while update_addresses has not
  /// replaced the set); a redirect to another new address is not followed.
  std::size_t max_redirect_addresses = 4;
  /// Reads a method's error answer for a redirect (core/failover_hint.hpp); empty: none. A
  /// typed call whose error type declares failover() uses that instead.
  std::function<failover_hint(std::error_code, std::span<const char>)> classify;

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
