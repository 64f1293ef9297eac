// server_session: everything one server connection decides, without I/O (sans-io).
//
// The session owns the request frame reader and its read deadline, the request slots and
// their answers, the two answer batches (one filling, one being written), the pings answered,
// back-pressure (max_inflight, max_pending_write), the connection's share of the server-wide
// memory budget and its wait for it, the idle, read, write and budget-wait timeouts, the drain
// of a graceful shutdown, and close. Events go in (bytes read, read ended, write done, tick,
// an answer, shutdown, abort, budget granted); what the I/O shell must do comes out: where to
// read (read_buffer, wants_read), the batch to write (has_write, begin_write), whether to
// close the transport (take_close_socket), and the requests to dispatch (next_request).
// There is no executor, socket, coroutine or clock in here: time is an argument.
//
// Requests come out lazily: after on_read() (and whenever has_request() says so) the shell
// calls next_request(now) until it returns null, and runs the dispatch on each slot. Frames
// are cut one at a time, so a request answered inline gives its slot back before the next
// frame is cut (one slot, hot in cache, serves a whole batch of inline calls), and the
// back-pressure check runs after every frame, as the reader did.
#pragma once

#include <occams_rpc/core/buffer.hpp>
#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/detail/config.hpp>
#include <occams_rpc/proto/extensions.hpp>
#include <occams_rpc/proto/frame.hpp>
#include <occams_rpc/proto/frame_deadline.hpp>
#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/proto/header.hpp>
#include <occams_rpc/session/memory_budget.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace occams_rpc::session {

using clock = std::chrono::steady_clock;

/// Why a request's handler is asked to stop, and its answer will be dropped.
enum class cancel_reason : std::uint8_t {
  none,
  cancelled,  ///< the client sent a cancel frame for it
  expired,    ///< the caller's deadline passed
  closed,     ///< the connection died (closed without a drain)
};

/// One request, pooled per connection: its bytes and its answer, reused from call to call.
struct request_slot {
  proto::request_header header;
  /// The caller's deadline (a request of the deadline extension), else time_point::max().
  clock::time_point deadline = clock::time_point::max();
  /// Set by the session (on the connection's executor); read by the request's holder from
  /// any thread.
  std::atomic<cancel_reason> cancel{cancel_reason::none};
  bool answered = false;           // answered, parked until its write
  void* handler_link = nullptr;    // the shell's: how to reach the handler's cancellation
  byte_buffer action;
  byte_buffer msg;
  byte_buffer blob;
  // The answer.
  proto::response_flag flag = proto::response_flag::ok;
  std::uint32_t error_code = 0;
  byte_buffer resp_msg;   // OK msg, or the error string (flag 2)
  byte_buffer resp_blob;  // OK blob
  request_slot* next_free = nullptr;
  request_slot* next_same_bucket = nullptr;  // the seq index's chain (cancel frames)
  bool indexed = false;                      // in the seq index: cancellable by a cancel frame
  std::size_t retained = 0;  // bytes of large buffers counted against max_retained_buffers
  std::size_t reserved = 0;  // bytes of the server's memory budget held until the answer
  bool in_use = false;       // handed out, not yet given back
  clock::time_point started{};  // when it was dispatched: set by the shell for a call_observer
};

/// The encoder of an answer's msg, type-erased: writes into `out`; true when it failed (a
/// bool, not a std::error_code: building one costs a call per answer, and only failure counts).
struct msg_writer {
  void* ctx;
  bool (*write)(void* ctx, byte_buffer& out);
};

class server_session {
 public:
  /// `cfg` must be valid (server_config::problem()); `budget` is the server's and must
  /// outlive the session; `peer` names the peer in log messages.
  OCCAMS_RPC_DECL server_session(const server_config& cfg, logger log, std::string peer, memory_budget& budget,
                                 clock::time_point now);
  OCCAMS_RPC_DECL ~server_session();
  server_session(const server_session&) = delete;
  server_session& operator=(const server_session&) = delete;

  // --- requests out ---

  /// next_request() has work: frames read and not cut yet, and no back-pressure.
  bool has_request() const noexcept { return !closed_ && cut_pending_ && !(paused_ && must_pause()); }
  /// Cuts the next request out of the bytes read, or null: nothing whole is left (then the
  /// read deadline and the memory budget are settled), back-pressure (resumes when answers
  /// and writes make room: has_request()), or the connection closed (a malformed frame).
  /// Pings are answered here and never come out. The slot stays in use until answered.
  /// Throws std::bad_alloc if a slot cannot be filled (its slot and budget go back first).
  OCCAMS_RPC_DECL request_slot* next_request(clock::time_point now);
  /// The next request whose handler must be told to stop (cancel frame, deadline passed,
  /// connection died), or null. The shell runs it after each event. Its answer, when it
  /// comes, is dropped.
  OCCAMS_RPC_DECL request_slot* next_cancelled() noexcept;

  // --- answers in ---

  /// Answers OK by writing the msg straight into the pending batch (`blob` is copied), and
  /// gives the slot back. False when closed: answer through the slot instead. An encode
  /// failure answers rpc_encode; an exception from `msg` leaves no half frame and propagates
  /// (the slot stays unanswered).
  OCCAMS_RPC_DECL bool answer_inline(request_slot& s, msg_writer msg, std::span<const char> blob);
  /// The slot's answer (flag, error_code, resp_msg, resp_blob) is set: queues it. A large msg
  /// or blob is written from the slot, which is given back after that write. After close the
  /// answer is dropped and the slot given back.
  OCCAMS_RPC_DECL void answer(request_slot& s);

  // --- server events ---

  /// Graceful shutdown at `now`: reads nothing more; the requests already read are answered
  /// and written, then the connection closes (its FIN first: close_gracefully()). A drain
  /// still going at the first tick past now + close_wait is closed there (answers lost).
  OCCAMS_RPC_DECL void shutdown(clock::time_point now);
  /// Closes at once, logging "closing connection from P: <why>"; answers not yet written
  /// are lost.
  OCCAMS_RPC_DECL void abort(std::string_view why, log_level level = log_level::info);
  /// The budget wait's grant: the callback runs inside another connection's event (from
  /// memory_budget::give_back); it must not call into this session's budget but may call
  /// on_budget_granted().
  void set_budget_listener(void (*fn)(void* ctx), void* ctx) noexcept {
    budget_wait_.on_granted = fn;
    budget_wait_.ctx = ctx;
  }
  /// The memory budget granted what this connection waited for: it reads again.
  OCCAMS_RPC_DECL void on_budget_granted(clock::time_point now);
  /// The execution context is being destroyed: closed without a word, answers parked for a
  /// write that never completes are dropped. No transport close is asked for.
  OCCAMS_RPC_DECL void context_gone() noexcept;

  // --- the I/O shell's interface ---

  /// Where the next read lands. May throw std::bad_alloc.
  std::span<char> read_buffer() { return reader_.prepare(cfg_.buffer_size / 2); }
  /// `n` bytes arrived in read_buffer(): call next_request() until it returns null.
  OCCAMS_RPC_DECL void on_read(std::size_t n, clock::time_point now);
  /// The read failed or the peer closed its side: the requests read are still answered
  /// (a half-closed client gets its answers), then the connection closes.
  OCCAMS_RPC_DECL void on_read_error(std::error_code ec);
  /// Read more: open, not draining, every frame read cut, not waiting for the budget.
  bool wants_read() const noexcept { return !closed_ && !draining_ && !cut_pending_ && !waiting_for_budget_; }
  /// A batch waits to be written and no write is under way.
  bool has_write() const noexcept { return !closed_ && !writing_now_ && !pending_.empty(); }
  /// Takes the pending batch for one gathered write. Precondition: has_write().
  OCCAMS_RPC_DECL std::span<const std::span<const char>> begin_write(clock::time_point now);
  /// The write of begin_write()'s batch finished; the slots it referenced are given back.
  OCCAMS_RPC_DECL void on_write_done(std::error_code ec, clock::time_point now);
  /// One tick: read timeout (a request frame incomplete for read_timeout, unless
  /// `bytes_in_socket` are waiting to be read), write stuck, budget wait over idle_timeout,
  /// idle timeout. Each closes the connection with its logged reason.
  OCCAMS_RPC_DECL void on_tick(clock::time_point now, std::size_t bytes_in_socket);
  /// Whether on_tick(now, ...) would look at bytes_in_socket (the shell asks the transport
  /// only then: it costs a system call).
  bool read_deadline_passed(clock::time_point now) const noexcept {
    return !closed_ && frame_deadline_.expired(now, cfg_.read_timeout);
  }
  /// True once, when the transport must be closed.
  bool take_close_socket() noexcept { return std::exchange(close_socket_, false); }
  /// The close ends a drain: send FIN (shutdown_send) before closing.
  bool close_gracefully() const noexcept { return graceful_; }
  /// Closed, and no write under way: the shell's loops end.
  bool finished() const noexcept { return closed_ && !writing_now_; }

  // --- observers ---

  bool closed() const noexcept { return closed_; }
  bool draining() const noexcept { return draining_; }
  /// Requests handed out and not yet given back (answered ones wait for their write when
  /// the batch references their buffers).
  std::size_t in_flight() const noexcept { return in_use_; }
  bool writing() const noexcept { return writing_now_; }
  bool waiting_for_budget() const noexcept { return waiting_for_budget_; }
  /// Back-pressure holds the reader.
  bool paused() const noexcept { return paused_; }
  /// Budget bytes held for the frame being received.
  std::size_t reserved() const noexcept { return reserved_; }
  /// Bytes queued for the next write.
  std::size_t pending_bytes() const noexcept { return pending_.bytes(); }
  std::size_t read_capacity() const noexcept { return reader_.capacity(); }
  const std::string& peer() const noexcept { return peer_; }
  const server_config& config() const noexcept { return cfg_; }
  /// The v1 extensions were negotiated (a hello was answered): their frames are read.
  bool extensions_on() const noexcept { return ext_on_; }
  /// Answers dropped because their request was cancelled or expired.
  std::size_t dropped_answers() const noexcept { return dropped_answers_; }
  /// Requests compared by the cancel frames' lookups so far: about one per cancel frame
  /// whatever the number in flight (tests count a flood's work with it).
  std::size_t cancel_lookup_steps() const noexcept { return cancel_lookup_steps_; }

 private:
  bool must_pause() const noexcept {
    return in_use_ >= cfg_.max_inflight || pending_.bytes() >= cfg_.max_pending_write;
  }
  request_slot* take_request(const proto::request_frame& f);
  bool on_extension_frame(clock::time_point now, request_slot*& out);
  void answer_hello();
  void cancel_request(request_slot& s, cancel_reason why) noexcept;
  std::size_t seq_bucket(std::uint64_t seq) const noexcept;
  void index_seq(request_slot& s);
  void unindex_seq(request_slot& s) noexcept;
  request_slot* find_cancellable(std::uint64_t seq) noexcept;
  void cancel_in_flight() noexcept;
  bool drop_if_cancelled(request_slot& s) noexcept;
  void drop_answer(request_slot& s) noexcept;
  request_slot* acquire();
  request_slot* new_slot();
  void release(request_slot* s) noexcept;
  void release_memory(request_slot& s) noexcept;
  void retain_or_free(request_slot& s) noexcept;
  void release_reader_memory() noexcept;
  void reserve_for_pending_frame(clock::time_point now);
  void give_back_reservation() noexcept;
  void stop_waiting_for_budget() noexcept;
  void maybe_close() noexcept;
  void close(std::string_view why, log_level level);
  void close_now(bool graceful) noexcept;

  server_config cfg_;
  logger log_;
  std::string peer_;
  memory_budget& budget_;
  memory_budget::waiter budget_wait_;
  std::size_t reserved_ = 0;  // budget bytes held for the frame being received
  bool waiting_for_budget_ = false;
  clock::time_point budget_wait_started_{};
  proto::request_reader reader_;
  proto::frame_deadline frame_deadline_;  // read_timeout of a request frame
  proto::request_frame frame_;
  std::error_code frame_error_;
  proto::frame_writer pending_;  // the batch answers go into
  proto::frame_writer writing_;  // the batch being written
  std::size_t shrink_limit_;
  clock::time_point write_started_{};
  std::vector<request_slot*> pending_slots_;  // slots whose buffers the pending batch references
  std::vector<request_slot*> writing_slots_;  // and the batch being written
  std::vector<std::unique_ptr<request_slot>> slots_;  // every slot ever made
  request_slot* free_ = nullptr;
  std::size_t retained_ = 0;  // large buffer bytes kept by the slots (max_retained_buffers)
  std::size_t in_use_ = 0;
  clock::time_point last_activity_;
  bool cut_pending_ = false;  // bytes read that may hold whole frames not cut yet
  bool completed_ = false;    // a frame ended since the last read
  bool paused_ = false;       // back-pressure stopped the cutting
  bool writing_now_ = false;
  bool draining_ = false;
  std::optional<clock::time_point> close_wait_over_;  // set by shutdown()
  bool closed_ = false;
  bool close_socket_ = false;
  bool graceful_ = false;
  bool ext_on_ = false;
  std::vector<std::pair<request_slot*, std::uint64_t>> cancelled_;  // for the shell: slot, seq
  std::size_t cancelled_taken_ = 0;
  std::size_t dropped_answers_ = 0;
  // Requests a cancel frame may name, by seq (extensions on only): chained buckets, at least
  // twice as many as slots, so a lookup compares about one slot. Keyed per session, so that a
  // peer cannot aim its seqs at one bucket. Grows with the slots, never per request.
  std::vector<request_slot*> by_seq_;
  std::uint64_t seq_key_;
  std::size_t cancel_lookup_steps_ = 0;
};

}  // namespace occams_rpc::session

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/session/impl/server_session.ipp>
#endif
