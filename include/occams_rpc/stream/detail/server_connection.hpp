// The server side of the I/O shell (io_shell.hpp, where the lifetime rule is): one server
// connection's reader, writer and ticker on the connection's executor, driving a
// session::server_session, which makes every decision (frames, slots, batches, back-pressure,
// memory budget, timeouts, drain, close). This side runs the dispatch and takes the answers.
//
// The server side of the lifetime rule: a connection also holds on to itself while a request
// it handed out has not come back (session in_flight() > 0). A server_request answers
// rpc_internal_err from its destructor, and an answer queued to the connection's executor
// delivers itself from its destructor if the executor drops it, so each request comes back
// exactly once, whatever happens to its holder. A handler owns server_requests (one plain
// pointer each), never the connection.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/session/memory_budget.hpp>
#include <occams_rpc/session/server_session.hpp>
#include <occams_rpc/stream/detail/call_observation.hpp>
#include <occams_rpc/stream/detail/exception_text.hpp>
#include <occams_rpc/stream/detail/io_shell.hpp>
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
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace occams_rpc::detail {

namespace asio = boost::asio;

/// Calls the user's dispatch: inline when it returns void, as its own coroutine when it
/// returns asio::awaitable<void> (a slow handler then never stalls the connection). The
/// request is built in the call's argument (no handle moved and destroyed on the way).
/// Inlined into the dispatch loop: a call of its own per request cost more than its body.
template <class Dispatch>
[[gnu::always_inline]] inline void invoke_dispatch(Dispatch& d, request_owner* owner, request_slot* slot, const asio::any_io_executor& ex,
                     const logger& log) {
  using result = std::invoke_result_t<Dispatch&, server_request>;
  if constexpr (std::is_void_v<result>) {
    try {
      d(server_request(owner, slot));
    } catch (const std::exception& e) {
      log.warn("dispatch threw: {}", e.what());  // the dropped request answers rpc_internal_err
    }
  } else {
    static_assert(std::is_same_v<result, asio::awaitable<void>>,
                  "a dispatch must be callable as void(server_request) or asio::awaitable<void>(server_request)");
    server_request req(owner, slot);
    // The coroutine's this_coro::cancellation_state follows the request's cancellation.
    auto done = req.bind_cancellation([log](std::exception_ptr e) {
      if (e) log.warn("dispatch coroutine threw: {}", exception_text(e));
    });
    asio::co_spawn(ex, d(std::move(req)), std::move(done));
  }
}

/// The server's list of its open connections: a connection links itself in when it starts
/// and unlinks itself when it closes (or is destroyed), in O(1) either way.
using connection_hook = boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

/// The server's memory budget, held by a base that is built before the shell's session and
/// destroyed after it (the session gives its reservation back as it goes).
struct budget_holder {
  std::shared_ptr<session::memory_budget> budget_;
};

template <class Dispatch, class Transport>
class server_connection final
    : private budget_holder,
      public io_shell<server_connection<Dispatch, Transport>, session::server_session, Transport>,
      public request_owner,
      public connection_hook,
      public std::enable_shared_from_this<server_connection<Dispatch, Transport>> {
  using shell = io_shell<server_connection<Dispatch, Transport>, session::server_session, Transport>;
  friend shell;
  using shell::ex_;
  using shell::session_;
  using shell::socket_;

 public:
  using socket_type = typename Transport::socket_type;
  using clock = std::chrono::steady_clock;

  server_connection(socket_type socket, Transport transport, std::shared_ptr<Dispatch> dispatch,
                    const server_config& cfg, logger log, std::string peer,
                    std::shared_ptr<session::memory_budget> budget, std::function<void(server_connection*)> on_closed)
      : budget_holder{std::move(budget)},
        shell(std::move(socket), std::move(transport), cfg, log, std::move(peer), *budget_, clock::now()),
        request_owner(cfg.observer ? nullptr : &session_),
        dispatch_(std::move(dispatch)),
        log_(std::move(log)),
        on_closed_(std::move(on_closed)),
        observer_(cfg.observer) {
    session_.set_budget_listener(&budget_granted, this);
  }

  /// Starts the reader and the writer; the connection owns itself from now on.
  void start() {
    if (observer_) observer_->on_event(call_side::server, observer_event::connection_opened);
    this->start_loops(this->shared_from_this());
  }

  const asio::any_io_executor& executor() const noexcept override { return ex_; }

  /// Stops reading; answers the requests already read, then closes (graceful shutdown),
  /// or closes at the first tick past close_wait.
  void stop_reading() {
    if (session_.closed()) return;
    session_.shutdown(clock::now());
    boost::system::error_code ignored;
    if (!session_.closed()) socket_.shutdown(asio::socket_base::shutdown_receive, ignored);  // the read ends
    this->after_event();
  }

  /// Closes at once; answers not yet written are lost.
  void force_close(std::string_view why, log_level level = log_level::info) {
    if (session_.closed()) return;
    session_.abort(why, level);
    this->after_event();
  }

  bool closed() const noexcept { return session_.closed(); }
  std::size_t in_flight() const noexcept { return session_.in_flight(); }

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

  // Whether we may touch the connection directly. Conservative: only when the caller runs
  // inside this connection's own dispatch call (the common, inline case), on its thread (a
  // worker answering meanwhile from another thread must not): dispatching_here is per thread.
  bool ex_running_here() const noexcept { return dispatching_here == this; }

  /// Marks this thread as inside the connection's dispatch call, until the scope ends (an
  /// exception escaping the dispatch included).
  struct dispatch_scope {
    const request_owner* outer;
    explicit dispatch_scope(const request_owner* c) noexcept : outer(std::exchange(dispatching_here, c)) {}
    dispatch_scope(const dispatch_scope&) = delete;
    dispatch_scope& operator=(const dispatch_scope&) = delete;
    ~dispatch_scope() { dispatching_here = outer; }
  };

  void deliver(request_slot& slot) {
    handler_link::detach(slot);
    if (observer_) observe_end(slot, observed_outcome(slot), observed_answer_bytes(slot));
    session_.answer(slot);
    this->after_event();
  }

  /// From the memory budget, inside another connection's event (on any thread, under the
  /// budget's lock): the wait is over. The news goes through this connection's executor. A
  /// connection with its waiter queued owns itself (it closes, leaving the queue, before its
  /// loops end), so it is alive here.
  static void budget_granted(void* p) {
    auto* c = static_cast<server_connection*>(p);
    try {
      asio::post(c->ex_, [self = c->shared_from_this()] {
        self->session_.on_budget_granted(clock::now());
        self->after_event();
      });
    } catch (const std::bad_alloc&) {  // the grant is never claimed: the budget-wait timeout
      c->log_.error("a memory budget grant was lost: out of memory");  // closes it, freeing it
    }
  }

  void dispatch_ready(clock::time_point now) {
    while (auto* s = session_.next_request(now)) {
      if (observer_) {
        s->started = now;
        observer_->on_call_start(observed_request(*s));
      }
      dispatch_scope here(this);
      invoke_dispatch(*dispatch_, this, s, ex_, log_);
    }
  }

  // --- the call observer (server_config::observer), only when one is set ---

  void observe_end(const request_slot& s, std::error_code outcome, std::size_t response_bytes) noexcept {
    call_info c = observed_request(s);
    c.duration = clock::now() - s.started;
    c.outcome = outcome;
    c.response_bytes = response_bytes;
    observer_->on_call_end(c);
  }

  /// answer_inline (request_owner's), measuring the frame it adds to the batch and the
  /// encoder's outcome. The reader runs after_event() once its dispatch calls return.
  bool observed_answer_inline(request_slot& s, msg_writer msg, std::span<const char> blob) override {
    struct measured {
      msg_writer inner;
      bool failed;
    } m{msg, false};
    auto write = [](void* p, byte_buffer& out) {
      auto& mm = *static_cast<measured*>(p);
      return mm.failed = mm.inner.write(mm.inner.ctx, out);
    };
    call_info c = observed_request(s);  // before the slot goes back
    auto started = s.started;
    std::size_t before = session_.pending_bytes();
    if (!session_.answer_inline(s, msg_writer{&m, write}, blob)) return false;
    c.duration = clock::now() - started;
    c.outcome = m.failed ? make_error_code(errc::encode) : std::error_code{};
    c.response_bytes = session_.pending_bytes() - before;
    observer_->on_call_end(c);
    return true;
  }

  // --- the shell's hooks ---

  clock::duration tick_period() const noexcept { return session_.config().timer_tick; }

  /// At context shutdown (see the lifetime rule): answers parked for a write are dropped; the
  /// requests held by coroutine frames come back as the context destroys them.
  void drop_stored_handlers() noexcept {
    context_shut_down_.store(true, std::memory_order_relaxed);
    session_.context_gone();
  }

  /// Tells the handlers of the requests cancelled by the last event (a cancel frame, a
  /// deadline passed, the connection died): their coroutines' cancellation slots are emitted.
  void drain_completions() {
    while (auto* s = session_.next_cancelled()) handler_link::emit(*s);
  }

  bool has_ready_work() const noexcept { return session_.has_request(); }
  void run_ready_work(clock::time_point now) { dispatch_ready(now); }
  void on_bytes_read(clock::time_point now) { dispatch_ready(now); }
  void on_transport_closed() {
    if (observer_) observer_->on_event(call_side::server, observer_event::connection_closed);
    if (auto f = std::move(on_closed_)) f(this);
  }
  bool holds_nothing() const noexcept { return session_.in_flight() == 0; }
  void on_loop_failed(const char* which, std::exception_ptr e) {
    force_close(fmt::format("{} failed: {}", which, exception_text(e)), log_level::error);
  }

  std::shared_ptr<Dispatch> dispatch_;
  logger log_;
  std::function<void(server_connection*)> on_closed_;
  std::atomic<bool> context_shut_down_{false};  // read by answers from other threads
  call_observer* observer_;  // server_config::observer (it outlives the server)
};

}  // namespace occams_rpc::detail
