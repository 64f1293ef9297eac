// The I/O shell: one connection's reader, writer and tick coroutines, written once for the
// client and the server. The shell drives a session
// (session::client_session or session::server_session), which makes every decision, over a
// transport; it keeps what a session cannot: the socket, the wake-ups and the lifetime.
// client_connection and server_connection derive from it (CRTP) and add their side: the
// call handlers, or the dispatch.
//
// The lifetime rule, for both sides:
//   - A connection owns itself (self_) from start_loops() until nothing can reach it any
//     more: its loops have ended (each is counted by the completion handler of its co_spawn,
//     which exists until the coroutine has ended and the handler has run, or until a context
//     shutdown destroys it unrun), and the side holds nothing out (a server: every request it
//     handed out has come back). Then it lets go of itself through its executor's queue.
//     Its user's handles (a client_stream, the server's list) hold it besides.
//   - The loops never own the connection: they run as its member coroutines.
//   - Handlers the connection stores (a call's, a waiting call's, a close waiter's, the
//     wake-ups) belong to it and may own coroutine frames that own a handle to it. That cycle
//     ends in one of two ways only: the handler completes (a closed connection completes
//     every handler it stores), or the execution context shuts down and on_context_shutdown()
//     destroys them without running them (the shell's one body: the side drops what it
//     stores in drop_stored_handlers(), the shell its two wake-ups).
#pragma once

#include <occams_rpc/stream/detail/exception_text.hpp>
#include <occams_rpc/stream/detail/running_here.hpp>
#include <occams_rpc/stream/detail/shutdown_hook.hpp>
#include <occams_rpc/stream/detail/ticker.hpp>
#include <occams_rpc/stream/detail/wake_event.hpp>
#include <occams_rpc/transport/transport.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace occams_rpc::detail {

namespace asio = boost::asio;

/// What a side adds to the shell (each has a default in io_shell, which Derived may hide):
///   clock::duration tick_period();      // how often tick() runs (required)
///   void drop_stored_handlers();        // at context shutdown: destroy them unrun (required)
///   void drain_completions();           // run what the last event completed (client)
///   bool has_ready_work();              // work the reader does before reading more (server)
///   void run_ready_work(time_point);    // do it (server: dispatch the requests cut)
///   void on_bytes_read(time_point);     // after on_read (server: dispatch)
///   void on_transport_closed();         // the transport was just closed
///   void after_event_side();            // anything else after an event (client: close waiters)
///   bool holds_nothing();               // may let go of itself (server: no request out)
///   void on_loop_failed(const char* which, std::exception_ptr);  // a loop threw
template <class Derived, class Session, class Transport>
class io_shell : public shutdown_hook {
 public:
  using socket_type = typename Transport::socket_type;
  using clock = std::chrono::steady_clock;

  const asio::any_io_executor& get_executor() const noexcept { return ex_; }
  /// Whether the calling thread runs the connection's executor now.
  bool running_here() const noexcept { return running_here_(); }

  /// Once a tick (the shell's ticker calls it): timeouts, stuck writes, stalled frames.
  void tick(clock::time_point now) {
    if (session_.closed()) return;
    // Asking the socket for its unread bytes costs a system call: only when they matter.
    session_.on_tick(now, session_.read_deadline_passed(now) ? transport_.available(socket_) : 0);
    after_event();
  }

 protected:
  template <class... SessionArgs>
  io_shell(socket_type socket, Transport transport, SessionArgs&&... session_args)
      : shutdown_hook(socket.get_executor()),
        ex_(socket.get_executor()),
        socket_(std::move(socket)),
        transport_(std::move(transport)),
        session_(std::forward<SessionArgs>(session_args)...),
        writer_wake_(ex_),
        reader_wake_(ex_),
        ticker_(ex_),
        running_here_(ex_) {}

  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  /// Starts the reader, the writer and the ticker; the connection owns itself from now on.
  void start_loops(std::shared_ptr<Derived> self) {
    self_ = std::move(self);
    try {
      spawn_loop(read_loop(), "reader");
      spawn_loop(write_loop(), "writer");
      spawn_loop(ticker_.run(derived().tick_period(), [this](clock::time_point now) {
                   tick(now);
                   return !session_.closed();
                 }),
                 "ticker");
    } catch (...) {  // std::bad_alloc: a reader without a writer must not stay
      derived().on_loop_failed("start", std::current_exception());
      maybe_let_go();
      throw;
    }
  }

  /// Runs one more loop of the connection's (counted by the lifetime rule).
  template <class Awaitable>
  void spawn_loop(Awaitable loop, const char* which) {
    asio::co_spawn(ex_, std::move(loop), loop_end{loop_ref(this), which});
  }

  /// Wakes the writer if it waits (a batch may be pending). Inside a read's event the reader
  /// flushes at the end of it instead.
  void wake_writer() {
    if (writer_wake_.waiting() && !in_read_event_) writer_wake_.notify();
  }

  /// What every event may have changed: completions to run, the transport to close, the
  /// writer or the reader to wake, the connection to let go.
  void after_event() {
    derived().drain_completions();
    if (session_.take_close_socket()) {
      if (session_.close_gracefully()) transport_.shutdown_send(socket_);
      transport_.close(socket_);
      ticker_.stop();
      derived().on_transport_closed();
    }
    if (writer_wake_.waiting() && (session_.closed() || (session_.has_write() && !in_read_event_)))
      writer_wake_.notify();
    if (reader_wake_.waiting() && (session_.closed() || derived().has_ready_work() || session_.wants_read()))
      reader_wake_.notify();
    derived().after_event_side();
    if (derived().holds_nothing()) maybe_let_go();
  }

  /// The executor's context is being destroyed with this connection open (see the lifetime
  /// rule): the side's stored handlers and the two waits only the shell knows are destroyed
  /// unrun, which ends the loops (Asio destroys the ticker's wait itself).
  void on_context_shutdown() noexcept final {
    auto self = derived().weak_from_this().lock();  // destroyed last, after the handlers below
    if (!self) return;
    derived().drop_stored_handlers();
    auto writer = writer_wake_.take_waiter();
    auto reader = reader_wake_.take_waiter();
  }

  // The side's defaults.
  void drain_completions() {}
  bool has_ready_work() const noexcept { return false; }
  void run_ready_work(clock::time_point) {}
  void on_bytes_read(clock::time_point) {}
  void on_transport_closed() {}
  void after_event_side() {}
  bool holds_nothing() const noexcept { return true; }

  asio::any_io_executor ex_;
  socket_type socket_;
  Transport transport_;
  Session session_;

 private:
  /// Counts a running loop (see the lifetime rule).
  struct loop_ref {
    io_shell* s;
    explicit loop_ref(io_shell* shell) noexcept : s(shell) { ++s->loops_; }
    loop_ref(loop_ref&& o) noexcept : s(std::exchange(o.s, nullptr)) {}
    loop_ref& operator=(loop_ref&&) = delete;
    ~loop_ref() {
      if (s && --s->loops_ == 0) s->maybe_let_go();
    }
  };

  /// A loop's co_spawn completion: a loop that ended with an exception (std::bad_alloc under
  /// memory pressure, say) fails the connection, with the reason logged.
  struct loop_end {
    loop_ref ref;
    const char* which;
    void operator()(std::exception_ptr e) {
      if (e) ref.s->derived().on_loop_failed(which, e);
    }
  };

  void maybe_let_go() noexcept {
    if (loops_ != 0 || !self_ || !derived().holds_nothing()) return;
    auto keep = self_;
    try {
      asio::post(ex_, [keep = std::move(keep)] {});
    } catch (...) {  // std::bad_alloc: stay (a leak, not a use after free)
      return;
    }
    self_.reset();
  }

  asio::awaitable<void> read_loop() {
    for (;;) {
      if (session_.closed()) co_return;
      if (derived().has_ready_work()) {  // e.g. back-pressure is over: the frames read go on
        derived().run_ready_work(clock::now());
        after_event();
        continue;
      }
      if (!session_.wants_read()) {
        co_await reader_wake_.async_wait(asio::as_tuple(asio::deferred));
        continue;
      }
      auto room = session_.read_buffer();
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(room.data(), room.size()),
                                                      asio::as_tuple(asio::deferred));
      if (session_.closed()) co_return;
      if (ec) {
        session_.on_read_error(ec);
        after_event();
        continue;
      }
      // The answers (server) or the calls made by completed callers (client) in this event
      // make one batch: the reader writes it at the end, without a trip through the queue,
      // so that each connection's batch leaves as soon as it is whole rather than after
      // every other ready connection's reads (which made both peers idle in turn).
      in_read_event_ = true;
      auto now = clock::now();
      session_.on_read(n, now);
      derived().on_bytes_read(now);
      after_event();
      in_read_event_ = false;
      if (writer_wake_.waiting() && session_.has_write()) flush_from_reader(now);
    }
  }

  /// The reader writes the batch of its read's event: itself when the transport can write
  /// without waiting (can_try_write), handing the writer only what the socket did not take;
  /// else by resuming the writer at once.
  void flush_from_reader(clock::time_point now) {
    if constexpr (can_try_write<Transport>) {
      take_batch(now);
      std::error_code ec;
      std::size_t n = transport_.try_write(socket_, gather_, ec);
      if (ec || n == batch_bytes_) {
        session_.on_write_done(ec, now);
        after_event();
        return;
      }
      drop_written(n);
      unfinished_ = true;  // the writer writes the rest (it waits: nothing else writes)
    }
    writer_wake_.notify_here();
  }

  /// Takes the session's batch into gather_.
  void take_batch(clock::time_point now) {
    auto batch = session_.begin_write(now);
    gather_.clear();
    batch_bytes_ = 0;
    for (auto b : batch) {
      gather_.emplace_back(b.data(), b.size());
      batch_bytes_ += b.size();
    }
  }

  /// Drops the first `n` bytes of gather_ (a write took them).
  void drop_written(std::size_t n) {
    auto it = gather_.begin();
    for (; n >= it->size(); ++it) n -= it->size();
    *it += n;
    gather_.erase(gather_.begin(), it);
  }

  asio::awaitable<void> write_loop() {
    for (;;) {
      if (unfinished_ || session_.has_write()) {
        if (!std::exchange(unfinished_, false)) take_batch(clock::now());
        // Written through a span: Asio copies the buffer sequence.
        auto [ec, n] = co_await asio::async_write(socket_, std::span<const asio::const_buffer>(gather_),
                                                  asio::as_tuple(asio::deferred));
        session_.on_write_done(ec, clock::now());
        after_event();
        continue;
      }
      if (session_.closed()) co_return;
      co_await writer_wake_.async_wait(asio::as_tuple(asio::deferred));
    }
  }

  std::vector<asio::const_buffer> gather_;  // the batch being written
  std::size_t batch_bytes_ = 0;             // its bytes
  bool unfinished_ = false;                 // the reader wrote part of it: the writer writes the rest
  wake_event writer_wake_;
  wake_event reader_wake_;
  ticker ticker_;
  thread_check running_here_;
  bool in_read_event_ = false;  // the reader flushes the batch at the end of the event
  std::shared_ptr<Derived> self_;  // see the lifetime rule
  std::size_t loops_ = 0;
};

}  // namespace occams_rpc::detail
