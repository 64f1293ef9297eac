// client_session's bodies (compiled once in the compiled mode).
#pragma once

#include <occams_rpc/session/client_session.hpp>

#include <algorithm>
#include <limits>
#include <utility>

namespace occams_rpc::session {

OCCAMS_RPC_DECL client_session::client_session(const client_config& cfg, logger log)
    : cfg_(cfg),
      log_(std::move(log)),
      reader_(cfg.max_frame_size, cfg.buffer_size),
      pending_(cfg.buffer_size),
      writing_(cfg.buffer_size),
      // A batch that grew past 16 buffers keeps its memory while large batches follow and
      // shrinks after the first small one (no reallocation per batch, no memory pinned).
      shrink_limit_(cfg.buffer_size * 16),
      table_(cfg.window + max_pings),
      window_(cfg.window),
      wheel_(std::max<std::uint64_t>(proto::ticks_for(cfg.call_timeout, cfg.timeout_tick) + 2, 8)),
      timeout_ticks_(proto::ticks_for(cfg.call_timeout, cfg.timeout_tick)) {
  if (cfg.extensions) offer_extensions();
}

// --- calls ---

OCCAMS_RPC_DECL client_call* client_session::start_call(proto::action act, std::span<const char> msg,
                                                        std::span<const char> blob, call_response* into,
                                                        call_response&& own, clock::time_point now,
                                                        clock::time_point deadline) {
  if (now > last_now_) last_now_ = now;
  if (!window_.try_acquire()) return nullptr;
  return &queue_request(act, msg, blob, into, std::move(own), now, deadline);
}

OCCAMS_RPC_DECL void client_session::wait(waiting_call& w) {
  w.session = this;
  w.seq = 0;
  w.refused = {};
  w.wake = &on_window_slot;
  window_.enqueue(w);
}

OCCAMS_RPC_DECL client_call* client_session::start_ping() {
  // Pings have their own max_pings entries: the window's calls always fit beside them.
  if (pings_ >= max_pings) return nullptr;
  ++pings_;
  auto [seq, c] = table_.insert();
  c->seq = seq;
  c->is_ping = true;
  c->refs_caller = false;
  c->done = false;
  c->into = nullptr;
  pending_.add_ping(seq, cfg_.client_id);
  c->batch_gen = pending_gen_;
  wheel_.schedule(*c, timeout_ticks_);
  return c;
}

OCCAMS_RPC_DECL bool client_session::cancel(std::uint64_t seq) {
  auto* c = table_.find(seq);
  if (!c || c->done) return false;
  complete(*c, make_error_code(errc::cancelled));
  // The server stops working for nobody: a cancel frame (it answers none; a cancel that
  // crosses the answer on the wire finds nothing and is ignored there).
  if ((features_ & proto::ext::feature_cancel) && !c->is_ping && state_ != state::closed)
    pending_.add_control(seq, proto::ext::format_cancel, cfg_.client_id);
  return true;
}

OCCAMS_RPC_DECL bool client_session::cancel_waiting(waiting_call& w) {
  if (!window_.remove(w)) return false;
  maybe_finish_close();  // a closing connection waits for its waiting calls too
  return true;
}

OCCAMS_RPC_DECL void client_session::close() {
  if (state_ != state::open) return;
  state_ = state::closing;
  if (auto* hello = hello_seq_ ? table_.find(hello_seq_) : nullptr) end_hello(*hello, nullptr);  // nothing waits for it
  log_.debug("client connection closing: {} calls in flight", table_.size());
  maybe_finish_close();
}

OCCAMS_RPC_DECL void client_session::abort(std::error_code ec) { fail(ec); }

// --- completions ---

OCCAMS_RPC_DECL client_call* client_session::next_done() noexcept {
  client_call* c = done_head_;
  if (!c) return nullptr;
  done_head_ = c->next_done;
  if (!done_head_) done_tail_ = nullptr;
  c->next_done = nullptr;
  return c;
}

OCCAMS_RPC_DECL void client_session::release(client_call& c) {
  bool ping = c.is_ping;
  c.done = false;
  c.abandoned = false;
  table_.erase(c.seq);
  // A waiting call may take the slot, and this very entry, at once.
  if (ping) --pings_;
  else window_.release();
  maybe_finish_close();
}

OCCAMS_RPC_DECL waiting_call* client_session::next_granted() noexcept {
  waiting_call* w = granted_head_;
  if (!w) return nullptr;
  granted_head_ = w->next_granted;
  if (!granted_head_) granted_tail_ = nullptr;
  w->next_granted = nullptr;
  return w;
}

// --- I/O ---

OCCAMS_RPC_DECL void client_session::on_read(std::size_t n, clock::time_point now) {
  if (state_ == state::closed) return;
  last_now_ = now;
  reader_.commit(n);
  bool completed = false;
  std::error_code fec;
  for (;;) {
    auto st = reader_.next(frame_, fec);
    if (st == proto::read_status::need_more) break;
    if (st == proto::read_status::error) {
      log_.warn("closing client connection: bad response frame: {}", fec.message());
      fail(errc::io_err);
      return;
    }
    completed = true;
    on_response(frame_);
  }
  if (reader_.buffered() > 0 || frame_deadline_.running())
    frame_deadline_.after_read(reader_.buffered() > 0, completed, now);
  // After a large response, the read buffer keeps at most max_retained_buffers.
  if (reader_.capacity() > cfg_.max_retained_buffers) reader_.shrink_to(cfg_.buffer_size);
}

OCCAMS_RPC_DECL void client_session::on_read_error(std::error_code ec) {
  if (state_ == state::closed) return;
  log_.info("client connection lost: {}", ec.message());
  fail(errc::io_err);
}

OCCAMS_RPC_DECL std::span<const std::span<const char>> client_session::begin_write(clock::time_point now) {
  std::swap(pending_, writing_);
  writing_now_ = true;
  write_started_ = now;
  last_now_ = now;
  ++pending_gen_;
  return writing_.buffers();
}

OCCAMS_RPC_DECL void client_session::on_write_done(std::error_code ec, clock::time_point) {
  writing_now_ = false;
  written_gen_ = pending_gen_ - 1;
  bool small = writing_.buffered_bytes() < shrink_limit_;
  writing_.clear();
  if (small) writing_.shrink_to(shrink_limit_);
  if (ec && state_ != state::closed) {
    log_.info("client connection write failed: {}", ec.message());
    fail(errc::io_err);
  }
  // Closed (failed or aborted during this write): the pending batch will never be written,
  // and nothing references the callers' bytes any more.
  if (state_ == state::closed) forget_unwritten();
  release_abandoned();
}

OCCAMS_RPC_DECL void client_session::on_tick(clock::time_point now, std::size_t bytes_in_socket) {
  if (state_ == state::closed) return;
  last_now_ = now;
  wheel_.advance([this](client_call& c) {
    log_.debug("call seq {} timed out", c.seq);
    complete(c, errc::timeout);
  });
  if (writing_now_ && now - write_started_ > cfg_.write_timeout) {
    log_.warn("client connection write stuck for over {} ms: closing", cfg_.write_timeout.count());
    fail(errc::io_err);
  } else if (frame_deadline_.expired(now, cfg_.read_timeout) && bytes_in_socket == 0) {
    // (Bytes already in the socket are progress whose read completion has not run yet.)
    log_.warn("client connection: a response frame was incomplete for over {} ms (server stalled mid-frame): "
              "closing", cfg_.read_timeout.count());
    fail(errc::io_err);
  }
}

// --- internals ---

client_call& client_session::queue_request(proto::action act, std::span<const char> msg, std::span<const char> blob,
                                           call_response* into, call_response&& own, clock::time_point now,
                                           clock::time_point deadline) {
  auto [seq, c] = table_.insert();
  c->seq = seq;
  c->is_ping = false;
  c->done = false;
  c->response_bytes = 0;
  // A call into the caller's storage leaves the entry's own response as it is (moved out by
  // the last call that used it).
  if (into) {
    c->into = into;
  } else {
    c->response = std::move(own);
    c->into = &c->response;
  }
  bool has_deadline = deadline != clock::time_point::max();
  if (features_ & proto::ext::feature_deadline) {
    // The caller's remaining time leads the msg (counted in msg_len; the server strips it).
    clock::duration left = cfg_.call_timeout;
    if (has_deadline && deadline - now < left) left = deadline - now;
    char prefix[proto::ext::deadline_prefix_size];
    proto::detail::store_le(prefix, proto::ext::remaining_ms(left));
    pending_.add_request(seq, act, {prefix, sizeof prefix}, msg, blob, cfg_.client_id, proto::ext::format_deadline);
  } else {
    pending_.add_request(seq, act, msg, blob, cfg_.client_id);
  }
  c->refs_caller = pending_.would_reference(msg) || pending_.would_reference(blob);
  c->batch_gen = pending_gen_;
  wheel_.schedule(*c, has_deadline ? ticks_until(now, deadline) : timeout_ticks_);
  if (table_.size() > max_in_flight_seen_) max_in_flight_seen_ = table_.size();
  return *c;
}

void client_session::on_window_slot(proto::window_throttler::waiter* base) {
  auto* w = static_cast<waiting_call*>(base);
  client_session& s = *w->session;
  if (s.state_ == state::closed) {  // woken by a failure, without a slot
    w->refused = s.closed_reason();
  } else {
    // A waiting call has no clock of its own: the time of the latest event stands for now.
    w->seq = s.queue_request(w->act, w->msg, w->blob, w->into, std::move(w->response), s.last_now_, w->deadline).seq;
  }
  s.push_granted(*w);
}

void client_session::push_granted(waiting_call& w) {
  w.next_granted = nullptr;
  (granted_tail_ ? granted_tail_->next_granted : granted_head_) = &w;
  granted_tail_ = &w;
}

// An entry whose referenced msg or blob is still in an unwritten batch waits for that write
// (abandoned), so that the caller's bytes outlive every reference to them.
void client_session::complete(client_call& c, std::error_code ec) {
  if (c.is_hello) return end_hello(c, nullptr);  // timed out, or the connection failed
  wheel_.cancel(c);
  c.done = true;
  if (c.refs_caller && c.batch_gen > written_gen_) {
    c.abandoned = true;
    c.result = ec;
    ++abandoned_;
    return;
  }
  push_done(c, ec);
}

void client_session::push_done(client_call& c, std::error_code ec) {
  c.abandoned = false;
  c.result = ec;
  c.next_done = nullptr;
  (done_tail_ ? done_tail_->next_done : done_head_) = &c;
  done_tail_ = &c;
}

void client_session::on_response(const proto::response_frame& f) {
  client_call* c = table_.find(f.header.seq);
  if (!c || c->done) {
    log_.debug("dropping a response for seq {}: no call waits for it (timed out or cancelled)", f.header.seq);
    return;
  }
  if (c->is_hello) return end_hello(*c, &f);
  std::error_code ec;
  if (c->is_ping) {
    // A pong is an empty OK response; anything else is not from a server of this protocol.
    if (f.header.flag != proto::response_flag::ok || !f.msg.empty() || !f.blob.empty()) ec = errc::io_err;
    complete(*c, ec);
    return;
  }
  c->response_bytes = static_cast<std::uint32_t>(proto::response_header_size + f.header.body_len());
  call_response& r = *c->into;
  r.flag = f.header.flag;
  r.msg.clear();
  r.blob.clear();
  switch (f.header.flag) {
    case proto::response_flag::ok:
      r.msg.append(f.msg);
      r.blob.append(f.blob);
      break;
    case proto::response_flag::error_code:
      // An errno-like code, 1..2^31-1. Zero or a larger one cannot be reported faithfully as
      // a std::error_code (zero means success; above 2^31-1 it turns negative).
      if (f.header.error_code() == 0 || f.header.error_code() > std::uint32_t{std::numeric_limits<int>::max()}) {
        log_.warn("response seq {}: error code {} out of range 1..2^31-1: failing the call with rpc_decode",
                  f.header.seq, f.header.error_code());
        ec = errc::decode;
      } else {
        ec = std::error_code(static_cast<int>(f.header.error_code()), remote_category());
      }
      break;
    case proto::response_flag::error_string:
      if (auto fw = from_wire_string(f.error_string())) ec = *fw;
      else ec = errc::remote_error;
      r.msg.append(f.error_string());
      break;
  }
  complete(*c, ec);
}

void client_session::offer_extensions() {
  ++pings_;  // the hello takes a ping's entry: the window's calls always fit beside it
  auto [seq, c] = table_.insert();
  c->seq = seq;
  c->is_ping = true;
  c->is_hello = true;
  c->refs_caller = false;
  c->done = false;
  c->into = nullptr;
  char msg[proto::ext::hello_msg_size];
  proto::ext::encode_hello(proto::ext::hello_offer_magic, proto::ext::all_features, msg);
  pending_.add_request(seq, proto::action(proto::ext::hello_action), {msg, sizeof msg}, {}, cfg_.client_id);
  c->batch_gen = pending_gen_;
  wheel_.schedule(*c, timeout_ticks_);
  hello_seq_ = seq;
  ext_ = extensions_state::offered;
}

// The hello is the session's own: it ends here, never in the done queue. `answer` is null
// when it timed out, the connection failed or closed first.
void client_session::end_hello(client_call& c, const proto::response_frame* answer) {
  wheel_.cancel(c);
  std::optional<std::uint32_t> accepted;
  if (answer && answer->ok()) accepted = proto::ext::decode_hello(proto::ext::hello_accept_magic, answer->msg);
  if (accepted && (*accepted & ~proto::ext::all_features) == 0) {
    features_ = *accepted;
    ext_ = extensions_state::on;
    log_.debug("v1 extensions on (features {:#x})", features_);
  } else {
    ext_ = extensions_state::refused;
    if (!answer)
      log_.debug("no answer to the extensions' hello: the connection stays plain v1");
    else if (answer->header.flag == proto::response_flag::error_string)
      log_.debug("the server refused the extensions' hello ({}): the connection stays plain v1", answer->error_string());
    else
      log_.debug("the server's answer to the extensions' hello is no acceptance: the connection stays plain v1");
  }
  c.is_hello = false;
  c.is_ping = false;
  c.done = false;
  table_.erase(c.seq);
  --pings_;
  hello_seq_ = 0;
  maybe_finish_close();
}

std::uint64_t client_session::ticks_until(clock::time_point now, clock::time_point deadline) const noexcept {
  clock::duration left = cfg_.call_timeout;
  if (deadline - now < left) left = deadline - now;
  return proto::ticks_for(left, cfg_.timeout_tick);
}

void client_session::release_abandoned() {
  if (abandoned_ == 0) return;
  table_.for_each([this](std::uint64_t, client_call& c) {
    if (c.abandoned && c.batch_gen <= written_gen_) {
      --abandoned_;
      push_done(c, c.result);
    }
  });
}

void client_session::maybe_finish_close() {
  if (state_ == state::closing && table_.empty() && window_.waiting() == 0) {
    state_ = state::closed;
    close_socket_ = graceful_ = true;
    log_.debug("client connection closed gracefully");
  }
}

void client_session::fail(std::error_code ec) {
  if (state_ == state::closed && failure_) return;
  if (state_ != state::closed) close_socket_ = true;
  state_ = state::closed;
  failure_ = ec;
  table_.for_each([&](std::uint64_t, client_call& c) {
    if (!c.done) complete(c, ec);
  });
  window_.drain_waiters([](proto::window_throttler::waiter& w) { w.wake(&w); });
  if (!writing_now_) {
    forget_unwritten();
    release_abandoned();
  }
}

// The pending batch will never be written: nothing references the callers' bytes after this.
void client_session::forget_unwritten() {
  pending_.clear();
  written_gen_ = std::numeric_limits<std::uint64_t>::max();
}

}  // namespace occams_rpc::session
