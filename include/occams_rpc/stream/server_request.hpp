// server_request: one request handed to the user's dispatch, and the means to answer it.
// A move-only handle; answer exactly once, from any coroutine or thread. A request dropped
// without an answer is answered rpc_internal_err, so that no client waits for nothing.
#pragma once

#include <occams_rpc/core/buffer.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/proto/header.hpp>
#include <occams_rpc/session/server_session.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/recycling_allocator.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

namespace occams_rpc {

namespace asio = boost::asio;

namespace detail {

/// Pooled per connection (by its session): the request's bytes and the answer.
using request_slot = session::request_slot;

/// The cancellation signal of one request's handler coroutine, linked both ways with the
/// request's slot while the request is unanswered; on the connection's executor only. The
/// coroutine's completion handler owns it, so it outlives everything bound to its slot; the
/// slot's answer (detach) or the handler's end (destructor) breaks the link, whichever
/// comes first.
struct handler_link {
  asio::cancellation_signal signal;
  request_slot* slot = nullptr;
  ~handler_link() {
    if (slot) slot->handler_link = nullptr;
  }
  /// The request is answered: nothing is emitted for it any more.
  static void detach(request_slot& s) noexcept {
    if (auto* l = static_cast<handler_link*>(s.handler_link)) l->slot = nullptr;
    s.handler_link = nullptr;
  }
  /// The request was cancelled: its handler's coroutine sees a terminal cancellation.
  static void emit(request_slot& s) {
    if (auto* l = static_cast<handler_link*>(s.handler_link)) l->signal.emit(asio::cancellation_type::terminal);
  }
  struct deleter {
    void operator()(handler_link* l) const noexcept {
      asio::recycling_allocator<handler_link> a;
      l->~handler_link();
      a.deallocate(l, 1);
    }
  };
  using owner = std::unique_ptr<handler_link, deleter>;
  static owner make(request_slot& s) {
    asio::recycling_allocator<handler_link> a;  // a handler coroutine's frame is recycled too
    owner l(::new (static_cast<void*>(a.allocate(1))) handler_link);
    l->slot = &s;
    s.handler_link = l.get();
    return l;
  }
};

/// A completion handler that keeps a handler_link alive until it has run.
template <class Handler>
struct link_keeper {
  handler_link::owner link;
  Handler handler;
  template <class... Args>
  void operator()(Args&&... args) {
    std::move(handler)(std::forward<Args>(args)...);
  }
};

class request_owner;

/// The connection whose dispatch call this thread is inside, if any: an answer given there goes
/// straight into its batch. A thread-local, so that telling costs no look-up of which thread
/// runs the executor (answers may come from any thread).
inline thread_local const request_owner* dispatching_here = nullptr;

/// What a connection offers its requests (type-erased, so that server_request is one type).
/// A connection outlives each of its requests (it keeps itself alive while one is out; see
/// the lifetime rule in server_connection.hpp), so a request holds a plain pointer (no
/// reference count to touch per request).
class request_owner {
 public:
  virtual void respond(request_slot& slot) = 0;  // from any thread
  virtual const asio::any_io_executor& executor() const noexcept = 0;

  /// The encoder of an answer's msg, type-erased: writes into `out`, or fails.
  using msg_writer = session::msg_writer;
  /// Answers OK straight into the connection's write batch, if the caller is the connection's
  /// own dispatch call (the common inline answer): the msg is written there once, with no
  /// copy into the slot first. Returns false when it cannot (from elsewhere, or closed); the
  /// caller then answers through the slot. An encode failure answers rpc_encode.
  bool answer_inline(request_slot& slot, msg_writer msg, std::span<const char> blob) {
    if (dispatching_here != this) return false;  // the connection is not ours to touch
    handler_link::detach(slot);
    // Without a call observer the session takes it directly: no virtual call per answer.
    return direct_ ? direct_->answer_inline(slot, msg, blob) : observed_answer_inline(slot, msg, blob);
  }

 protected:
  /// `direct`: the session inline answers go to, or null to have observed_answer_inline() called.
  explicit request_owner(session::server_session* direct) noexcept : direct_(direct) {}
  ~request_owner() = default;
  /// answer_inline's last step when the connection has a call observer to tell.
  virtual bool observed_answer_inline(request_slot& slot, msg_writer msg, std::span<const char> blob) = 0;

 private:
  session::server_session* direct_;
};

}  // namespace detail

class server_request {
 public:
  server_request() = default;
  server_request(detail::request_owner* owner, detail::request_slot* slot) noexcept : owner_(owner), slot_(slot) {}
  server_request(server_request&& o) noexcept : owner_(o.owner_), slot_(std::exchange(o.slot_, nullptr)) {}
  server_request& operator=(server_request&& o) noexcept {
    if (this != &o) {
      abandon();
      owner_ = o.owner_;
      slot_ = std::exchange(o.slot_, nullptr);
    }
    return *this;
  }
  ~server_request() { abandon(); }

  /// False once answered (or moved from).
  explicit operator bool() const noexcept { return slot_ != nullptr; }

  std::uint64_t seq() const noexcept { return slot_->header.seq; }
  std::uint64_t client_id() const noexcept { return slot_->header.client_id; }
  /// The action string ("Service.method"), or empty for a numeric action.
  std::string_view action() const noexcept { return slot_->action.view(); }
  bool has_string_action() const noexcept { return slot_->header.has_string_action(); }
  /// The numeric action (meaningful when !has_string_action()).
  std::uint32_t numeric_action() const noexcept { return slot_->header.numeric_action(); }
  std::span<const char> msg() const noexcept { return slot_->msg.span(); }
  std::span<const char> blob() const noexcept { return slot_->blob.span(); }
  /// The executor of the connection the request came on.
  const asio::any_io_executor& get_executor() const noexcept { return owner_->executor(); }

  using clock = std::chrono::steady_clock;
  /// The caller's deadline, when its request carried one (the deadline extension,
  /// docs/protocol.md): past it the caller no longer waits, and the answer is dropped.
  std::optional<clock::time_point> deadline() const noexcept {
    if (slot_->deadline == clock::time_point::max()) return std::nullopt;
    return slot_->deadline;
  }
  /// Why the handler should stop: the caller cancelled (a cancel frame), its deadline passed
  /// (seen at the server's timer_tick), or the connection died; `none` while it is wanted.
  /// Any thread. The answer of a cancelled request is dropped, not written.
  session::cancel_reason cancel_reason() const noexcept { return slot_->cancel.load(std::memory_order_relaxed); }
  bool cancelled() const noexcept { return cancel_reason() != session::cancel_reason::none; }

  /// `handler` (a coroutine's completion handler) bound to a cancellation slot that is
  /// emitted (terminal) when this request is cancelled: co_spawn(ex, coro, req.bind_cancellation(h))
  /// gives the coroutine's this_coro::cancellation_state the request's cancellation. Call it
  /// on the connection's executor (in the dispatch) before moving the request into the
  /// coroutine. An awaitable dispatch gets this from the server itself.
  template <class Handler>
  auto bind_cancellation(Handler&& handler) const {
    auto link = detail::handler_link::make(*slot_);
    auto cs = link->signal.slot();
    return asio::bind_cancellation_slot(
        cs, detail::link_keeper<std::decay_t<Handler>>{std::move(link), std::forward<Handler>(handler)});
  }

  /// Answers OK with `msg` and `blob` (copied; a large blob is written from the copy). Giving
  /// back the request's own msg() or blob() moves it instead: an echo copies nothing.
  void respond(std::span<const char> msg, std::span<const char> blob = {}) {
    if (small(msg) && small(blob)) {  // written into the batch at once: copied once, not twice
      auto copy = [](void* m, byte_buffer& out) {
        out.append(*static_cast<std::span<const char>*>(m));
        return false;
      };
      if (owner_->answer_inline(*slot_, {&msg, copy}, blob)) {
        slot_ = nullptr;
        return;
      }
    }
    auto& s = *slot_;
    s.flag = proto::response_flag::ok;
    take_or_copy(s.resp_msg, s.msg, msg);
    take_or_copy(s.resp_blob, s.blob, blob);
    send();
  }
  void respond(std::string_view msg) { respond(std::span<const char>(msg.data(), msg.size())); }

  /// Answers OK with a msg written by `write(byte_buffer&)` (a codec encodes straight into the
  /// response) and an optional blob. If `write` returns a std::error_code and it is set, the
  /// answer is rpc_encode instead.
  template <class Writer>
  void respond_with(Writer&& write, std::span<const char> blob = {}) {
    if (small(blob)) {
      auto thunk = [](void* w, byte_buffer& out) -> bool {
        auto& writer = *static_cast<std::remove_reference_t<Writer>*>(w);
        if constexpr (std::is_same_v<decltype(writer(out)), std::error_code>) return static_cast<bool>(writer(out));
        else return writer(out), false;
      };
      if (owner_->answer_inline(*slot_, {std::addressof(write), thunk}, blob)) {
        slot_ = nullptr;
        return;
      }
    }
    auto& s = *slot_;
    s.flag = proto::response_flag::ok;
    s.resp_msg.clear();
    if constexpr (std::is_same_v<decltype(std::forward<Writer>(write)(s.resp_msg)), std::error_code>) {
      if (std::forward<Writer>(write)(s.resp_msg)) return respond_error(errc::encode);
    } else {
      std::forward<Writer>(write)(s.resp_msg);
    }
    s.resp_blob.clear();
    s.resp_blob.append(blob);
    send();
  }

  /// Answers with an integer user error (flag 1), e.g. an errno value.
  void respond_error_code(std::uint32_t code) {
    slot_->flag = proto::response_flag::error_code;
    slot_->error_code = code;
    send();
  }

  /// Answers with an error string (flag 2). Strings starting "rpc_" are the framework's.
  void respond_error_string(std::string_view error) {
    auto& s = *slot_;
    s.flag = proto::response_flag::error_string;
    s.resp_msg.clear();
    s.resp_msg.append(error);
    send();
  }

  /// Answers with a framework error, sent as its rpc_* string.
  void respond_error(errc e) { respond_error_string(to_wire_string(is_wire_error(e) ? e : to_wire_error(e))); }

 private:
  /// Small enough to be copied into the write batch (larger ones are written by reference).
  static bool small(std::span<const char> b) noexcept { return b.size() < small_limit; }
  static constexpr std::size_t small_limit = proto::frame_writer::default_blob_ref_threshold;

  /// Fills `out` with `bytes`: by swapping with `request` when `bytes` is exactly its content.
  static void take_or_copy(byte_buffer& out, byte_buffer& request, std::span<const char> bytes) {
    if (!bytes.empty() && bytes.data() == request.data() && bytes.size() == request.size()) {
      std::swap(out, request);
      return;
    }
    out.clear();
    out.append(bytes);
  }

  void send() {
    auto* s = std::exchange(slot_, nullptr);
    owner_->respond(*s);
  }
  void abandon() noexcept {
    if (!slot_) return;
    try {
      respond_error(errc::internal);
    } catch (...) {
    }
  }

  detail::request_owner* owner_ = nullptr;
  detail::request_slot* slot_ = nullptr;
};

}  // namespace occams_rpc
