// The I/O shell of one client connection: a reader, a writer and a tick timer, all on the
// connection's executor, driving a session::client_session, which makes every decision.
// The shell keeps what the session cannot: the socket, the handlers and their cancellation
// slots. See client_stream.hpp for the public face.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/session/client_session.hpp>
#include <occams_rpc/stream/call_response.hpp>
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
#include <boost/asio/write.hpp>

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

template <class Transport>
class client_connection final : public shutdown_hook,
                                public std::enable_shared_from_this<client_connection<Transport>> {
 public:
  using socket_type = typename Transport::socket_type;
  using state = session::client_session::state;

  client_connection(socket_type socket, Transport transport, const client_config& cfg, logger log)
      : shutdown_hook(socket.get_executor()),
        ex_(socket.get_executor()),
        socket_(std::move(socket)),
        transport_(std::move(transport)),
        log_(log),
        session_(cfg, std::move(log)),
        calls_(new call_slot[session_.slot_count()]),
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
  state current_state() const noexcept { return session_.current_state(); }
  std::size_t in_flight() const noexcept { return session_.in_flight(); }
  std::size_t max_in_flight_seen() const noexcept { return session_.max_in_flight_seen(); }

  // --- calls (on the connection's executor) ---

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
    session::client_call* c = session_.current_state() == state::open ? session_.start_ping() : nullptr;
    if (!c) {
      void_handler h;
      h.emplace(std::forward<Handler>(handler), ex_);
      h.post(session_.current_state() != state::open ? session_.closed_reason() : make_error_code(errc::overloaded));
      return;
    }
    call_slot& s = calls_[session_.index_of(c->seq)];
    auto slot = asio::get_associated_cancellation_slot(handler);
    s.handler.template emplace<complete_without_response>(std::forward<Handler>(handler), ex_);
    watch_cancellation(s, std::move(slot), c->seq);
    writer_wake_.notify();
  }

  /// Refuses new calls; the calls already made finish (or time out), then the socket closes.
  void close() {
    session_.close();
    after_event();
  }

  /// Fails every call now with `ec` and closes.
  void abort(std::error_code ec) {
    session_.abort(ec);
    after_event();
  }

  /// The executor's context is being destroyed with this connection open: destroy the stored
  /// handlers (they own coroutine frames that own this connection) without running them.
  void on_context_shutdown() noexcept override {
    auto self = this->weak_from_this().lock();  // destroyed last, after the handlers below
    if (!self) return;
    session_.abort(make_error_code(errc::closed));  // every call done, every waiter refused
    while (session_.next_done()) {
    }
    std::vector<call_handler> calls;
    for (std::size_t i = 0; i < session_.slot_count(); ++i) {
      call_slot& s = calls_[i];
      if (s.slot.is_connected()) s.slot.clear();
      s.slot = {};
      if (s.handler) calls.push_back(std::move(s.handler));
    }
    std::vector<std::unique_ptr<window_waiter>> waiters;
    while (auto* w = session_.next_granted()) {
      auto* ww = static_cast<window_waiter*>(w);
      if (ww->slot.is_connected()) ww->slot.clear();
      waiters.emplace_back(ww);
    }
    auto writer = writer_wake_.take_waiter();
    auto closers = std::move(close_waiters_);
  }

  template <class Handler>
  void add_close_waiter(Handler&& handler) {
    auto h = std::make_unique<void_handler>();
    h->emplace(std::forward<Handler>(handler), ex_);
    if (session_.finished()) {
      h->post(std::error_code{});
      return;
    }
    close_waiters_.push_back(std::move(h));
  }

 private:
  /// What the shell keeps per in-flight call, at the session's index_of(seq).
  struct call_slot {
    call_handler handler;
    asio::cancellation_slot slot;
  };

  /// A call waiting for a window slot: heap-allocated, only when the window is full.
  struct window_waiter : session::waiting_call {
    call_handler handler;
    asio::cancellation_slot slot;
  };

  /// Fails the connection, with the reason logged, when one of its coroutines ends with an
  /// exception (std::bad_alloc under memory pressure, say): its calls complete with io_err.
  struct failure_handler {
    std::shared_ptr<client_connection> self;
    const char* which;
    void operator()(std::exception_ptr e) const {
      if (!e) return;
      self->log_.error("client connection {} failed: {}: closing", which, exception_text(e));
      self->abort(errc::io_err);
    }
  };

  template <class Adapter, class Handler>
  void start(proto::action act, std::span<const char> msg, std::span<const char> blob, call_response* into,
             call_response own, Handler&& handler) {
    if (session_.current_state() != state::open) {
      call_handler h;
      h.template emplace<Adapter>(std::forward<Handler>(handler), ex_);
      h.post(session_.closed_reason(), into ? into : &own);
      return;
    }
    if (session::client_call* c = session_.start_call(act, msg, blob, into, std::move(own))) {
      call_slot& s = calls_[session_.index_of(c->seq)];
      auto slot = asio::get_associated_cancellation_slot(handler);
      s.handler.template emplace<Adapter>(std::forward<Handler>(handler), ex_);
      watch_cancellation(s, std::move(slot), c->seq);
      writer_wake_.notify();
      return;
    }
    // The window is full: wait in FIFO order for a slot.
    auto w = std::make_unique<window_waiter>();
    w->act = act;
    w->msg = msg;
    w->blob = blob;
    w->response = std::move(own);
    w->into = into;
    w->slot = asio::get_associated_cancellation_slot(handler);
    w->handler.template emplace<Adapter>(std::forward<Handler>(handler), ex_);
    if (w->slot.is_connected()) w->slot.template emplace<waiter_cancel>(this, w.get());
    session_.wait(*w.release());
  }

  struct call_cancel {
    client_connection* conn;
    std::uint64_t seq;
    call_cancel(client_connection* c, std::uint64_t s) : conn(c), seq(s) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none) return;
      if (!conn->session_.cancel(seq)) return;
      conn->calls_[conn->session_.index_of(seq)].slot = {};  // being invoked: not cleared from inside
      conn->after_event();
    }
  };
  struct waiter_cancel {
    client_connection* conn;
    window_waiter* w;
    waiter_cancel(client_connection* c, window_waiter* ww) : conn(c), w(ww) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none) return;
      if (!conn->session_.cancel_waiting(*w)) return;
      std::unique_ptr<window_waiter> owned(w);
      w->handler.post(make_error_code(errc::cancelled), w->target());
      conn->after_event();
    }
  };

  void watch_cancellation(call_slot& s, asio::cancellation_slot slot, std::uint64_t seq) {
    s.slot = std::move(slot);
    if (s.slot.is_connected()) s.slot.template emplace<call_cancel>(this, seq);
  }

  /// After every event: run what completed (the handlers inline: this is the connection's
  /// executor), wake the writer, close the socket, complete the close waiters.
  void after_event() {
    drain();
    if (session_.has_write()) writer_wake_.notify();
    if (session_.take_close_socket()) {
      transport_.close(socket_);
      tick_timer_.cancel();
      writer_wake_.notify();
    }
    if (session_.finished() && !close_waiters_.empty()) {
      auto waiters = std::move(close_waiters_);
      for (auto& w : waiters) w->post(std::error_code{});
    }
  }

  void drain() {
    for (;;) {
      // Granted waiters first: a call's handler is in place before its completion is taken.
      if (auto* w = session_.next_granted()) {
        adopt(static_cast<window_waiter*>(w));
        continue;
      }
      session::client_call* c = session_.next_done();
      if (!c) return;
      call_slot& s = calls_[session_.index_of(c->seq)];
      if (s.slot.is_connected()) s.slot.clear();
      s.slot = {};
      // release() may hand the window slot, and this entry, to a waiting call at once: the
      // handler and a by-value response are moved out first.
      call_handler h = std::move(s.handler);
      std::error_code ec = c->result;
      if (c->is_ping) {
        session_.release(*c);
        h.dispatch_here(ec, nullptr);
      } else if (c->into == &c->response) {
        call_response r = std::move(c->response);
        session_.release(*c);
        h.dispatch_here(ec, &r);
      } else {
        call_response* into = c->into;
        session_.release(*c);
        h.dispatch_here(ec, into);
      }
    }
  }

  /// A waiting call came back from the session: started (its handler moves to its call's
  /// slot, still cancellable) or refused.
  void adopt(window_waiter* w) {
    std::unique_ptr<window_waiter> owned(w);
    if (w->seq == 0) {
      if (w->slot.is_connected()) w->slot.clear();
      w->handler.post(w->refused, w->target());
      return;
    }
    call_slot& s = calls_[session_.index_of(w->seq)];
    s.handler = std::move(w->handler);
    watch_cancellation(s, std::move(w->slot), w->seq);  // replaces the waiter's cancel handler
  }

  asio::awaitable<void> read_loop() {
    for (;;) {
      auto room = session_.read_buffer();
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(room.data(), room.size()),
                                                      asio::as_tuple(asio::deferred));
      if (ec) {
        session_.on_read_error(ec);
        after_event();
        co_return;
      }
      session_.on_read(n, std::chrono::steady_clock::now());
      after_event();
      if (!session_.wants_read()) co_return;
    }
  }

  asio::awaitable<void> write_loop() {
    for (;;) {
      while (!session_.has_write()) {
        if (session_.current_state() == state::closed) co_return;
        co_await writer_wake_.async_wait(asio::as_tuple(asio::deferred));
      }
      gather_.clear();
      for (auto b : session_.begin_write(std::chrono::steady_clock::now())) gather_.emplace_back(b.data(), b.size());
      // Written through a span: Asio copies the buffer sequence.
      auto [ec, n] = co_await asio::async_write(socket_, std::span<const asio::const_buffer>(gather_),
                                                asio::as_tuple(asio::deferred));
      session_.on_write_done(ec, std::chrono::steady_clock::now());
      after_event();
    }
  }

  asio::awaitable<void> tick_loop() {
    while (session_.current_state() != state::closed) {
      tick_timer_.expires_after(session_.config().timeout_tick);
      co_await tick_timer_.async_wait(asio::as_tuple(asio::deferred));
      if (session_.current_state() == state::closed) co_return;
      session_.on_tick(std::chrono::steady_clock::now(), transport_.available(socket_));
      after_event();
    }
  }

  asio::any_io_executor ex_;
  socket_type socket_;
  Transport transport_;
  logger log_;
  session::client_session session_;
  std::unique_ptr<call_slot[]> calls_;
  std::vector<asio::const_buffer> gather_;
  asio::steady_timer tick_timer_;
  wake_event writer_wake_;
  std::vector<std::unique_ptr<void_handler>> close_waiters_;
  thread_check running_here_;
};

}  // namespace occams_rpc::detail
