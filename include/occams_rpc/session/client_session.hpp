// client_session: everything one client connection decides, without I/O (sans-io).
//
// The session owns the in-flight table, the window and its FIFO of waiting calls, the timeout
// wheel, the response reader and its read deadline, the two write batches and their
// generations, the pings in flight and the open/closing/closed state. Events go in (a call, a
// cancel, bytes read, a write done, a tick, close, abort, the peer gone); what the I/O shell
// must do comes out: the batch to write (begin_write), where to read (read_buffer), whether
// to close the transport (take_close_socket), and two queues of completions: calls that are
// done (next_done) and waiting calls that got a window slot or were refused (next_granted).
// There is no executor, socket, coroutine or clock in here: time is an argument.
//
// Handlers are not kept here. The shell keeps each call's handler in its own array at
// index_of(seq), and a waiting call's handler in its own object derived from waiting_call.
//
// A completed call stays in the table (holding its response and its window slot) until the
// shell has taken its handler and response and calls release(): releasing hands the slot to
// the first waiting call, which then starts (next_granted), so a handler that makes a new call
// finds the window as the callers before it left it (FIFO, no overtaking).
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/detail/config.hpp>
#include <occams_rpc/proto/extensions.hpp>
#include <occams_rpc/proto/frame_deadline.hpp>
#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/proto/inflight_table.hpp>
#include <occams_rpc/proto/timeout_wheel.hpp>
#include <occams_rpc/proto/window_throttler.hpp>
#include <occams_rpc/stream/call_response.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

namespace occams_rpc::session {

using clock = std::chrono::steady_clock;

/// One call (or ping) in flight: an entry of the in-flight table and of the timeout wheel.
struct client_call : proto::wheel_hook {
  std::uint64_t seq = 0;
  bool is_ping = false;
  bool is_hello = false;     // the extensions' hello: the session's own, no handler in the shell
  bool refs_caller = false;  // the request's msg or blob is referenced, not copied, by a batch
  bool done = false;         // completed: in the done queue, or waiting for its batch (abandoned)
  bool abandoned = false;    // completed early; waits until its batch is written
  std::uint64_t batch_gen = 0;
  std::error_code result;          // valid once done
  std::uint32_t response_bytes = 0;  // the size of the response frame that ended it (0: none came)
  call_response response;          // a by-value call's response
  call_response* into = nullptr;   // where the response goes: &response, or the caller's storage
  client_call* next_done = nullptr;
};

class client_session;

/// A call waiting for a window slot. The shell derives from it to keep the call's handler and
/// owns it; the session links it into its FIFO and hands it back through next_granted().
struct waiting_call : proto::window_throttler::waiter {
  proto::action act{0u};
  std::span<const char> msg, blob;
  call_response response;          // a by-value call's response, until it starts
  call_response* into = nullptr;   // null: a by-value call
  clock::time_point deadline = clock::time_point::max();  // the caller's, if any
  // Set when the session hands it back: the call it became (seq), or why it was refused.
  std::uint64_t seq = 0;
  std::error_code refused;
  client_session* session = nullptr;
  waiting_call* next_granted = nullptr;
  call_response* target() noexcept { return into ? into : &response; }
};

class client_session {
 public:
  enum class state { open, closing, closed };
  /// The v1 extensions on this connection: not offered (plain v1), offered (the hello's
  /// answer is awaited: requests go out as plain v1 meanwhile), on, or refused (plain v1).
  enum class extensions_state { off, offered, on, refused };
  /// Pings in flight at once, beyond the window.
  static constexpr std::size_t max_pings = 16;

  /// `cfg` must be valid (client_config::problem()).
  OCCAMS_RPC_DECL client_session(const client_config& cfg, logger log);
  client_session(const client_session&) = delete;
  client_session& operator=(const client_session&) = delete;

  // --- calls ---

  /// Queues a request if a window slot is free and nobody waits: its entry, whose handler the
  /// shell keeps at index_of(seq). Null when the window is full: queue a waiting_call with
  /// wait(). Precondition: current_state() == open.
  ///
  /// `deadline` (time_point::max() for none) shortens the call's timeout; `now` is read only
  /// when the call has a deadline or needs_time() (the shell reads the clock only then).
  /// Once the deadline extension is on, the request carries the caller's remaining time:
  /// the sooner of call_timeout and `deadline`.
  OCCAMS_RPC_DECL client_call* start_call(proto::action act, std::span<const char> msg, std::span<const char> blob,
                                          call_response* into, call_response&& own,
                                          clock::time_point now = {},
                                          clock::time_point deadline = clock::time_point::max());
  /// Whether start_call needs the time even without a deadline (deadlines are on the wire).
  bool needs_time() const noexcept { return (features_ & proto::ext::feature_deadline) != 0; }
  /// Queues `w` for a window slot; it comes back through next_granted(). Precondition: open.
  OCCAMS_RPC_DECL void wait(waiting_call& w);
  /// Queues a ping. Null when max_pings are in flight (the caller fails it with overloaded).
  /// Precondition: open.
  OCCAMS_RPC_DECL client_call* start_ping();
  /// The caller gave up: the call completes with errc::cancelled (nothing if already done).
  /// True if it was in flight (not done yet). With the cancel extension on, a cancel frame
  /// for its seq tells the server.
  OCCAMS_RPC_DECL bool cancel(std::uint64_t seq);
  /// Takes `w` out of the queue. False if it is not queued (already granted or refused).
  OCCAMS_RPC_DECL bool cancel_waiting(waiting_call& w);

  /// Refuses new calls; the calls made finish (or time out), then the transport closes.
  OCCAMS_RPC_DECL void close();
  /// Fails every call and waiting call with `ec` and closes.
  OCCAMS_RPC_DECL void abort(std::error_code ec);

  // --- completions out ---

  /// The next completed call (FIFO), or null. Its result is `result`, its response in
  /// `*into` (null for a ping). The shell takes its handler (and a by-value response) and
  /// calls release().
  OCCAMS_RPC_DECL client_call* next_done() noexcept;
  /// Frees a call taken from next_done(): its entry and its window slot (which may start a
  /// waiting call: check next_granted()).
  OCCAMS_RPC_DECL void release(client_call& c);
  /// The next waiting call handed back: started as call `seq`, or refused (seq 0, `refused`).
  OCCAMS_RPC_DECL waiting_call* next_granted() noexcept;

  // --- the I/O shell's interface ---

  /// Where the next read lands.
  std::span<char> read_buffer() { return reader_.prepare(cfg_.buffer_size / 2); }
  /// `n` bytes arrived in read_buffer(): frames are cut and their calls completed.
  OCCAMS_RPC_DECL void on_read(std::size_t n, clock::time_point now);
  /// The read failed or the server closed.
  OCCAMS_RPC_DECL void on_read_error(std::error_code ec);
  /// A client reads until it is closed.
  bool wants_read() const noexcept { return state_ != state::closed; }
  /// A batch waits to be written and no write is under way.
  bool has_write() const noexcept { return state_ != state::closed && !writing_now_ && !pending_.empty(); }
  /// Takes the pending batch for writing (in one gathered write). Precondition: has_write().
  OCCAMS_RPC_DECL std::span<const std::span<const char>> begin_write(clock::time_point now);
  /// The write of begin_write()'s batch finished.
  OCCAMS_RPC_DECL void on_write_done(std::error_code ec, clock::time_point now);
  /// One tick: calls past their timeout fail, a stuck write or a stalled response frame fails
  /// the connection. `bytes_in_socket`: received and not yet read (a stall that has arrived
  /// is not one).
  OCCAMS_RPC_DECL void on_tick(clock::time_point now, std::size_t bytes_in_socket);
  /// Whether on_tick(now, ...) would look at bytes_in_socket (a response frame has been
  /// incomplete for read_timeout): the shell asks the transport only then.
  bool read_deadline_passed(clock::time_point now) const noexcept {
    return state_ != state::closed && frame_deadline_.expired(now, cfg_.read_timeout);
  }
  /// True once, when the transport must be closed.
  bool take_close_socket() noexcept { return std::exchange(close_socket_, false); }
  /// A close() whose calls all finished ends the connection gracefully (TLS: close_notify, so
  /// the server reads a clean end of stream); a failure or an abort closes at once.
  bool close_gracefully() const noexcept { return graceful_ && !failure_; }
  /// Closed, and no write under way: the shell's loops end and close waiters complete.
  bool finished() const noexcept { return state_ == state::closed && !writing_now_; }

  // --- observers ---

  state current_state() const noexcept { return state_; }
  bool closed() const noexcept { return state_ == state::closed; }
  const client_config& config() const noexcept { return cfg_; }
  /// Why new calls fail: the failure (io_err; the abort reason), else errc::closed.
  std::error_code closed_reason() const noexcept { return failure_ ? failure_ : make_error_code(errc::closed); }
  std::size_t in_flight() const noexcept { return table_.size(); }
  std::size_t max_in_flight_seen() const noexcept { return max_in_flight_seen_; }
  std::size_t waiting() const noexcept { return window_.waiting(); }
  /// How many entries the shell's handler array needs, and where a call's handler goes.
  std::size_t slot_count() const noexcept { return table_.slot_count(); }
  std::size_t index_of(std::uint64_t seq) const noexcept { return table_.slot_index(seq); }
  bool writing() const noexcept { return writing_now_; }
  extensions_state extensions() const noexcept { return ext_; }
  /// The extension features the server accepted (proto::ext::feature_*), 0 until then.
  std::uint32_t features() const noexcept { return features_; }

 private:
  client_call& queue_request(proto::action act, std::span<const char> msg, std::span<const char> blob,
                             call_response* into, call_response&& own, clock::time_point now,
                             clock::time_point deadline);
  void complete(client_call& c, std::error_code ec);
  void push_done(client_call& c, std::error_code ec);
  void push_granted(waiting_call& w);
  static void on_window_slot(proto::window_throttler::waiter* w);
  void on_response(const proto::response_frame& f);
  void offer_extensions();
  void end_hello(client_call& c, const proto::response_frame* answer);
  std::uint64_t ticks_until(clock::time_point now, clock::time_point deadline) const noexcept;
  void release_abandoned();
  void maybe_finish_close();
  void fail(std::error_code ec);
  void forget_unwritten();

  client_config cfg_;
  logger log_;
  proto::response_reader reader_;
  proto::frame_deadline frame_deadline_;  // read_timeout of a response frame
  proto::frame_writer pending_;           // the batch calls go into
  proto::frame_writer writing_;           // the batch being written
  std::size_t shrink_limit_;
  bool writing_now_ = false;
  clock::time_point write_started_{};
  proto::inflight_table<client_call> table_;
  proto::window_throttler window_;
  proto::timeout_wheel<client_call> wheel_;
  std::uint64_t timeout_ticks_;
  std::uint64_t pending_gen_ = 1;  // the batch calls are being added to
  std::uint64_t written_gen_ = 0;  // the last batch whose write completed
  std::size_t abandoned_ = 0;
  std::size_t pings_ = 0;  // in the table (at most max_pings)
  client_call* done_head_ = nullptr;
  client_call* done_tail_ = nullptr;
  waiting_call* granted_head_ = nullptr;
  waiting_call* granted_tail_ = nullptr;
  state state_ = state::open;
  bool close_socket_ = false;
  bool graceful_ = false;  // closed by close() once its calls finished
  std::error_code failure_;
  std::size_t max_in_flight_seen_ = 0;
  proto::response_frame frame_;
  extensions_state ext_ = extensions_state::off;
  std::uint32_t features_ = 0;        // accepted by the server
  std::uint64_t hello_seq_ = 0;       // while offered
  clock::time_point last_now_{};      // the latest time an event brought (for waiting calls)
};

}  // namespace occams_rpc::session

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/session/impl/client_session.ipp>
#endif
