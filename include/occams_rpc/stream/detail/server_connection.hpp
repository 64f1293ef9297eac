// The I/O shell of one server connection: a reader and a writer coroutine on the connection's
// executor, driving a session::server_session, which makes every decision (frames, slots,
// batches, back-pressure, memory budget, timeouts, drain, close). The shell keeps what the
// session cannot: the socket, the dispatch, the wake-ups and the connection's lifetime. The
// server's timer calls check_timeouts() once a tick for every connection.
//
// Lifetime, one rule: a connection owns itself (self_) from start() until nothing can reach
// it any more, that is until
//   - its reader and writer have ended: each is counted by the completion handler of its
//     co_spawn, which exists until the coroutine has ended and the handler has run, or until
//     a context shutdown destroys it unrun; and
//   - every request it handed out has come back (session in_flight() == 0): answered, or
//     dropped. A server_request answers rpc_internal_err from its destructor, and an answer
//     queued to the connection's executor delivers itself from its destructor if the executor
//     drops it, so each request comes back exactly once, whatever happens to its holder.
// Then it lets go of itself through its executor's queue (the call that let go returns
// first). A handler owns server_requests (one plain pointer each), never the connection. At
// context shutdown the connection's shutdown_hook drops its answers parked for a write and
// destroys the two waits that only it knows (the reader's and writer's wake-ups), which ends
// both loops; the requests held by coroutine frames come back as the context destroys them.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/session/memory_budget.hpp>
#include <occams_rpc/session/server_session.hpp>
#include <occams_rpc/stream/detail/exception_text.hpp>
#include <occams_rpc/stream/detail/running_here.hpp>
#include <occams_rpc/stream/detail/shutdown_hook.hpp>
#include <occams_rpc/stream/detail/wake_event.hpp>
#include <occams_rpc/stream/server_request.hpp>
#include <occams_rpc/transport/transport.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/write.hpp>
#include <boost/intrusive/list_hook.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace occams_rpc::detail {

namespace asio = boost::asio;

/// Calls the user's dispatch: inline when it returns void, as its own coroutine when it
/// returns asio::awaitable<void> (a slow handler then never stalls the connection).
template <class Dispatch>
void invoke_dispatch(Dispatch& d, server_request req, const asio::any_io_executor& ex, const logger& log) {
  using result = std::invoke_result_t<Dispatch&, server_request>;
  if constexpr (std::is_void_v<result>) {
    try {
      d(std::move(req));
    } catch (const std::exception& e) {
      log.warn("dispatch threw: {}", e.what());  // the dropped request answers rpc_internal_err
    }
  } else {
    static_assert(std::is_same_v<result, asio::awaitable<void>>,
                  "a dispatch must be callable as void(server_request) or asio::awaitable<void>(server_request)");
    asio::co_spawn(ex, d(std::move(req)), [log](std::exception_ptr e) {
      if (e) log.warn("dispatch coroutine threw: {}", exception_text(e));
    });
  }
}

/// The server's list of its open connections: a connection links itself in when it starts
/// and unlinks itself when it closes (or is destroyed), in O(1) either way.
using connection_hook = boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

template <class Dispatch, class Transport>
class server_connection final : public request_owner,
                                public shutdown_hook,
                                public connection_hook,
                                public std::enable_shared_from_this<server_connection<Dispatch, Transport>> {
 public:
  using socket_type = typename Transport::socket_type;
  using clock = std::chrono::steady_clock;

  server_connection(socket_type socket, Transport transport, std::shared_ptr<Dispatch> dispatch,
                    const server_config& cfg, logger log, std::string peer,
                    std::shared_ptr<session::memory_budget> budget, std::function<void(server_connection*)> on_closed)
      : shutdown_hook(socket.get_executor()),
        ex_(socket.get_executor()),
        socket_(std::move(socket)),
        transport_(std::move(transport)),
        dispatch_(std::move(dispatch)),
        log_(log),
        budget_(std::move(budget)),
        on_closed_(std::move(on_closed)),
        session_(cfg, std::move(log), std::move(peer), *budget_, clock::now()),
        writer_wake_(ex_),
        reader_wake_(ex_),
        running_here_(ex_) {
    session_.set_budget_listener(&budget_granted, this);
  }

  /// Starts the reader and the writer; the connection owns itself from now on.
  void start() {
    self_ = this->shared_from_this();
    try {
      asio::co_spawn(ex_, read_loop(), loop_end{loop_ref(this), "reader"});
      asio::co_spawn(ex_, write_loop(), loop_end{loop_ref(this), "writer"});
    } catch (const std::exception& e) {  // std::bad_alloc: a reader without a writer must not stay
      force_close(fmt::format("could not start: {}", e.what()), log_level::error);
      maybe_let_go();
      throw;
    }
  }

  const asio::any_io_executor& executor() const noexcept override { return ex_; }

  /// The executor's context is being destroyed with this connection open (see the rule above).
  void on_context_shutdown() noexcept override {
    auto self = this->weak_from_this().lock();  // destroyed last, after the waits below
    if (!self) return;
    context_shut_down_.store(true, std::memory_order_relaxed);
    session_.context_gone();
    auto writer = writer_wake_.take_waiter();
    auto reader = reader_wake_.take_waiter();
  }

  /// Stops reading; answers the requests already read, then closes (graceful shutdown).
  void stop_reading() {
    if (session_.closed() || session_.draining()) return;
    session_.shutdown();
    boost::system::error_code ignored;
    if (!session_.closed()) socket_.shutdown(asio::socket_base::shutdown_receive, ignored);  // the read ends
    after_event();
  }

  /// Closes at once; answers not yet written are lost.
  void force_close(std::string_view why, log_level level = log_level::info) {
    if (session_.closed()) return;
    session_.abort(why, level);
    after_event();
  }

  /// For the server's timer, once a tick: read, write, budget-wait and idle timeouts.
  void check_timeouts(clock::time_point now) {
    if (session_.closed()) return;
    // Asking the socket for its unread bytes costs a system call: only when they matter.
    session_.on_tick(now, session_.read_deadline_passed(now) ? transport_.available(socket_) : 0);
    after_event();
  }

  bool closed() const noexcept { return session_.closed(); }
  std::size_t in_flight() const noexcept { return session_.in_flight(); }

  bool answer_inline(request_slot& s, msg_writer msg, std::span<const char> blob) override {
    // The reader runs after_event() once its dispatch calls return.
    return ex_running_here() && session_.answer_inline(s, msg, blob);
  }

  // Called by server_request from any thread.
  void respond(request_slot& slot) override {
    // After the context shut down nothing runs concurrently (its destruction is under way on
    // this thread) and nothing dispatched would run: answer (that is, drop) directly.
    if (ex_running_here() || context_shut_down_.load(std::memory_order_relaxed)) {
      deliver(slot);
    } else {
      asio::dispatch(ex_, queued_answer{this, &slot});
    }
  }

 private:
  /// An answer on its way to the connection's executor. If the executor drops it unrun (its
  /// context or strand shuts down), it delivers itself from its destructor: its slot comes
  /// back either way (the request holds the connection, not this object).
  struct queued_answer {
    server_connection* conn;
    request_slot* slot;
    queued_answer(server_connection* c, request_slot* s) noexcept : conn(c), slot(s) {}
    queued_answer(queued_answer&& o) noexcept : conn(std::exchange(o.conn, nullptr)), slot(o.slot) {}
    queued_answer& operator=(queued_answer&&) = delete;
    void operator()() { std::exchange(conn, nullptr)->deliver(*slot); }
    ~queued_answer() {
      if (conn) conn->deliver(*slot);
    }
  };

  /// Counts a running loop (see the lifetime rule).
  struct loop_ref {
    server_connection* c;
    explicit loop_ref(server_connection* conn) noexcept : c(conn) { ++c->loops_; }
    loop_ref(loop_ref&& o) noexcept : c(std::exchange(o.c, nullptr)) {}
    loop_ref& operator=(loop_ref&&) = delete;
    ~loop_ref() {
      if (c && --c->loops_ == 0) c->maybe_let_go();
    }
  };

  /// A loop's co_spawn completion: closes the connection, with the reason logged, when the
  /// loop ended with an exception (std::bad_alloc under memory pressure, say).
  struct loop_end {
    loop_ref ref;
    const char* which;
    void operator()(std::exception_ptr e) {
      if (e) ref.c->force_close(fmt::format("{} failed: {}", which, exception_text(e)), log_level::error);
    }
  };

  // Whether we may touch the connection directly. Conservative: only when the caller runs
  // inside this connection's own dispatch call (the common, inline case), on its thread (a
  // worker answering meanwhile from another thread must not). The thread is checked first:
  // in_dispatch_ belongs to the connection's thread, and another thread must not read it.
  bool ex_running_here() const noexcept { return running_here_() && in_dispatch_; }

  void deliver(request_slot& slot) {
    session_.answer(slot);
    after_event();
  }

  /// From the memory budget, inside another connection's event: the wait is over.
  static void budget_granted(void* p) {
    auto* c = static_cast<server_connection*>(p);
    c->session_.on_budget_granted(clock::now());
    c->after_event();
  }

  /// What every event may have changed: the transport to close, the writer or the reader to
  /// wake, the connection to let go.
  void after_event() {
    if (session_.take_close_socket()) close_transport();
    if (writer_wake_.waiting() && (session_.has_write() || session_.closed())) writer_wake_.notify();
    if (reader_wake_.waiting() && (session_.closed() || session_.has_request() || session_.wants_read()))
      reader_wake_.notify();
    if (session_.in_flight() == 0) maybe_let_go();
  }

  void close_transport() {
    if (session_.close_gracefully()) transport_.shutdown_send(socket_);
    transport_.close(socket_);
    if (auto f = std::move(on_closed_)) f(this);
  }

  void maybe_let_go() noexcept {
    if (loops_ != 0 || session_.in_flight() != 0 || !self_) return;
    auto keep = self_;
    try {
      asio::post(ex_, [keep = std::move(keep)] {});
    } catch (...) {  // std::bad_alloc: stay (a leak, not a use after free)
      return;
    }
    self_.reset();
  }

  void dispatch_ready(clock::time_point now) {
    while (auto* s = session_.next_request(now)) {
      in_dispatch_ = true;
      invoke_dispatch(*dispatch_, server_request(this, s), ex_, log_);
      in_dispatch_ = false;
    }
  }

  asio::awaitable<void> read_loop() {
    for (;;) {
      if (session_.closed()) co_return;
      if (session_.has_request()) {  // back-pressure is over: the frames read go on
        dispatch_ready(clock::now());
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
      } else {
        auto now = clock::now();
        session_.on_read(n, now);
        dispatch_ready(now);
      }
      after_event();
    }
  }

  asio::awaitable<void> write_loop() {
    for (;;) {
      if (session_.has_write()) {
        auto batch = session_.begin_write(clock::now());
        gather_.clear();
        for (auto b : batch) gather_.emplace_back(b.data(), b.size());
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

  asio::any_io_executor ex_;
  socket_type socket_;
  Transport transport_;
  std::shared_ptr<Dispatch> dispatch_;
  logger log_;
  std::shared_ptr<session::memory_budget> budget_;  // outlives session_
  std::function<void(server_connection*)> on_closed_;
  session::server_session session_;
  std::vector<asio::const_buffer> gather_;  // written through a span: Asio copies the sequence
  wake_event writer_wake_;
  wake_event reader_wake_;
  thread_check running_here_;
  std::shared_ptr<server_connection> self_;  // see the lifetime rule
  std::size_t loops_ = 0;
  bool in_dispatch_ = false;
  std::atomic<bool> context_shut_down_{false};  // read by answers from other threads
};

}  // namespace occams_rpc::detail
