// One server connection: a reader coroutine that cuts frames and hands requests to the
// dispatch, and a writer coroutine that flushes answers in batches when its queue drains.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/proto/frame_deadline.hpp>
#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/stream/detail/batch_writer.hpp>
#include <occams_rpc/stream/detail/exception_text.hpp>
#include <occams_rpc/stream/detail/memory_budget.hpp>
#include <occams_rpc/stream/detail/running_here.hpp>
#include <occams_rpc/stream/detail/shutdown_hook.hpp>
#include <occams_rpc/stream/detail/wake_event.hpp>
#include <occams_rpc/stream/server_request.hpp>
#include <occams_rpc/transport/transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/intrusive/list_hook.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace occams_rpc::detail {

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

  server_connection(socket_type socket, std::shared_ptr<Dispatch> dispatch, const server_config& cfg, logger log,
                    std::string peer, std::shared_ptr<memory_budget> budget,
                    std::function<void(server_connection*)> on_closed)
      : shutdown_hook(socket.get_executor()),
        ex_(socket.get_executor()),
        socket_(std::move(socket)),
        dispatch_(std::move(dispatch)),
        cfg_(cfg),
        log_(std::move(log)),
        peer_(std::move(peer)),
        budget_(std::move(budget)),
        on_closed_(std::move(on_closed)),
        reader_(cfg.max_frame_size, cfg.buffer_size),
        writer_(cfg.buffer_size),
        writer_wake_(ex_),
        reader_wake_(ex_),
        running_here_(ex_),
        last_activity_(clock::now()) {
    budget_wait_.wake = &reader_wake_;
  }

  void start() {
    auto self = this->shared_from_this();
    try {
      asio::co_spawn(ex_, [self] { return self->read_loop(); }, failure_handler{self, "reader"});
      asio::co_spawn(ex_, [self] { return self->write_loop(); }, failure_handler{self, "writer"});
    } catch (const std::exception& e) {  // std::bad_alloc: a reader without a writer must not stay
      force_close(fmt::format("could not start: {}", e.what()), log_level::error);
      throw;
    }
  }

  const asio::any_io_executor& executor() const noexcept override { return ex_; }

  /// The executor's context is being destroyed with this connection open: destroy the
  /// wake-up handlers (they own the coroutine frames that own this connection).
  void on_context_shutdown() noexcept override {
    auto self = this->weak_from_this().lock();  // destroyed last, after the handlers below
    if (!self) return;
    closed_ = true;
    context_shut_down_.store(true, std::memory_order_relaxed);
    budget_->cancel(budget_wait_);
    auto writer = writer_wake_.take_waiter();
    auto reader = reader_wake_.take_waiter();
    // Answered requests parked until their write completes: that write never will.
    for (auto* s : pending_slots_) release(s);
    for (auto* s : writing_slots_) release(s);
    pending_slots_.clear();
    writing_slots_.clear();
    // Requests that outlive their dispatch may still be held by coroutine frames that the
    // context destroys after this: keep_alive_ stays until they are dropped (each answer then
    // runs here directly, see respond), and the last one lets go through the context's queue,
    // which the context destroys last.
  }

  /// Stops reading; answers the requests already read, then closes (graceful shutdown).
  void stop_reading() {
    if (closed_ || draining_) return;
    draining_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(asio::socket_base::shutdown_receive, ignored);  // the pending read ends
    reader_wake_.notify();
    maybe_close();
  }

  /// Closes at once; answers not yet written are lost.
  void force_close(std::string_view why, log_level level = log_level::info) {
    if (closed_) return;
    log_.log(level, "closing connection from {}: {}", peer_, why);
    close_now();
  }

  /// For the server's timer, once a tick: a connection whose request frame has taken longer
  /// than read_timeout to arrive is closed; so is one whose write is stuck, one that has waited
  /// idle_timeout for the memory budget, and an idle one (nothing in flight, no traffic).
  void check_timeouts(clock::time_point now) {
    if (closed_) return;
    // Bytes already in the socket are progress the reader has not run for yet (this tick may
    // run before their completion): no timeout for them.
    if (frame_deadline_.expired(now, cfg_.read_timeout) && Transport::available(socket_) == 0)
      return force_close(fmt::format("read timeout: a request frame was incomplete for over {} ms",
                                     cfg_.read_timeout.count()), log_level::warn);
    if (writer_.stuck(now, cfg_.write_timeout)) return force_close("write timed out");
    if (waiting_for_budget_) {
      if (now - budget_wait_started_ >= cfg_.idle_timeout)
        force_close(fmt::format("waited over {} ms for the request memory budget (server overloaded)",
                                cfg_.idle_timeout.count()), log_level::warn);
      return;
    }
    if (in_use_ > 0 || writer_.writing() || !writer_.pending().empty() || frame_deadline_.running()) return;
    if (now - last_activity_ >= cfg_.idle_timeout) force_close("idle timeout");
  }

  bool closed() const noexcept { return closed_; }
  std::size_t in_flight() const noexcept { return in_use_; }

  bool answer_inline(request_slot& s, msg_writer msg, std::span<const char> blob) override {
    if (!ex_running_here() || closed_) return false;
    auto& batch = writer_.pending();
    auto mark = batch.begin_response(s.header.seq);
    std::error_code ec;
    try {
      ec = msg.write(msg.ctx, batch.body());
    } catch (...) {
      batch.rollback(mark);  // the request stays unanswered: its handle answers rpc_internal_err
      throw;
    }
    if (ec) {
      batch.rollback(mark);
      batch.add_error_string(s.header.seq, to_wire_string(errc::encode));
    } else {
      batch.end_response(mark, blob);  // small: copied
    }
    s.answered = true;
    release(&s);
    writer_wake_.notify();
    return true;
  }

  // Called by server_request from any thread.
  void respond(request_slot& slot) override {
    // After the context shut down nothing runs concurrently (its destruction is under way on
    // this thread) and nothing dispatched would run: answer (that is, drop) directly.
    if (ex_running_here() || context_shut_down_.load(std::memory_order_relaxed)) {
      queue_response(slot);
    } else {
      asio::dispatch(ex_, queued_answer{this->shared_from_this(), &slot});
    }
  }

 private:
  /// An answer on its way to the connection's executor. If the context (or a strand) shuts
  /// down first, the queued function is destroyed without running: the answer is then dropped
  /// here, so that its slot is released (and with the last one, the connection's hold on
  /// itself).
  struct queued_answer {
    std::shared_ptr<server_connection> conn;
    request_slot* slot;
    queued_answer(std::shared_ptr<server_connection> c, request_slot* s) noexcept : conn(std::move(c)), slot(s) {}
    queued_answer(queued_answer&& o) noexcept : conn(std::move(o.conn)), slot(o.slot) {}
    queued_answer& operator=(queued_answer&&) = delete;
    void operator()() {
      auto c = std::move(conn);
      c->queue_response(*slot);
    }
    ~queued_answer() {
      if (conn) conn->queue_response(*slot);  // destroyed without running: the context is going away
    }
  };

  // Whether we may touch the connection directly. Conservative: only when the caller runs
  // inside this connection's own dispatch call (the common, inline case), on its thread (a
  // worker answering meanwhile from another thread must not). The thread is checked first:
  // in_dispatch_ belongs to the connection's thread, and another thread must not read it.
  bool ex_running_here() const noexcept { return running_here_() && in_dispatch_; }

  /// Closes the connection, with the reason logged, when one of its coroutines ends with an
  /// exception (std::bad_alloc under memory pressure, say): other connections carry on.
  struct failure_handler {
    std::shared_ptr<server_connection> self;
    const char* which;
    void operator()(std::exception_ptr e) const {
      if (e) self->force_close(fmt::format("{} failed: {}", which, exception_text(e)), log_level::error);
    }
  };

  void queue_response(request_slot& s) {
    s.answered = true;
    if (closed_) {
      release(&s);
      return;
    }
    switch (s.flag) {
      case proto::response_flag::ok:
        writer_.pending().add_response(s.header.seq, s.resp_msg.span(), s.resp_blob.span());
        break;
      case proto::response_flag::error_code:
        writer_.pending().add_error_code(s.header.seq, s.error_code);
        break;
      case proto::response_flag::error_string:
        writer_.pending().add_error_string(s.header.seq, s.resp_msg.view());
        break;
    }
    // A large msg or blob is written from the slot itself: release it after that write.
    if (s.flag == proto::response_flag::ok &&
        (writer_.pending().would_reference(s.resp_msg.span()) || writer_.pending().would_reference(s.resp_blob.span())))
      pending_slots_.push_back(&s);
    else
      release(&s);
    writer_wake_.notify();
  }

  request_slot* acquire() {
    request_slot* s = free_;
    if (s) {
      free_ = s->next_free;
    } else {
      slots_.push_back(std::make_unique<request_slot>());
      s = slots_.back().get();
    }
    ++in_use_;
    s->in_use = true;
    s->answered = false;
    return s;
  }
  void release(request_slot* s) {
    s->next_free = free_;
    free_ = s;
    --in_use_;
    s->in_use = false;
    if (s->reserved) budget_->give_back(std::exchange(s->reserved, 0));
    if (s->outlived_dispatch) {
      s->outlived_dispatch = false;
      // The last request that outlived its dispatch is done: stop keeping this connection
      // alive, once the call that got here has returned.
      if (--outliving_ == 0) asio::post(ex_, [kept = std::move(keep_alive_)] {});
    }
    retain_or_free(*s);
    reader_wake_.notify();
    maybe_close();
  }

  /// Keeps a slot's large buffers for the next large request while the connection's budget
  /// allows (a stream of large frames then allocates nothing); frees them past it.
  void retain_or_free(request_slot& s) {
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
  void release_reader_memory() {
    std::size_t cap = reader_.capacity();
    if (cap > cfg_.buffer_size && retained_ + cap > cfg_.max_retained_buffers) reader_.shrink_to(cfg_.buffer_size);
  }

  /// A frame larger than buffer_size reserves its whole size from the server's budget before
  /// its body is read. False when the budget cannot cover it now: then wait_for_budget().
  bool reserve_for_pending_frame() noexcept {
    std::size_t want = reader_.pending_frame_size();
    if (want <= cfg_.buffer_size || reserved_ != 0 || reader_.buffered() == 0) return true;
    if (!budget_->try_take(want)) return false;
    reserved_ = want;
    return true;
  }

  asio::awaitable<void> wait_for_budget() {
    std::size_t want = reader_.pending_frame_size();
    log_.debug("connection from {}: waiting for {} bytes of the request memory budget ({} of {} in use)", peer_, want,
               budget_->used(), budget_->limit());
    frame_deadline_.pause();
    waiting_for_budget_ = true;
    budget_wait_started_ = clock::now();
    budget_wait_.want = want;
    budget_->wait(budget_wait_);
    while (!budget_wait_.granted && !closed_) co_await reader_wake_.async_wait(asio::as_tuple(asio::deferred));
    waiting_for_budget_ = false;
    if (closed_) co_return;  // close_now() gave back what was granted
    budget_wait_.granted = false;
    reserved_ = want;
    auto now = clock::now();
    last_activity_ = now;
    frame_deadline_.resume(true, now);
  }

  bool must_pause() const noexcept {
    return in_use_ >= cfg_.max_inflight || writer_.pending().bytes() >= cfg_.max_pending_write;
  }

  asio::awaitable<void> read_loop() {
    proto::request_frame frame;
    for (;;) {
      if (!reserve_for_pending_frame()) {
        co_await wait_for_budget();
        if (closed_) co_return;
      }
      auto room = reader_.prepare(cfg_.buffer_size / 2);
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(room.data(), room.size()),
                                                      asio::as_tuple(asio::deferred));
      if (closed_) co_return;
      if (ec) {
        if (ec != asio::error::eof && !draining_) log_.debug("connection from {}: read ended: {}", peer_, ec.message());
        draining_ = true;  // a half-closed client still gets its answers
        frame_deadline_.pause();
        maybe_close();
        co_return;
      }
      auto now = clock::now();
      last_activity_ = now;
      reader_.commit(n);
      bool completed = false;
      std::error_code fec;
      for (;;) {
        auto st = reader_.next(frame, fec);
        if (st == proto::read_status::need_more) break;
        if (st == proto::read_status::error) {
          force_close(fmt::format("bad request frame: {}", fec.message()), log_level::warn);
          co_return;
        }
        completed = true;
        if (frame.is_ping()) {
          give_back_reservation();
          writer_.pending().add_response(frame.header.seq, {});
          writer_wake_.notify();
        } else {
          handle(frame);
        }
        // Back-pressure: too many requests in flight or too many answers unwritten.
        if (must_pause()) {
          frame_deadline_.pause();
          while (must_pause() && !closed_) co_await reader_wake_.async_wait(asio::as_tuple(asio::deferred));
          if (closed_) co_return;
          now = clock::now();
        }
      }
      frame_deadline_.after_read(reader_.buffered() > 0, completed, now);
      release_reader_memory();
    }
  }

  void give_back_reservation() noexcept {
    if (reserved_) budget_->give_back(std::exchange(reserved_, 0));
  }

  void handle(const proto::request_frame& f) {
    // The frame's reservation goes with its request until the answer; a large frame that came
    // whole in one read is counted now.
    std::size_t size = proto::request_header_size + f.header.body_len();
    std::size_t reserved = std::exchange(reserved_, 0);
    if (reserved == 0 && size > cfg_.buffer_size) {
      budget_->take_anyway(size);
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
    } catch (...) {  // std::bad_alloc: the reservation and the slot go back before the reader fails
      if (s) release(s);
      if (reserved) budget_->give_back(reserved);
      throw;
    }
    s->reserved = reserved;
    in_dispatch_ = true;
    invoke_dispatch(*dispatch_, server_request(this, s), ex_, log_);
    in_dispatch_ = false;
    // Answered inline (the common case), the request needed nothing more: the reader holds
    // this connection. Kept for later, it must not outlive the connection.
    if (s->in_use && !s->answered) {
      s->outlived_dispatch = true;
      if (outliving_++ == 0) keep_alive_ = this->shared_from_this();
    }
  }

  asio::awaitable<void> write_loop() {
    for (;;) {
      while (writer_.pending().empty()) {
        if (closed_) co_return;
        co_await writer_wake_.async_wait(asio::as_tuple(asio::deferred));
      }
      if (closed_) co_return;
      writing_slots_.swap(pending_slots_);
      auto ec = co_await writer_.write_next(socket_);
      last_activity_ = clock::now();
      for (auto* s : writing_slots_) release(s);
      writing_slots_.clear();
      if (ec) {
        if (!closed_) force_close(fmt::format("write failed: {}", ec.message()));
        co_return;
      }
      reader_wake_.notify();  // room in the write queue again
      maybe_close();
    }
  }

  void maybe_close() {
    if (closed_ || !draining_) return;
    if (in_use_ == 0 && writer_.pending().empty() && !writer_.writing()) {
      Transport::shutdown_send(socket_);
      close_now();
    }
  }

  void close_now() {
    closed_ = true;
    frame_deadline_.pause();
    budget_->cancel(budget_wait_);
    give_back_reservation();
    Transport::close(socket_);
    writer_wake_.notify();
    reader_wake_.notify();
    for (auto* s : pending_slots_) release(s);
    pending_slots_.clear();
    writer_.pending().clear();
    if (auto f = std::move(on_closed_)) f(this);
  }

  asio::any_io_executor ex_;
  socket_type socket_;
  std::shared_ptr<Dispatch> dispatch_;
  server_config cfg_;
  logger log_;
  std::string peer_;
  std::shared_ptr<memory_budget> budget_;
  memory_budget::waiter budget_wait_;
  std::size_t reserved_ = 0;  // budget bytes held for the frame being received
  bool waiting_for_budget_ = false;
  clock::time_point budget_wait_started_{};
  proto::frame_deadline frame_deadline_;
  std::function<void(server_connection*)> on_closed_;
  proto::request_reader reader_;
  batch_writer writer_;
  std::vector<request_slot*> pending_slots_;  // slots whose blobs the pending batch references
  std::vector<request_slot*> writing_slots_;
  wake_event writer_wake_;
  wake_event reader_wake_;
  thread_check running_here_;
  // Every slot ever made, owned here: one in flight may be referenced only by an answer
  // queued to this executor, which a context shutdown destroys without running.
  std::vector<std::unique_ptr<request_slot>> slots_;
  request_slot* free_ = nullptr;  // the unused ones
  std::size_t retained_ = 0;      // large buffer bytes kept by the slots (max_retained_buffers)
  std::size_t in_use_ = 0;
  std::size_t outliving_ = 0;  // requests unanswered after their dispatch call returned
  std::shared_ptr<server_connection> keep_alive_;  // held while outliving_ > 0
  bool in_dispatch_ = false;
  std::atomic<bool> context_shut_down_{false};  // read by answers from other threads
  bool draining_ = false;
  bool closed_ = false;
  clock::time_point last_activity_;
};

}  // namespace occams_rpc::detail
