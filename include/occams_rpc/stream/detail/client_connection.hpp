// The client side of the I/O shell (io_shell.hpp, where the lifetime rule is): one client
// connection's reader, writer and ticker on the connection's executor, driving a
// session::client_session, which makes every decision. This side keeps the handlers and their
// cancellation slots: each call's at the session's index_of(seq), each waiting call's in its
// own object. See client_stream.hpp for the public face.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/session/client_session.hpp>
#include <occams_rpc/stream/detail/call_observation.hpp>
#include <occams_rpc/stream/call_response.hpp>
#include <occams_rpc/stream/detail/call_deadline.hpp>
#include <occams_rpc/stream/detail/exception_text.hpp>
#include <occams_rpc/stream/detail/io_shell.hpp>
#include <occams_rpc/stream/detail/stored_handler.hpp>
#include <occams_rpc/transport/transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/deferred.hpp>

#include <chrono>
#include <exception>
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
class client_connection final
    : public io_shell<client_connection<Transport>, session::client_session, Transport>,
      public std::enable_shared_from_this<client_connection<Transport>> {
  using shell = io_shell<client_connection<Transport>, session::client_session, Transport>;
  friend shell;
  using shell::ex_;
  using shell::session_;

 public:
  using socket_type = typename Transport::socket_type;
  using state = session::client_session::state;

  client_connection(socket_type socket, Transport transport, const client_config& cfg, logger log)
      : shell(std::move(socket), std::move(transport), cfg, log),
        log_(std::move(log)),
        calls_(new call_slot[session_.slot_count()]),
        observer_(cfg.observer) {}

  void start() { this->start_loops(this->shared_from_this()); }

  state current_state() const noexcept { return session_.current_state(); }
  std::size_t in_flight() const noexcept { return session_.in_flight(); }
  std::size_t max_in_flight_seen() const noexcept { return session_.max_in_flight_seen(); }
  session::client_session::extensions_state extensions() const noexcept { return session_.extensions(); }

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
    this->wake_writer();
  }

  /// Refuses new calls; the calls already made finish (or time out), then the socket closes.
  void close() {
    session_.close();
    this->after_event();
  }

  /// Fails every call now with `ec` and closes.
  void abort(std::error_code ec) {
    session_.abort(ec);
    this->after_event();
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
  /// What this side keeps per in-flight call, at the session's index_of(seq).
  struct call_slot {
    call_handler handler;
    asio::cancellation_slot slot;
    client_observation observed;  // set only while an observer is
  };

  /// A call waiting for a window slot: heap-allocated, only when the window is full.
  struct window_waiter : session::waiting_call {
    call_handler handler;
    asio::cancellation_slot slot;
    bool cancelled = false;  // cancelled after the session handed it back, before adopt()
    client_observation observed;
  };

  template <class Adapter, class Handler>
  void start(proto::action act, std::span<const char> msg, std::span<const char> blob, call_response* into,
             call_response&& own, Handler&& handler) {
    if (session_.current_state() != state::open) {
      call_handler h;
      h.template emplace<Adapter>(std::forward<Handler>(handler), ex_);
      h.post(session_.closed_reason(), into ? into : &own);
      return;
    }
    // The clock is read only when it matters: a deadline, or deadlines on the wire.
    auto deadline = call_deadline(handler);
    auto now = deadline != no_deadline || session_.needs_time() ? std::chrono::steady_clock::now()
                                                                 : std::chrono::steady_clock::time_point{};
    client_observation observed;
    if (observer_) observed.start(act, msg, blob);
    if (session::client_call* c = session_.start_call(act, msg, blob, into, std::move(own), now, deadline)) {
      call_slot& s = calls_[session_.index_of(c->seq)];
      if (observer_) observe_start(s, observed, c->seq);
      auto slot = asio::get_associated_cancellation_slot(handler);
      s.handler.template emplace<Adapter>(std::forward<Handler>(handler), ex_);
      watch_cancellation(s, std::move(slot), c->seq);
      this->wake_writer();
      return;
    }
    // The window is full: wait in FIFO order for a slot. The session's queue holds it until
    // it comes back through next_granted(), where adopt() takes ownership again.
    if (observer_) observer_->on_event(call_side::client, observer_event::window_wait);
    auto w = std::make_unique<window_waiter>();
    w->act = act;
    w->msg = msg;
    w->blob = blob;
    w->response = std::move(own);
    w->into = into;
    w->deadline = deadline;
    w->observed = observed;
    w->slot = asio::get_associated_cancellation_slot(handler);
    w->handler.template emplace<Adapter>(std::forward<Handler>(handler), ex_);
    if (w->slot.is_connected()) w->slot.template emplace<waiter_cancel>(this, w.get());
    session_.wait(*w.release());
  }

  // Each acts once: it stays in the caller's slot after acting (it cannot clear the slot it
  // runs from), and a later emit must touch neither the freed waiter nor, perhaps, a
  // destroyed connection.
  struct call_cancel {
    client_connection* conn;
    std::uint64_t seq;
    call_cancel(client_connection* c, std::uint64_t s) : conn(c), seq(s) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none || !conn) return;
      if (!conn->session_.cancel(seq)) return;
      auto* c = std::exchange(conn, nullptr);
      c->calls_[c->session_.index_of(seq)].slot = {};  // being invoked: not cleared from inside
      c->after_event();
    }
  };
  struct waiter_cancel {
    client_connection* conn;
    window_waiter* w;
    waiter_cancel(client_connection* c, window_waiter* ww) : conn(c), w(ww) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none || !w) return;
      if (!conn->session_.cancel_waiting(*w)) {
        // Handed back already (a call's handler run by drain_completions cancels a waiting
        // call that has just got a window slot): adopt() is still to come and cancels it.
        w->cancelled = true;
        return;
      }
      std::unique_ptr<window_waiter> owned(std::exchange(w, nullptr));
      owned->handler.post(make_error_code(errc::cancelled), owned->target());
      conn->after_event();
    }
  };

  void observe_start(call_slot& s, const client_observation& observed, std::uint64_t seq) noexcept {
    s.observed = observed;
    observer_->on_call_start(observed.info(seq));
  }

  void watch_cancellation(call_slot& s, asio::cancellation_slot slot, std::uint64_t seq) {
    s.slot = std::move(slot);
    if (s.slot.is_connected()) s.slot.template emplace<call_cancel>(this, seq);
  }

  // --- the shell's hooks ---

  /// Runs what the last event completed: each handler inline (this is the connection's
  /// executor), after its call was released.
  void drain_completions() {
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
      // release() may hand the window slot, and this entry, to a waiting call at once: a
      // by-value response is moved out first. The handler stays in its slot: the waiter is
      // adopted into it only by a later drain, and dispatching takes the handler out of its
      // storage before it runs (so the call it makes may reuse the slot).
      std::error_code ec = c->result;
      if (observer_ && !c->is_ping) s.observed.end(*observer_, c->seq, ec, c->response_bytes);
      if (c->is_ping) {
        session_.release(*c);
        s.handler.dispatch_here(ec, nullptr);
      } else if (c->into == &c->response) {
        call_response r = std::move(c->response);
        session_.release(*c);
        s.handler.dispatch_here(ec, &r);
      } else {
        call_response* into = c->into;
        session_.release(*c);
        s.handler.dispatch_here(ec, into);
      }
    }
  }

  std::chrono::steady_clock::duration tick_period() const noexcept { return session_.config().timeout_tick; }

  /// At context shutdown (see the lifetime rule in io_shell.hpp): every call done, every
  /// waiter refused, and each handler destroyed without running.
  void drop_stored_handlers() noexcept {
    session_.abort(make_error_code(errc::closed));
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
    auto closers = std::move(close_waiters_);
  }

  void after_event_side() {
    if (session_.finished() && !close_waiters_.empty()) {
      auto waiters = std::move(close_waiters_);
      for (auto& w : waiters) w->post(std::error_code{});
    }
  }

  void on_loop_failed(const char* which, std::exception_ptr e) {
    log_.error("client connection {} failed: {}: closing", which, exception_text(e));
    abort(errc::io_err);
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
    if (observer_) observe_start(s, w->observed, w->seq);
    if (w->cancelled) {  // its completion is taken by the drain_completions running this
      if (w->slot.is_connected()) w->slot.clear();
      session_.cancel(w->seq);
      return;
    }
    watch_cancellation(s, std::move(w->slot), w->seq);  // replaces the waiter's cancel handler
  }

  logger log_;
  std::unique_ptr<call_slot[]> calls_;
  std::vector<std::unique_ptr<void_handler>> close_waiters_;
  call_observer* observer_;  // client_config::observer (it outlives the stream)
};

}  // namespace occams_rpc::detail
