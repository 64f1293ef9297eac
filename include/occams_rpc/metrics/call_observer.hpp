// call_observer: told of each call's start and end, on the server and on the client, so that
// tracing (OpenTelemetry or your own), slow-call logs or metrics plug in without the library
// depending on them. metrics::registry (metrics/registry.hpp) is one: Prometheus metrics;
// observer_pair (metrics/observer_pair.hpp) tells two, e.g. the registry and your own.
//
//   struct slow_calls : call_observer {
//     void on_call_end(const call_info& c) noexcept override {
//       if (c.duration > 100ms) log("{} took {} us", c.action, c.duration.count() / 1000);
//     }
//   };
//   slow_calls observer;                                  // outlives the server and streams
//   server_config cfg;  cfg.observer = &observer;         // client_config too
//
// Unset (the default), the library measures nothing and calls nothing: one null test per call.
// Set, each call costs two virtual calls and one or two clock reads on its side. The config
// holds a plain pointer (configs stay literal types): the observer must outlive the server or
// the streams made with it. It is shared by every connection made with the config: on a server or client running on several
// threads it is called from all of them at once, so its state must be atomic, locked or per
// thread. It runs inline on the connection's thread, between reading and writing: keep it short,
// never block, never throw (noexcept: a throw ends the program).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace occams_rpc {

enum class call_side : std::uint8_t { server, client };

/// What happens to connections and waiting calls, outside any one call (on_event).
enum class observer_event : std::uint8_t {
  connection_opened,    ///< server: a connection started (after its start step, e.g. TLS)
  connection_closed,    ///< server: a started connection closed
  connection_rejected,  ///< server: an accepted connection failed or timed out in its start step
  budget_wait,          ///< server: a connection stopped reading to wait for the memory budget
  window_wait,          ///< client: a call waits for a window slot (the window was full)
  reconnect,            ///< client_pool: a connection was made again after one was lost
};
inline constexpr std::size_t observer_event_count = 6;

/// One call as an observer sees it. The views are valid during the observer's call only.
struct call_info {
  call_side side = call_side::server;
  /// The action string ("Service.method"), or empty for a numeric action (then numeric_action).
  std::string_view action;
  std::uint32_t numeric_action = 0;
  std::uint64_t seq = 0;
  // --- set in on_call_end only ---
  /// From the request read (server) or the call made (client) to the answer queued for
  /// writing (server) or the completion (client).
  std::chrono::nanoseconds duration{0};
  /// Empty: OK. errc::remote_error: the method's own string error (flag 2); category
  /// remote_category(): its error code (flag 1); else the framework error (errc::timeout,
  /// errc::method_not_found, errc::cancelled, errc::io_err...).
  std::error_code outcome;
  /// The bytes of the request frame and of the response frame, headers included. On the
  /// client, response_bytes is the frame that arrived, whatever the outcome (an rpc_* error
  /// from the server counts its frame), and 0 when none did (timeout, cancel, lost connection).
  std::size_t request_bytes = 0;
  std::size_t response_bytes = 0;
};

class call_observer {
 public:
  virtual ~call_observer() = default;
  /// A server handed a request to its dispatch; a client queued a call (it may then wait for
  /// a window slot). Not called for pings.
  virtual void on_call_start(const call_info&) noexcept {}
  /// A server queued the answer; a client's call completed (value, error, timeout, cancel).
  virtual void on_call_end(const call_info&) noexcept = 0;
  /// A connection or waiting event (optional to override); same threads and rules as above.
  virtual void on_event(call_side, observer_event) noexcept {}
};

}  // namespace occams_rpc
