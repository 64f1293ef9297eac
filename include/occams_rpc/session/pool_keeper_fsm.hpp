// The decisions of one client_pool connection's keeper, sans-io: when to connect, how long to
// back off after a failure, when a health-check ping is due, when to drop a connection, when
// to stop. Events go in with the time they happened; each returns the one thing the keeper's
// coroutine does next (the shape of Boost.MySQL's sansio algorithms and Boost.Redis's
// exec_fsm). No executor, socket, coroutine or clock here: the shell owns the connection and
// the timer, and tests drive the machine with invented times.
//
//   start ──► connect ──ok──► up ──ping due──► ping ──ok──► up ...
//               │ failed            │ lost        │ failed
//               ▼                   ▼             ▼
//             wait backoff ◄── drop (abort the connection) ◄┘
//               │ (backoff doubles per failure up to its cap; a connect that succeeds resets it)
//               └──► connect ...
//   close(), in any state ──► done (every later event answers done too)
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/detail/config.hpp>

#include <chrono>
#include <cstddef>
#include <system_error>

namespace occams_rpc::session {

/// What the keeper's coroutine does next.
enum class keeper_step {
  connect,  ///< connect now; report on_connected or on_connect_failed
  wait,     ///< wait until `until`; then on_timer, or on_connection_lost if the connection
            ///< that was up has closed meanwhile
  ping,     ///< ping the connection now; report on_ping_ok or on_ping_failed
  drop,     ///< abort the connection (calls on it fail with io_err, retriable); report on_dropped
  done,     ///< stop; close gracefully any connection the keeper still holds
};

struct keeper_action {
  keeper_step step;
  std::chrono::steady_clock::time_point until{};  ///< for keeper_step::wait
};

/// One connection's keeper. Not thread-safe: the shell drives it on the pool's executor.
class pool_keeper_fsm {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  enum class state { idle, connecting, backing_off, up, pinging, dropping, closed };

  /// Uses health_check_period, reconnect_backoff and reconnect_backoff_max (a validated config).
  explicit pool_keeper_fsm(const pool_config& cfg) noexcept
      : period_(cfg.health_check_period),
        backoff_first_(cfg.reconnect_backoff),
        backoff_max_(cfg.reconnect_backoff_max),
        backoff_(cfg.reconnect_backoff) {}

  /// The keeper starts: connect at once.
  OCCAMS_RPC_DECL keeper_action start(time_point now) noexcept;
  /// The connect succeeded: healthy; the first ping is due one health_check_period from now.
  /// The backoff goes back to reconnect_backoff.
  OCCAMS_RPC_DECL keeper_action on_connected(time_point now) noexcept;
  /// The connect failed: wait the backoff, which doubles (up to its cap) for the next failure.
  OCCAMS_RPC_DECL keeper_action on_connect_failed(time_point now) noexcept;
  /// The last wait ended: connect (after a backoff) or ping (while up) once it is due; a
  /// wait that ended early is waited again to the same deadline.
  OCCAMS_RPC_DECL keeper_action on_timer(time_point now) noexcept;
  /// The health-check ping was answered: the next one is due a period from now.
  OCCAMS_RPC_DECL keeper_action on_ping_ok(time_point now) noexcept;
  /// The health-check ping failed (timed out, connection failed): drop the connection.
  OCCAMS_RPC_DECL keeper_action on_ping_failed(time_point now) noexcept;
  /// The connection that was up closed by itself (peer closed, read or write failed): drop it.
  OCCAMS_RPC_DECL keeper_action on_connection_lost(time_point now) noexcept;
  /// The shell dropped the connection: wait the backoff, then reconnect.
  OCCAMS_RPC_DECL keeper_action on_dropped(time_point now) noexcept;
  /// The pool closes: done, now and for every later event. The shell stops any wait itself.
  OCCAMS_RPC_DECL keeper_action close() noexcept;

  state current_state() const noexcept { return state_; }
  /// True while the connection is up (up or pinging): calls may be sent on it.
  bool healthy() const noexcept { return state_ == state::up || state_ == state::pinging; }
  bool closed() const noexcept { return state_ == state::closed; }
  /// The wait the next failure will cost.
  std::chrono::milliseconds next_backoff() const noexcept { return backoff_; }

 private:
  keeper_action back_off(time_point now) noexcept;
  keeper_action wait_for_ping(time_point now) noexcept;

  std::chrono::milliseconds period_;
  std::chrono::milliseconds backoff_first_;
  std::chrono::milliseconds backoff_max_;
  std::chrono::milliseconds backoff_;
  time_point deadline_{};  // backing_off: reconnect then; up: ping then
  state state_ = state::idle;
};

/// Whether a pool call that found no connection up may wait for one: errc::closed after
/// close(), errc::unreachable when the pool does not wait (wait_for_connection = false),
/// errc::overloaded when max_waiting calls wait already; no error: it waits.
OCCAMS_RPC_DECL std::error_code admit_waiting_call(const pool_config& cfg, bool closed, std::size_t waiting) noexcept;

}  // namespace occams_rpc::session

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/session/impl/pool_keeper_fsm.ipp>
#endif
