// server_session's bodies (compiled once in the compiled mode).
#pragma once

#include <occams_rpc/metrics/call_observer.hpp>
#include <occams_rpc/session/server_session.hpp>

#include <boost/asio/error.hpp>  // the eof error code only
#include <boost/system/error_code.hpp>

#include <fmt/format.h>

#include <bit>
#include <random>

namespace occams_rpc::session {

namespace detail {
/// The process's secret for the sessions' seq index keys.
inline std::uint64_t seq_index_seed() noexcept {
  static const std::uint64_t seed = [] {
    auto s = static_cast<std::uint64_t>(clock::now().time_since_epoch().count());
    try {
      std::random_device rd;
      s ^= (static_cast<std::uint64_t>(rd()) << 32) | rd();
    } catch (...) {  // no entropy source: the clock alone
    }
    return s;
  }();
  return seed;
}
}  // namespace detail

OCCAMS_RPC_DECL server_session::server_session(const server_config& cfg, logger log, std::string peer,
                                               memory_budget& budget, clock::time_point now)
    : cfg_(cfg),
      log_(std::move(log)),
      peer_(std::move(peer)),
      budget_(budget),
      reader_(cfg.max_frame_size, cfg.buffer_size),
      pending_(cfg.buffer_size),
      writing_(cfg.buffer_size),
      // A batch that grew past 16 buffers keeps its memory while large batches follow and
      // shrinks after the first small one (no reallocation per batch, no memory pinned).
      shrink_limit_(cfg.buffer_size * 16),
      last_activity_(now),
      seq_key_(detail::seq_index_seed() ^ (reinterpret_cast<std::uintptr_t>(this) * 0x9e3779b97f4a7c15ull)) {}

OCCAMS_RPC_DECL server_session::~server_session() {
  stop_waiting_for_budget();
  give_back_reservation();
}

// --- requests ---

OCCAMS_RPC_DECL request_slot* server_session::next_request(clock::time_point now) {
  if (closed_ || !cut_pending_) return nullptr;
  for (;;) {
    // Back-pressure, checked before each frame: too many requests in flight or too many
    // answers unwritten. The read deadline does not run meanwhile.
    if (must_pause()) {
      if (!paused_) {
        paused_ = true;
        frame_deadline_.pause();
      }
      return nullptr;
    }
    paused_ = false;
    auto st = reader_.next(frame_, frame_error_);  // a member: an error_code costs a call to construct
    if (st == proto::read_status::need_more) break;
    if (st == proto::read_status::error) {
      close(fmt::format("bad request frame: {}", frame_error_.message()), log_level::warn);
      return nullptr;
    }
    completed_ = true;
    if (ext_on_ && (frame_.header.format & proto::ext::extension_bit)) {
      request_slot* r = nullptr;
      if (on_extension_frame(now, r)) return r;
      continue;
    }
    if (!frame_.is_ping()) {
      if (!cfg_.extensions || !frame_.header.has_string_action() || frame_.action != proto::ext::hello_action)
        return take_request(frame_);
      answer_hello();
      continue;
    }
    give_back_reservation();
    pending_.add_response(frame_.header.seq, {});
  }
  // Every whole frame is cut: time the partial one, shrink the read buffer after a large
  // frame, and reserve the next large frame's size before its body is read.
  cut_pending_ = false;
  release_reader_memory();
  if (draining_) {  // nothing more is read: no frame to time or reserve for
    frame_deadline_.pause();
    maybe_close();
    return nullptr;
  }
  frame_deadline_.after_read(reader_.buffered() > 0, completed_, now);
  reserve_for_pending_frame(now);
  return nullptr;
}

// Inlined into next_request (once per request): a call of its own cost more than its body.
[[gnu::always_inline]] inline request_slot* server_session::take_request(const proto::request_frame& f) {
  // The frame's reservation goes with its request until the answer; a large frame that came
  // whole in one read is counted now.
  std::size_t size = proto::request_header_size + f.header.body_len();
  std::size_t reserved = std::exchange(reserved_, 0);
  if (reserved == 0 && size > cfg_.buffer_size) {
    budget_.take_anyway(size);
    reserved = size;
  }
  request_slot* s = nullptr;
  try {
    s = acquire();
    s->header = f.header;
    s->action.clear();
    s->action.append(f.action);
    s->msg.clear();
    s->msg.append(f.msg);
    s->blob.clear();
    s->blob.append(f.blob);
  } catch (...) {  // std::bad_alloc: the reservation and the slot go back before the shell fails
    if (s) release(s);
    if (reserved) budget_.give_back(reserved);
    throw;
  }
  s->reserved = reserved;
  if (ext_on_) {  // a cancel frame may name it
    try {
      index_seq(*s);
    } catch (...) {  // std::bad_alloc growing the index
      release(s);
      throw;
    }
  }
  return s;
}

// --- the seq index ---

inline std::size_t server_session::seq_bucket(std::uint64_t seq) const noexcept {
  std::uint64_t x = seq ^ seq_key_;  // splitmix64's finaliser
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<std::size_t>(x) & (by_seq_.size() - 1);
}

inline void server_session::index_seq(request_slot& s) {
  if (by_seq_.size() < 2 * slots_.size()) {  // a new slot was made: grow, and rehash
    std::vector<request_slot*> grown(std::bit_ceil(std::max<std::size_t>(16, 4 * slots_.size())), nullptr);
    by_seq_.swap(grown);
    for (auto& sp : slots_) {
      if (!sp->indexed) continue;
      request_slot*& head = by_seq_[seq_bucket(sp->header.seq)];
      sp->next_same_bucket = std::exchange(head, sp.get());
    }
  }
  request_slot*& head = by_seq_[seq_bucket(s.header.seq)];
  s.next_same_bucket = std::exchange(head, &s);
  s.indexed = true;
}

inline void server_session::unindex_seq(request_slot& s) noexcept {
  if (!s.indexed) return;
  s.indexed = false;
  for (request_slot** p = &by_seq_[seq_bucket(s.header.seq)]; *p; p = &(*p)->next_same_bucket) {
    if (*p == &s) {
      *p = s.next_same_bucket;
      return;
    }
  }
}

/// The request in flight with this seq that is neither answered nor cancelled, if any.
inline request_slot* server_session::find_cancellable(std::uint64_t seq) noexcept {
  if (by_seq_.empty()) return nullptr;
  for (request_slot* r = by_seq_[seq_bucket(seq)]; r; r = r->next_same_bucket) {
    ++cancel_lookup_steps_;
    if (r->header.seq == seq) return r;
  }
  return nullptr;
}

// --- the v1 extensions ---

/// A hello: answered here, like a ping. The frames after it are read with the extensions on.
inline void server_session::answer_hello() {
  give_back_reservation();
  auto offered = proto::ext::decode_hello(proto::ext::hello_offer_magic, frame_.msg);
  if (!offered) {
    log_.warn("connection from {}: malformed extensions hello (seq {}): answered rpc_decode", peer_, frame_.header.seq);
    pending_.add_error_string(frame_.header.seq, to_wire_string(errc::decode));
    return;
  }
  std::uint32_t accepted = *offered & proto::ext::all_features;
  char msg[proto::ext::hello_msg_size];
  proto::ext::encode_hello(proto::ext::hello_accept_magic, accepted, msg);
  pending_.add_response(frame_.header.seq, {msg, sizeof msg});
  ext_on_ = true;
  log_.debug("connection from {}: v1 extensions on (features {:#x})", peer_, accepted);
}

/// A frame whose format byte names an extension, on a negotiated connection. True with
/// `out` set: a request to dispatch; false: consumed here.
inline bool server_session::on_extension_frame(clock::time_point now, request_slot*& out) {
  const auto& h = frame_.header;
  if (h.format == proto::ext::format_deadline) {
    if (frame_.msg.size() < proto::ext::deadline_prefix_size) {
      give_back_reservation();
      log_.warn("connection from {}: malformed deadline request (seq {}, msg of {} bytes): answered rpc_decode", peer_,
                h.seq, frame_.msg.size());
      pending_.add_error_string(h.seq, to_wire_string(errc::decode));
      return false;
    }
    auto ms = proto::detail::load_le<std::uint32_t>(frame_.msg.data());
    proto::request_frame f = frame_;
    f.msg = frame_.msg.subspan(proto::ext::deadline_prefix_size);
    f.header.format = 0;
    f.header.msg_len -= proto::ext::deadline_prefix_size;
    out = take_request(f);
    out->deadline = now + std::chrono::milliseconds(ms);
    return true;
  }
  give_back_reservation();
  if (h.format == proto::ext::format_cancel) {
    // The index holds only requests in flight, unanswered and not cancelled: O(1) per frame,
    // however many are in flight (a flood of cancels for unknown seqs stays cheap).
    if (request_slot* r = find_cancellable(h.seq)) {
      log_.debug("connection from {}: seq {} cancelled by the client", peer_, h.seq);
      cancel_request(*r, cancel_reason::cancelled);
      return false;
    }
    // Crossed its answer on the wire, or never sent: nothing to stop.
    log_.debug("connection from {}: cancel for seq {}, which is not in flight: ignored", peer_, h.seq);
    return false;
  }
  log_.warn("connection from {}: unknown extension frame (format {:#04x}, seq {}): ignored", peer_, h.format, h.seq);
  return false;
}

inline void server_session::cancel_request(request_slot& s, cancel_reason why) noexcept {
  s.cancel.store(why, std::memory_order_relaxed);
  unindex_seq(s);
  try {
    cancelled_.emplace_back(&s, s.header.seq);
  } catch (...) {  // std::bad_alloc: the handler is not told, its answer is still dropped
  }
}

/// The connection died: the handlers still working for it stop.
inline void server_session::cancel_in_flight() noexcept {
  for (auto& sp : slots_)
    if (sp->in_use && !sp->answered && sp->cancel.load(std::memory_order_relaxed) == cancel_reason::none)
      cancel_request(*sp, cancel_reason::closed);
}

OCCAMS_RPC_DECL request_slot* server_session::next_cancelled() noexcept {
  while (cancelled_taken_ < cancelled_.size()) {
    auto [s, seq] = cancelled_[cancelled_taken_++];
    if (s->in_use && !s->answered && s->header.seq == seq) return s;
  }
  cancelled_.clear();
  cancelled_taken_ = 0;
  return nullptr;
}

/// A cancelled or expired request's answer is not written: its caller gave up.
inline bool server_session::drop_if_cancelled(request_slot& s) noexcept {
  if (s.cancel.load(std::memory_order_relaxed) == cancel_reason::none) return false;
  drop_answer(s);
  return true;
}

// Out of line: its logging would weigh on every answer's path.
[[gnu::noinline]] inline void server_session::drop_answer(request_slot& s) noexcept {
  auto why = s.cancel.load(std::memory_order_relaxed);
  ++dropped_answers_;
  log_.debug("connection from {}: dropping the answer of seq {}: {}", peer_, s.header.seq,
             why == cancel_reason::expired ? "its deadline passed" : "it was cancelled");
  release(&s);
}

// Inlined into take_request; a new slot (rare: the pool grows) is made out of line.
[[gnu::always_inline]] inline request_slot* server_session::acquire() {
  request_slot* s = free_;
  if (s) free_ = s->next_free;
  else s = new_slot();
  ++in_use_;
  s->in_use = true;
  s->answered = false;
  s->deadline = clock::time_point::max();
  s->cancel.store(cancel_reason::none, std::memory_order_relaxed);
  return s;
}

[[gnu::noinline]] inline request_slot* server_session::new_slot() {
  slots_.push_back(std::make_unique<request_slot>());
  return slots_.back().get();
}

// Inlined (its common path is a few stores): a call of its own per answer cost more.
[[gnu::always_inline]] inline void server_session::release(request_slot* s) noexcept {
  unindex_seq(*s);
  s->next_free = free_;
  free_ = s;
  --in_use_;
  s->in_use = false;
  // The common case, no reservation and small buffers kept and none before, stays inline:
  // nothing to give back or count (an OR of the capacities is at least the largest).
  if (s->reserved != 0 || s->retained != 0 ||
      (s->blob.capacity() | s->resp_blob.capacity() | s->msg.capacity() | s->resp_msg.capacity()) > cfg_.buffer_size)
    release_memory(*s);
  if (draining_) maybe_close();  // tested here: a call per answer otherwise
}

/// A slot's reservation goes back to the budget; its large buffers are kept or freed.
[[gnu::noinline]] inline void server_session::release_memory(request_slot& s) noexcept {
  if (s.reserved) budget_.give_back(std::exchange(s.reserved, 0));
  retain_or_free(s);
}

/// Keeps a slot's large buffers for the next large request while the connection's share
/// allows (a stream of large frames then allocates nothing); frees them past it.
inline void server_session::retain_or_free(request_slot& s) noexcept {
  std::size_t large = cfg_.buffer_size;
  auto size_of = [&](const byte_buffer& b) { return b.capacity() > large ? b.capacity() : 0; };
  retained_ -= s.retained;
  s.retained = size_of(s.blob) + size_of(s.resp_blob) + size_of(s.msg) + size_of(s.resp_msg);
  if (retained_ + s.retained > cfg_.max_retained_buffers) {
    for (auto* b : {&s.blob, &s.resp_blob, &s.msg, &s.resp_msg})
      if (b->capacity() > large) *b = byte_buffer();
    s.retained = 0;
  }
  retained_ += s.retained;
}

/// The reader's buffer counts against max_retained_buffers too: after a large frame it
/// shrinks back once the connection would keep more than that.
inline void server_session::release_reader_memory() noexcept {
  std::size_t cap = reader_.capacity();
  if (cap > cfg_.buffer_size && retained_ + cap > cfg_.max_retained_buffers) {
    try {
      reader_.shrink_to(cfg_.buffer_size);
    } catch (...) {  // std::bad_alloc: keep the larger buffer
    }
  }
}

// --- the memory budget ---

/// A frame larger than buffer_size reserves its whole size from the server's budget before
/// its body is read. When the budget cannot cover it now, the connection queues for it and
/// reads nothing until on_budget_granted().
inline void server_session::reserve_for_pending_frame(clock::time_point now) {
  std::size_t want = reader_.pending_frame_size();
  if (want <= cfg_.buffer_size || reserved_ != 0 || reader_.buffered() == 0) return;
  budget_wait_.want = want;
  if (budget_.take_or_wait(budget_wait_)) {
    reserved_ = want;
    return;
  }
  log_.debug("connection from {}: waiting for {} bytes of the request memory budget ({} of {} in use)", peer_, want,
             budget_.used(), budget_.limit());
  frame_deadline_.pause();
  waiting_for_budget_ = true;
  if (cfg_.observer) cfg_.observer->on_event(call_side::server, observer_event::budget_wait);
  budget_wait_started_ = now;
}

OCCAMS_RPC_DECL void server_session::on_budget_granted(clock::time_point now) {
  if (!waiting_for_budget_ || !budget_wait_.granted) return;
  waiting_for_budget_ = false;
  budget_wait_.granted = false;
  reserved_ = budget_wait_.want;
  last_activity_ = now;  // a connection just granted its budget is not idle
  frame_deadline_.resume(true, now);
}

inline void server_session::give_back_reservation() noexcept {
  if (reserved_) budget_.give_back(std::exchange(reserved_, 0));
}

/// Leaves the budget's queue, giving back a grant not yet taken.
inline void server_session::stop_waiting_for_budget() noexcept {
  budget_.cancel(budget_wait_);
  waiting_for_budget_ = false;
}

// --- answers ---

OCCAMS_RPC_DECL bool server_session::answer_inline(request_slot& s, msg_writer msg, std::span<const char> blob) {
  if (closed_) return false;
  if (drop_if_cancelled(s)) return true;
  auto mark = pending_.begin_response(s.header.seq);
  bool failed;
  try {
    failed = msg.write(msg.ctx, pending_.body());
  } catch (...) {
    pending_.rollback(mark);  // the request stays unanswered: its handle answers rpc_internal_err
    throw;
  }
  if (failed) {
    pending_.rollback(mark);
    pending_.add_error_string(s.header.seq, to_wire_string(errc::encode));
  } else {
    pending_.end_response(mark, blob);  // small: copied
  }
  release(&s);
  return true;
}

OCCAMS_RPC_DECL void server_session::answer(request_slot& s) {
  if (closed_) {
    release(&s);
    return;
  }
  if (drop_if_cancelled(s)) return;
  switch (s.flag) {
    case proto::response_flag::ok:
      pending_.add_response(s.header.seq, s.resp_msg.span(), s.resp_blob.span());
      break;
    case proto::response_flag::error_code:
      pending_.add_error_code(s.header.seq, s.error_code);
      break;
    case proto::response_flag::error_string:
      pending_.add_error_string(s.header.seq, s.resp_msg.view());
      break;
  }
  // A large msg or blob is written from the slot itself: give it back after that write.
  if (s.flag == proto::response_flag::ok &&
      (pending_.would_reference(s.resp_msg.span()) || pending_.would_reference(s.resp_blob.span()))) {
    s.answered = true;
    unindex_seq(s);
    pending_slots_.push_back(&s);
  } else {
    release(&s);
  }
}

// --- shutdown, abort, close ---

OCCAMS_RPC_DECL void server_session::shutdown(clock::time_point now) {
  if (closed_ || close_wait_over_) return;
  close_wait_over_ = now + cfg_.close_wait;
  if (draining_) return;  // the client half-closed: its drain is under way
  draining_ = true;
  // No more bytes will be read: a frame half-received never completes.
  frame_deadline_.pause();
  stop_waiting_for_budget();
  give_back_reservation();
  maybe_close();
}

OCCAMS_RPC_DECL void server_session::abort(std::string_view why, log_level level) { close(why, level); }

inline void server_session::close(std::string_view why, log_level level) {
  if (closed_) return;
  log_.log(level, "closing connection from {}: {}", peer_, why);
  close_now(false);
}

/// A drain is over once every request read is answered and written.
inline void server_session::maybe_close() noexcept {
  if (closed_ || !draining_) return;
  if (in_use_ == 0 && !cut_pending_ && pending_.empty() && !writing_now_) close_now(true);
}

inline void server_session::close_now(bool graceful) noexcept {
  closed_ = true;
  close_socket_ = true;
  graceful_ = graceful;
  paused_ = false;
  cancel_in_flight();  // nobody will read their answers
  frame_deadline_.pause();
  stop_waiting_for_budget();
  give_back_reservation();
  // Answers queued and not written are lost; the batch being written (if any) keeps its
  // slots until on_write_done.
  for (auto* s : pending_slots_) release(s);
  pending_slots_.clear();
  pending_.clear();
}

OCCAMS_RPC_DECL void server_session::context_gone() noexcept {
  closed_ = true;
  draining_ = true;
  paused_ = false;
  frame_deadline_.pause();
  budget_.cancel(budget_wait_);
  waiting_for_budget_ = false;
  // Answered requests parked until their write completes: that write never will.
  for (auto* s : pending_slots_) release(s);
  for (auto* s : writing_slots_) release(s);
  pending_slots_.clear();
  writing_slots_.clear();
  writing_now_ = false;
}

// --- I/O ---

OCCAMS_RPC_DECL void server_session::on_read(std::size_t n, clock::time_point now) {
  if (closed_) return;
  last_activity_ = now;
  reader_.commit(n);
  cut_pending_ = true;
  completed_ = false;
}

OCCAMS_RPC_DECL void server_session::on_read_error(std::error_code ec) {
  if (closed_) return;
  static const std::error_code eof = boost::system::error_code(boost::asio::error::eof);
  if (ec != eof && !draining_) log_.debug("connection from {}: read ended: {}", peer_, ec.message());
  // A v1 client may half-close and still want its answers. One that negotiated the
  // extensions never half-closes (docs/protocol.md): its end of stream is its end.
  if (ext_on_) cancel_in_flight();
  draining_ = true;  // a half-closed client still gets its answers
  frame_deadline_.pause();
  stop_waiting_for_budget();
  give_back_reservation();
  maybe_close();
}

OCCAMS_RPC_DECL std::span<const std::span<const char>> server_session::begin_write(clock::time_point now) {
  std::swap(pending_, writing_);
  writing_slots_.swap(pending_slots_);
  writing_now_ = true;
  write_started_ = now;
  const auto& buffers = writing_.buffers();
  return {buffers.data(), buffers.size()};
}

OCCAMS_RPC_DECL void server_session::on_write_done(std::error_code ec, clock::time_point now) {
  writing_now_ = false;
  bool small = writing_.buffered_bytes() < shrink_limit_;
  writing_.clear();
  if (small) writing_.shrink_to(shrink_limit_);
  last_activity_ = now;
  for (auto* s : writing_slots_) release(s);
  writing_slots_.clear();
  if (ec) {
    if (!closed_) close(fmt::format("write failed: {}", ec.message()), log_level::info);
    return;
  }
  maybe_close();
}

OCCAMS_RPC_DECL void server_session::on_tick(clock::time_point now, std::size_t bytes_in_socket) {
  if (closed_) return;
  if (ext_on_) {  // deadlines passed: their handlers stop, their answers will be dropped
    for (auto& sp : slots_) {
      request_slot& r = *sp;
      if (r.in_use && !r.answered && r.deadline <= now && r.cancel.load(std::memory_order_relaxed) == cancel_reason::none) {
        log_.debug("connection from {}: seq {} expired (its caller's deadline passed)", peer_, r.header.seq);
        cancel_request(r, cancel_reason::expired);
      }
    }
  }
  if (close_wait_over_ && now >= *close_wait_over_) return close("close wait over during shutdown", log_level::info);
  // Bytes already in the socket are progress the reader has not run for yet (this tick may
  // run before their completion): no timeout for them.
  if (frame_deadline_.expired(now, cfg_.read_timeout) && bytes_in_socket == 0)
    return close(fmt::format("read timeout: a request frame was incomplete for over {} ms", cfg_.read_timeout.count()),
                 log_level::warn);
  if (writing_now_ && now - write_started_ > cfg_.write_timeout) return close("write timed out", log_level::info);
  if (waiting_for_budget_) {
    if (now - budget_wait_started_ >= cfg_.idle_timeout)
      close(fmt::format("waited over {} ms for the request memory budget (server overloaded)",
                        cfg_.idle_timeout.count()),
            log_level::warn);
    return;
  }
  // Not idle: requests in flight, answers unwritten, or a frame arriving.
  if (in_use_ > 0 || writing_now_ || !pending_.empty() || frame_deadline_.running()) return;
  if (now - last_activity_ >= cfg_.idle_timeout) close("idle timeout", log_level::info);
}

}  // namespace occams_rpc::session
