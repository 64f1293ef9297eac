// The state and coroutines of one client connection: a reader, a writer and a tick timer,
// all on the connection's executor. See client_stream.hpp for the public face.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/proto/frame_deadline.hpp>
#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/proto/inflight_table.hpp>
#include <occams_rpc/proto/timeout_wheel.hpp>
#include <occams_rpc/proto/window_throttler.hpp>
#include <occams_rpc/stream/call_response.hpp>
#include <occams_rpc/stream/detail/batch_writer.hpp>
#include <occams_rpc/stream/detail/exception_text.hpp>
#include <occams_rpc/stream/detail/running_here.hpp>
#include <occams_rpc/stream/detail/shutdown_hook.hpp>
#include <occams_rpc/stream/detail/stored_handler.hpp>
#include <occams_rpc/stream/detail/wake_event.hpp>
#include <occams_rpc/transport/transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <exception>
#include <limits>
#include <memory>
#include <span>
#include <vector>

namespace occams_rpc::detail {

/// A call's or a ping's stored handler; the second argument is where the response is.
using call_handler = stored_handler<std::error_code, call_response*>;
using void_handler = stored_handler<std::error_code>;

/// Completes a call with its response: void(error_code, call_response). The response is
/// moved out of where it is (the pending entry's own storage) as the handler is bound.
struct complete_with_response {
  template <class H>
  static void call(H&& h, std::error_code ec, call_response* r) {
    std::move(h)(ec, std::move(*r));
  }
  template <class H>
  static auto bind(H&& h, std::error_code ec, call_response* r) {
    return [h = std::move(h), ec, r = std::move(*r)]() mutable { std::move(h)(ec, std::move(r)); };
  }
};
/// Completes a call whose response is already in the caller's storage, or a ping: void(error_code).
struct complete_without_response {
  template <class H>
  static void call(H&& h, std::error_code ec, call_response*) {
    std::move(h)(ec);
  }
  template <class H>
  static auto bind(H&& h, std::error_code ec, call_response*) {
    return [h = std::move(h), ec]() mutable { std::move(h)(ec); };
  }
};

/// One request in flight (or one ping), kept in the in-flight table and the timeout wheel.
struct pending_call : proto::wheel_hook {
  std::uint64_t seq = 0;
  bool is_ping = false;
  bool refs_caller = false;  // the request's msg or blob is referenced, not copied, by a batch
  bool abandoned = false;    // completed early, waiting for its batch to be written
  std::uint64_t batch_gen = 0;
  std::error_code abandoned_ec;
  call_response response;          // a by-value call's response
  call_response* into = nullptr;   // where the response goes: &response, or the caller's storage
  call_handler on_done;
  asio::cancellation_slot slot;
};

template <class Transport>
class client_connection final : public shutdown_hook,
                                public std::enable_shared_from_this<client_connection<Transport>> {
 public:
  using socket_type = typename Transport::socket_type;
  enum class state { open, closing, closed };

  client_connection(socket_type socket, const client_config& cfg, logger log)
      : shutdown_hook(socket.get_executor()),
        ex_(socket.get_executor()),
        socket_(std::move(socket)),
        cfg_(cfg),
        log_(std::move(log)),
        reader_(cfg.max_frame_size, cfg.buffer_size),
        writer_(cfg.buffer_size),
        table_(cfg.window + max_pings),
        window_(cfg.window),
        wheel_(std::max<std::uint64_t>(proto::ticks_for(cfg.call_timeout, cfg.timeout_tick) + 2, 8)),
        timeout_ticks_(proto::ticks_for(cfg.call_timeout, cfg.timeout_tick)),
        tick_timer_(ex_),
        writer_wake_(ex_),
        running_here_(ex_) {}

  void start() {
    auto self = this->shared_from_this();
    asio::co_spawn(ex_, [self]() { return self->read_loop(); }, failure_handler{self, "reader"});
    asio::co_spawn(ex_, [self]() { return self->write_loop(); }, failure_handler{self, "writer"});
    asio::co_spawn(ex_, [self]() { return self->tick_loop(); }, failure_handler{self, "timer"});
  }

  const asio::any_io_executor& get_executor() const noexcept { return ex_; }
  /// Whether the calling thread runs the connection's executor now (calls may start directly).
  bool running_here() const noexcept { return running_here_(); }
  state current_state() const noexcept { return state_; }
  std::size_t in_flight() const noexcept { return table_.size(); }
  std::size_t max_in_flight_seen() const noexcept { return max_in_flight_seen_; }

  // --- calls (on the connection's executor) ---

  /// A call waiting for a window slot; heap-allocated, only when the window is full.
  struct window_waiter : proto::window_throttler::waiter {
    client_connection* conn = nullptr;
    proto::action act{0u};
    std::span<const char> msg, blob;
    call_response response;
    call_response* into = nullptr;  // null: a by-value call, whose response is `response`
    call_handler handler;
    asio::cancellation_slot slot;
    call_response* target() noexcept { return into ? into : &response; }
  };

  /// Starts a call that completes with void(error_code, call_response): the response is
  /// written to `buffers` (moved in, handed back).
  template <class Handler>
  void start_call(proto::action act, std::span<const char> msg, std::span<const char> blob,
                  call_response buffers, Handler&& handler) {
    start<complete_with_response>(act, msg, blob, nullptr, std::move(buffers), std::forward<Handler>(handler));
  }

  /// Starts a call that completes with void(error_code) once the response is in `into`.
  template <class Handler>
  void start_call_into(proto::action act, std::span<const char> msg, std::span<const char> blob,
                       call_response& into, Handler&& handler) {
    start<complete_without_response>(act, msg, blob, &into, call_response{}, std::forward<Handler>(handler));
  }

  template <class Handler>
  void start_ping(Handler&& handler) {
    void_handler h;
    if (state_ != state::open || table_.size() >= table_.max_entries()) {
      h.emplace(std::forward<Handler>(handler), ex_);
      h.post(state_ != state::open ? closed_reason() : make_error_code(errc::overloaded));
      return;
    }
    auto [seq, e] = table_.insert();
    e->seq = seq;
    e->is_ping = true;
    e->refs_caller = false;
    e->slot = asio::get_associated_cancellation_slot(handler);
    e->into = nullptr;
    e->on_done.template emplace<complete_without_response>(std::forward<Handler>(handler), ex_);
    if (e->slot.is_connected()) e->slot.template emplace<call_cancel>(this, seq);
    writer_.pending().add_ping(seq, cfg_.client_id);
    e->batch_gen = pending_gen_;
    wheel_.schedule(*e, timeout_ticks_);
    writer_wake_.notify();
  }

  /// Refuses new calls; the calls already made finish (or time out), then the socket closes.
  void close() {
    if (state_ != state::open) return;
    state_ = state::closing;
    log_.debug("client connection closing: {} calls in flight", table_.size());
    maybe_finish_close();
  }

  /// Fails every call now with `ec` and closes.
  void abort(std::error_code ec) { fail(ec); }

  /// The executor's context is being destroyed with this connection open: destroy the stored
  /// handlers (they own coroutine frames that own this connection) without running them.
  void on_context_shutdown() noexcept override {
    auto self = this->weak_from_this().lock();  // destroyed last, after the handlers below
    if (!self) return;
    state_ = state::closed;
    std::vector<call_handler> calls;
    table_.for_each([&](std::uint64_t, pending_call& e) {
      if (e.slot.is_connected()) e.slot.clear();
      e.slot = {};
      if (e.on_done) calls.push_back(std::move(e.on_done));
    });
    std::vector<std::unique_ptr<window_waiter>> waiters;
    window_.drain_waiters([&](proto::window_throttler::waiter& base) {
      auto* w = static_cast<window_waiter*>(&base);
      if (w->slot.is_connected()) w->slot.clear();
      waiters.emplace_back(w);
    });
    auto writer = writer_wake_.take_waiter();
    auto closers = std::move(close_waiters_);
  }

  template <class Handler>
  void add_close_waiter(Handler&& handler) {
    auto h = std::make_unique<void_handler>();
    h->emplace(std::forward<Handler>(handler), ex_);
    if (state_ == state::closed && !writer_.writing()) {
      h->post(std::error_code{});
      return;
    }
    close_waiters_.push_back(std::move(h));
  }

 private:
  static constexpr std::size_t max_pings = 16;

  /// Fails the connection, with the reason logged, when one of its coroutines ends with an
  /// exception (std::bad_alloc under memory pressure, say): its calls complete with io_err.
  struct failure_handler {
    std::shared_ptr<client_connection> self;
    const char* which;
    void operator()(std::exception_ptr e) const {
      if (!e) return;
      self->log_.error("client connection {} failed: {}: closing", which, exception_text(e));
      self->fail(errc::io_err);
    }
  };

  template <class Adapter, class Handler>
  void start(proto::action act, std::span<const char> msg, std::span<const char> blob, call_response* into,
             call_response own, Handler&& handler) {
    if (state_ != state::open) {
      call_handler h;
      h.template emplace<Adapter>(std::forward<Handler>(handler), ex_);
      h.post(closed_reason(), into ? into : &own);
      return;
    }
    if (window_.try_acquire()) {
      auto slot = asio::get_associated_cancellation_slot(handler);
      pending_call& e = send_call(act, msg, blob, into, std::move(own));
      e.on_done.template emplace<Adapter>(std::forward<Handler>(handler), ex_);
      watch_cancellation(e, std::move(slot));
      return;
    }
    // The window is full: wait in FIFO order for a slot.
    auto* w = new window_waiter;
    w->conn = this;
    w->act = act;
    w->msg = msg;
    w->blob = blob;
    w->response = std::move(own);
    w->into = into;
    w->slot = asio::get_associated_cancellation_slot(handler);
    w->handler.template emplace<Adapter>(std::forward<Handler>(handler), ex_);
    w->wake = [](proto::window_throttler::waiter* base) {
      auto* w = static_cast<window_waiter*>(base);
      std::unique_ptr<window_waiter> owned(w);
      if (w->slot.is_connected()) w->slot.clear();
      auto* c = w->conn;
      if (c->state_ == state::closed) {  // woken by a failure, without a slot
        w->handler.post(c->closed_reason(), w->target());
        return;
      }
      // Its cancellation slot was cleared above: the call can no longer be cancelled.
      pending_call& e = c->send_call(w->act, w->msg, w->blob, w->into, std::move(w->response));
      e.on_done = std::move(w->handler);
    };
    if (w->slot.is_connected()) {
      w->slot.template emplace<waiter_cancel>(this, w);
    }
    window_.enqueue(*w);
  }

  struct call_cancel {
    client_connection* conn;
    std::uint64_t seq;
    call_cancel(client_connection* c, std::uint64_t s) : conn(c), seq(s) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none) return;
      if (auto* e = conn->table_.find(seq); e && !e->abandoned) {
        e->slot = {};  // the slot is being invoked: do not clear it from inside
        conn->complete(*e, make_error_code(errc::cancelled));
      }
    }
  };
  struct waiter_cancel {
    client_connection* conn;
    window_waiter* w;
    waiter_cancel(client_connection* c, window_waiter* ww) : conn(c), w(ww) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none) return;
      if (!conn->window_.remove(*w)) return;
      std::unique_ptr<window_waiter> owned(w);
      w->handler.post(make_error_code(errc::cancelled), w->target());
    }
  };

  /// Why new calls fail: the connection's failure (io_err; closed after abort()), else closed.
  std::error_code closed_reason() const noexcept { return failure_ ? failure_ : make_error_code(errc::closed); }

  /// Queues the request and registers its entry (the caller stores the handler in it).
  pending_call& send_call(proto::action act, std::span<const char> msg, std::span<const char> blob,
                          call_response* into, call_response own) {
    auto [seq, e] = table_.insert();
    e->seq = seq;
    e->is_ping = false;
    e->response = std::move(own);
    e->into = into ? into : &e->response;
    auto mark = writer_.pending().begin_request(seq, act, cfg_.client_id);
    writer_.pending().add_msg(msg);
    writer_.pending().end_request(mark, blob);
    e->refs_caller = writer_.pending().would_reference(msg) || writer_.pending().would_reference(blob);
    e->batch_gen = pending_gen_;
    wheel_.schedule(*e, timeout_ticks_);
    if (table_.size() > max_in_flight_seen_) max_in_flight_seen_ = table_.size();
    writer_wake_.notify();
    return *e;
  }

  void watch_cancellation(pending_call& e, asio::cancellation_slot slot) {
    e.slot = std::move(slot);
    if (e.slot.is_connected()) e.slot.template emplace<call_cancel>(this, e.seq);
  }

  /// Completes one entry: the handler runs (inline if the caller is on this executor), the
  /// window slot frees. An entry whose referenced msg or blob is still in an unwritten batch waits
  /// for that write first, so that the caller's bytes outlive it.
  void complete(pending_call& e, std::error_code ec) {
    wheel_.cancel(e);
    if (e.slot.is_connected()) e.slot.clear();
    e.slot = {};
    if (e.refs_caller && e.batch_gen > written_gen_) {
      e.abandoned = true;
      e.abandoned_ec = ec;
      ++abandoned_;
      return;
    }
    finish(e, ec);
  }

  void finish(pending_call& e, std::error_code ec) {
    e.abandoned = false;
    // Releasing the window slot may hand it to a waiting call at once, which may take this
    // very entry: the handler and a by-value response are moved out first.
    call_handler h = std::move(e.on_done);
    table_.erase(e.seq);
    if (e.is_ping) {
      h.dispatch_here(ec, nullptr);
    } else if (e.into == &e.response) {
      call_response r = std::move(e.response);
      window_.release();
      h.dispatch_here(ec, &r);
    } else {
      call_response* into = e.into;
      window_.release();
      h.dispatch_here(ec, into);
    }
    maybe_finish_close();
  }

  void on_response(const proto::response_frame& f) {
    pending_call* e = table_.find(f.header.seq);
    if (!e || e->abandoned) {
      log_.debug("dropping a response for seq {}: no call waits for it (timed out or cancelled)", f.header.seq);
      return;
    }
    std::error_code ec;
    if (e->is_ping) {
      // A pong is an empty OK response; anything else is not from a server of this protocol.
      if (f.header.flag != proto::response_flag::ok || !f.msg.empty() || !f.blob.empty()) ec = errc::io_err;
      complete(*e, ec);
      return;
    }
    call_response& r = *e->into;
    r.flag = f.header.flag;
    r.msg.clear();
    r.blob.clear();
    switch (f.header.flag) {
      case proto::response_flag::ok:
        r.msg.append(f.msg);
        r.blob.append(f.blob);
        break;
      case proto::response_flag::error_code:
        // An errno-like code, 1..2^31-1. Zero or a larger one cannot be reported faithfully
        // as a std::error_code (zero means success; above 2^31-1 it turns negative).
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
    complete(*e, ec);
  }

  asio::awaitable<void> read_loop() {
    proto::response_frame frame;
    for (;;) {
      auto room = reader_.prepare(cfg_.buffer_size / 2);
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(room.data(), room.size()),
                                                      asio::as_tuple(asio::deferred));
      if (ec) {
        if (state_ != state::closed) {
          log_.info("client connection lost: {}", ec.message());
          fail(errc::io_err);
        }
        co_return;
      }
      reader_.commit(n);
      bool completed = false;
      std::error_code fec;
      for (;;) {
        auto st = reader_.next(frame, fec);
        if (st == proto::read_status::need_more) break;
        if (st == proto::read_status::error) {
          log_.warn("closing client connection: bad response frame: {}", fec.message());
          fail(errc::io_err);
          co_return;
        }
        completed = true;
        on_response(frame);
      }
      if (reader_.buffered() > 0 || frame_deadline_.running())
        frame_deadline_.after_read(reader_.buffered() > 0, completed, std::chrono::steady_clock::now());
      // After a large response, the read buffer keeps at most max_retained_buffers.
      if (reader_.capacity() > cfg_.max_retained_buffers) reader_.shrink_to(cfg_.buffer_size);
    }
  }

  asio::awaitable<void> write_loop() {
    for (;;) {
      while (writer_.pending().empty()) {
        if (state_ == state::closed) co_return;
        co_await writer_wake_.async_wait(asio::as_tuple(asio::deferred));
      }
      if (state_ == state::closed) co_return;
      std::uint64_t gen = pending_gen_++;
      auto ec = co_await writer_.write_next(socket_);
      written_gen_ = gen;
      if (ec && state_ != state::closed) {
        log_.info("client connection write failed: {}", ec.message());
        fail(errc::io_err);
      }
      if (state_ == state::closed) {
        // The pending batch will never be written (the connection failed or was aborted
        // during this write): nothing references the callers' bytes any more.
        writer_.pending().clear();
        written_gen_ = std::numeric_limits<std::uint64_t>::max();
      }
      release_abandoned();
      if (state_ == state::closed) {
        after_closed();
        co_return;
      }
    }
  }

  asio::awaitable<void> tick_loop() {
    while (state_ != state::closed) {
      tick_timer_.expires_after(cfg_.timeout_tick);
      co_await tick_timer_.async_wait(asio::as_tuple(asio::deferred));
      if (state_ == state::closed) co_return;
      wheel_.advance([this](pending_call& e) {
        log_.debug("call seq {} timed out", e.seq);
        complete(e, errc::timeout);
      });
      auto now = std::chrono::steady_clock::now();
      if (writer_.stuck(now, cfg_.write_timeout)) {
        log_.warn("client connection write stuck for over {} ms: closing", cfg_.write_timeout.count());
        fail(errc::io_err);
      } else if (frame_deadline_.expired(now, cfg_.read_timeout) && Transport::available(socket_) == 0) {
        // (Bytes already in the socket are progress whose read completion has not run yet.)
        log_.warn("client connection: a response frame was incomplete for over {} ms (server stalled mid-frame): "
                  "closing", cfg_.read_timeout.count());
        fail(errc::io_err);
      }
    }
  }

  /// Completes the entries that waited for their batch to be written.
  void release_abandoned() {
    if (abandoned_ == 0) return;
    table_.for_each([this](std::uint64_t, pending_call& e) {
      if (e.abandoned && e.batch_gen <= written_gen_) {
        --abandoned_;
        finish(e, e.abandoned_ec);
      }
    });
  }

  void maybe_finish_close() {
    if (state_ == state::closing && table_.empty() && window_.waiting() == 0) {
      state_ = state::closed;
      log_.debug("client connection closed gracefully");
      shut_down();
    }
  }

  /// The connection failed: every call fails with `ec`, the socket closes.
  void fail(std::error_code ec) {
    if (state_ == state::closed && failure_) return;
    bool was_closed = state_ == state::closed;
    state_ = state::closed;
    failure_ = ec;
    if (!was_closed) shut_down();
    std::vector<std::uint64_t> seqs;
    table_.for_each([&](std::uint64_t seq, pending_call& e) { if (!e.abandoned) seqs.push_back(seq); });
    for (auto seq : seqs)
      if (auto* e = table_.find(seq)) complete(*e, ec);
    window_.drain_waiters([](proto::window_throttler::waiter& w) { w.wake(&w); });
    if (!writer_.writing()) {
      writer_.pending().clear();  // never to be written: nothing references the callers' blobs after this
      written_gen_ = std::numeric_limits<std::uint64_t>::max();
      release_abandoned();
    }
  }

  void shut_down() {
    Transport::close(socket_);
    tick_timer_.cancel();
    writer_wake_.notify();
    if (!writer_.writing()) after_closed();
  }

  void after_closed() {
    auto waiters = std::move(close_waiters_);
    for (auto& w : waiters) w->post(std::error_code{});
  }

  asio::any_io_executor ex_;
  socket_type socket_;
  client_config cfg_;
  logger log_;
  proto::response_reader reader_;
  proto::frame_deadline frame_deadline_;  // read_timeout of a response frame
  batch_writer writer_;
  proto::inflight_table<pending_call> table_;
  proto::window_throttler window_;
  proto::timeout_wheel<pending_call> wheel_;
  std::uint64_t timeout_ticks_;
  asio::steady_timer tick_timer_;
  wake_event writer_wake_;
  std::uint64_t pending_gen_ = 1;  // the batch calls are being added to
  std::uint64_t written_gen_ = 0;  // the last batch whose write completed
  std::size_t abandoned_ = 0;
  state state_ = state::open;
  std::error_code failure_;
  std::size_t max_in_flight_seen_ = 0;
  std::vector<std::unique_ptr<void_handler>> close_waiters_;
  thread_check running_here_;
};

}  // namespace occams_rpc::detail
