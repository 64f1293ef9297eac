// The in-memory transport: connected pairs of byte streams inside one process, for tests.
//
// A memory_transport::listener listens on an address (its key; port 0 gets a free one), and
// memory_transport::connect() makes a pair of memory_streams: one for the caller, one handed to
// the listener's accept(). No socket, no kernel: the bytes move between two buffers, and a test
// can shape them as a network would:
//   - split_reads(n): each read of this stream returns at most n bytes;
//   - hold() / release(): bytes sent to this stream wait (a stalled peer) until released;
//   - cut(): the connection is reset (both sides' reads and writes fail with connection_reset);
//   - bytes_received(): every byte this stream has been sent, for checks on the wire.
// Reads complete as on a socket: never inline, on the handler's associated executor; a pending
// read keeps its context running, honours per-operation cancellation, and is destroyed (not
// run) when its context shuts down.
#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/transport/address.hpp>
#include <occams_rpc/transport/transport.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace occams_rpc {

class memory_stream;

namespace detail {

/// Something that keeps a handler outside Asio's queues (a pending read or accept) derives
/// from this: the handler is destroyed, not run, when the handler's context shuts down, or the
/// cycle handler -> coroutine frame -> owner -> stream -> handler would outlive the context.
class memory_pending {
 public:
  virtual ~memory_pending() = default;
  virtual void destroy_pending() noexcept = 0;
};

/// The objects with a pending operation on one execution context, kept alive while pending.
class memory_op_service final : public asio::execution_context::service {
 public:
  using key_type = memory_op_service;
  static inline asio::execution_context::id id;
  explicit memory_op_service(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  void add(std::shared_ptr<memory_pending> p) {
    std::lock_guard lock(mutex_);
    if (!shut_down_) pending_[p.get()] = std::move(p);
  }
  void remove(memory_pending* p) {
    std::shared_ptr<memory_pending> last;  // released outside the lock
    std::lock_guard lock(mutex_);
    auto it = pending_.find(p);
    if (it == pending_.end()) return;
    last = std::move(it->second);
    pending_.erase(it);
  }

 private:
  void shutdown() override {
    std::map<memory_pending*, std::shared_ptr<memory_pending>> all;
    {
      std::lock_guard lock(mutex_);
      shut_down_ = true;
      all.swap(pending_);
    }
    for (auto& [_, p] : all) p->destroy_pending();
  }

  std::mutex mutex_;
  bool shut_down_ = false;
  std::map<memory_pending*, std::shared_ptr<memory_pending>> pending_;
};

using memory_read_handler = asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;

/// Completes `h` with (ec, n) on its associated executor (never inline).
inline void memory_complete(memory_read_handler h, const asio::any_io_executor& io_ex, boost::system::error_code ec,
                            std::size_t n) {
  asio::post(io_ex, asio::append(std::move(h), ec, n));
}

/// The bytes flowing one way, from a writer to a reader, and the reader's pending read.
class memory_pipe final : public memory_pending, public std::enable_shared_from_this<memory_pipe> {
 public:
  /// A read into `bufs`: completes at once when bytes (or the end) are there, else waits.
  template <class Buffers, class Handler>
  void read(const Buffers& bufs, Handler&& handler, const asio::any_io_executor& io_ex) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    std::unique_lock lock(mutex_);
    if (reader_closed_) return finish(lock, memory_read_handler(std::forward<Handler>(handler)), io_ex, asio::error::bad_descriptor, 0);
    if (asio::buffer_size(bufs) == 0) return finish(lock, memory_read_handler(std::forward<Handler>(handler)), io_ex, {}, 0);
    if (readable()) {
      std::size_t n = take(bufs);
      return finish(lock, memory_read_handler(std::forward<Handler>(handler)), io_ex, {}, n);
    }
    if (reset_) return finish(lock, memory_read_handler(std::forward<Handler>(handler)), io_ex, reset_, 0);
    if (ended() && !held_) return finish(lock, memory_read_handler(std::forward<Handler>(handler)), io_ex, asio::error::eof, 0);
    // Wait. Outstanding work keeps the context running meanwhile, as a socket's read does.
    pending_.emplace(std::forward<Handler>(handler));
    pending_bufs_.assign(asio::buffer_sequence_begin(bufs), asio::buffer_sequence_end(bufs));
    pending_ex_ = io_ex;
    work_ = asio::prefer(io_ex, asio::execution::outstanding_work.tracked);
    service_ = &asio::use_service<memory_op_service>(asio::query(io_ex, asio::execution::context));
    service_->add(shared_from_this());
    if (slot.is_connected()) {
      slot_ = slot;
      slot.template emplace<cancel_read>(weak_from_this());
    }
  }

  /// Appends what a writer sent; wakes the pending read. Fails as a socket would.
  template <class Buffers>
  boost::system::error_code write(const Buffers& bufs, std::size_t& n) {
    std::unique_lock lock(mutex_);
    n = 0;
    if (reset_) return reset_;
    if (eof_ || reader_closed_) return asio::error::broken_pipe;
    for (auto it = asio::buffer_sequence_begin(bufs); it != asio::buffer_sequence_end(bufs); ++it) {
      asio::const_buffer b(*it);
      if (!reads_shut_) bytes_.append(static_cast<const char*>(b.data()), b.size());
      log_.append(static_cast<const char*>(b.data()), b.size());
      n += b.size();
    }
    wake(lock);
    return {};
  }

  /// The writer shut down its side: the reader reads what is left, then the end.
  void end() {
    std::unique_lock lock(mutex_);
    eof_ = true;
    wake(lock);
  }
  /// The reader shut down its reads (shutdown_receive): what was sent is still read, then the
  /// end. As on a socket, the writer sees no error: what it sends later is never read.
  void shut_reads() {
    std::unique_lock lock(mutex_);
    reads_shut_ = true;
    wake(lock);
  }
  /// The reader closed its stream: a pending read is aborted, later writes fail.
  void close_reader() {
    std::unique_lock lock(mutex_);
    reader_closed_ = true;
    bytes_.clear();
    start_ = 0;
    abort_pending(lock, asio::error::operation_aborted);
  }
  /// The connection was reset.
  void reset() {
    std::unique_lock lock(mutex_);
    reset_ = asio::error::connection_reset;
    abort_pending(lock, reset_);
  }
  void set_held(bool held) {
    std::unique_lock lock(mutex_);
    held_ = held;
    wake(lock);
  }
  void set_max_read(std::size_t n) {
    std::lock_guard lock(mutex_);
    max_read_ = n == 0 ? 1 : n;
  }
  std::size_t available() {
    std::lock_guard lock(mutex_);
    return held_ ? 0 : bytes_.size() - start_;
  }
  std::string received() {
    std::lock_guard lock(mutex_);
    return log_;
  }

  void destroy_pending() noexcept override {
    std::optional<memory_read_handler> h;
    asio::any_io_executor work;
    {
      std::lock_guard lock(mutex_);
      if (slot_.is_connected()) slot_.clear();
      slot_ = {};
      h = std::move(pending_);
      pending_.reset();
      work = std::move(work_);
      work_ = {};
      service_ = nullptr;
    }
    // Destroyed here, outside the lock: it may own the stream that owns this pipe.
  }

 private:
  struct cancel_read {
    std::weak_ptr<memory_pipe> pipe;
    explicit cancel_read(std::weak_ptr<memory_pipe> p) : pipe(std::move(p)) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none) return;
      auto p = pipe.lock();
      if (!p) return;
      std::unique_lock lock(p->mutex_);
      p->slot_ = {};  // being invoked: not cleared from inside
      p->abort_pending(lock, asio::error::operation_aborted);
    }
  };

  bool readable() const noexcept { return !held_ && start_ < bytes_.size(); }
  bool ended() const noexcept { return eof_ || reads_shut_; }

  template <class Buffers>
  std::size_t take(const Buffers& bufs) {
    std::size_t limit = std::min(max_read_, bytes_.size() - start_);
    std::size_t n = asio::buffer_copy(bufs, asio::buffer(bytes_.data() + start_, limit));
    start_ += n;
    if (start_ == bytes_.size()) {
      bytes_.clear();
      start_ = 0;
    }
    return n;
  }

  /// Completes the pending read if it can now complete.
  void wake(std::unique_lock<std::mutex>& lock) {
    if (!pending_) return;
    if (readable()) {
      std::size_t n = take(pending_bufs_);
      complete_pending(lock, {}, n);
    } else if (ended() && !held_) {
      complete_pending(lock, asio::error::eof, 0);
    }
  }
  void abort_pending(std::unique_lock<std::mutex>& lock, boost::system::error_code ec) {
    if (pending_) complete_pending(lock, ec, 0);
  }
  void complete_pending(std::unique_lock<std::mutex>& lock, boost::system::error_code ec, std::size_t n) {
    memory_read_handler h = std::move(*pending_);
    pending_.reset();
    auto io_ex = std::move(pending_ex_);
    auto work = std::move(work_);
    work_ = {};
    auto slot = std::exchange(slot_, {});
    auto* service = std::exchange(service_, nullptr);
    lock.unlock();
    if (slot.is_connected()) slot.clear();
    if (service) service->remove(this);
    memory_complete(std::move(h), io_ex, ec, n);
  }
  void finish(std::unique_lock<std::mutex>& lock, memory_read_handler h, const asio::any_io_executor& io_ex,
              boost::system::error_code ec, std::size_t n) {
    lock.unlock();
    memory_complete(std::move(h), io_ex, ec, n);
  }

  std::mutex mutex_;
  std::string bytes_;
  std::size_t start_ = 0;
  std::string log_;
  bool eof_ = false;         // the writer shut down its side
  bool reads_shut_ = false;  // the reader shut down its reads
  bool reader_closed_ = false;
  bool held_ = false;
  boost::system::error_code reset_;
  std::size_t max_read_ = std::numeric_limits<std::size_t>::max();
  std::optional<memory_read_handler> pending_;
  std::vector<asio::mutable_buffer> pending_bufs_;
  asio::any_io_executor pending_ex_;
  asio::any_io_executor work_;
  asio::cancellation_slot slot_;
  memory_op_service* service_ = nullptr;
};

}  // namespace detail

/// One end of an in-memory connection: an AsyncReadStream and AsyncWriteStream.
class memory_stream {
 public:
  using executor_type = asio::any_io_executor;

  explicit memory_stream(executor_type ex) : ex_(std::move(ex)) {}
  memory_stream(memory_stream&&) noexcept = default;
  memory_stream& operator=(memory_stream&& o) noexcept {
    if (this != &o) {
      close();
      ex_ = o.ex_;
      in_ = std::move(o.in_);
      out_ = std::move(o.out_);
      peer_ = std::move(o.peer_);
    }
    return *this;
  }
  ~memory_stream() { close(); }

  /// Takes `other`'s connection (closing this one's), keeping this stream's executor: how an
  /// accept lands a connection on the executor its caller chose.
  void adopt(memory_stream&& other) noexcept {
    if (this == &other) return;
    close();
    in_ = std::move(other.in_);
    out_ = std::move(other.out_);
    peer_ = std::move(other.peer_);
  }

  /// Two connected ends, each on its own executor.
  static std::pair<memory_stream, memory_stream> make_pair(executor_type a, executor_type b,
                                                           std::string a_name = "memory:a",
                                                           std::string b_name = "memory:b") {
    auto ab = std::make_shared<detail::memory_pipe>();
    auto ba = std::make_shared<detail::memory_pipe>();
    memory_stream x(std::move(a)), y(std::move(b));
    x.in_ = ba;
    x.out_ = ab;
    x.peer_ = std::move(b_name);
    y.in_ = ab;
    y.out_ = ba;
    y.peer_ = std::move(a_name);
    return {std::move(x), std::move(y)};
  }

  const executor_type& get_executor() const noexcept { return ex_; }
  bool is_open() const noexcept { return in_ != nullptr; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& bufs, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (!in_) {
            detail::memory_complete(std::move(handler), ex_, asio::error::bad_descriptor, 0);
            return;
          }
          in_->read(b, std::move(handler), ex_);
        },
        token, bufs);
  }

  /// Writes complete at once with every byte (the peer's buffer is unbounded).
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& bufs, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          std::size_t n = 0;
          boost::system::error_code ec = out_ ? out_->write(b, n) : asio::error::bad_descriptor;
          detail::memory_complete(std::move(handler), ex_, ec, n);
        },
        token, bufs);
  }

  /// Closes this end: its pending read is aborted; the peer reads the end of the stream.
  void close() noexcept {
    if (!in_) return;
    in_->close_reader();
    out_->end();
    in_.reset();
    out_.reset();
  }
  /// As a socket's shutdown(): shutdown_receive ends this end's reads (what was sent is still
  /// read, then the end); shutdown_send sends the end of the stream.
  void shutdown(asio::socket_base::shutdown_type what, boost::system::error_code& ec) {
    ec = {};
    if (!in_) {
      ec = asio::error::bad_descriptor;
      return;
    }
    if (what != asio::socket_base::shutdown_send) in_->shut_reads();
    if (what != asio::socket_base::shutdown_receive) out_->end();
  }
  /// Sends the end of the stream after the bytes already written (a half close).
  void shutdown_send() noexcept {
    if (out_) out_->end();
  }
  /// Bytes that arrived and were not read yet.
  std::size_t available() const { return in_ ? in_->available() : 0; }
  const std::string& peer() const noexcept { return peer_; }

  /// The test hooks of this connection; they stay usable after the stream is moved into a
  /// client or server.
  class link {
   public:
    /// Each read of this end returns at most `n` bytes.
    void split_reads(std::size_t n) { in_->set_max_read(n); }
    /// Bytes sent to this end wait until release() (its peer seems stalled).
    void hold() { in_->set_held(true); }
    void release() { in_->set_held(false); }
    /// Resets the connection: both ends' pending and later reads and writes fail.
    void cut() {
      in_->reset();
      out_->reset();
    }
    /// Every byte this end has been sent so far (read or not).
    std::string bytes_received() const { return in_->received(); }
    /// The same hooks, seen from the other end.
    link peer() const { return link(out_, in_); }

   private:
    friend class memory_stream;
    link(std::shared_ptr<detail::memory_pipe> in, std::shared_ptr<detail::memory_pipe> out)
        : in_(std::move(in)), out_(std::move(out)) {}
    std::shared_ptr<detail::memory_pipe> in_, out_;
  };
  /// Precondition: is_open().
  link hooks() const { return link(in_, out_); }

 private:
  executor_type ex_;
  std::shared_ptr<detail::memory_pipe> in_;   // the peer writes, this end reads
  std::shared_ptr<detail::memory_pipe> out_;  // this end writes, the peer reads
  std::string peer_;
};

/// The transport: addresses are keys in one process-wide table ("memory:N" when listening on
/// port 0). Thread-safe. The object holds no state: every memory_transport sees the same table.
class memory_transport {
 public:
  using socket_type = memory_stream;

  class listener {
   public:
    /// Listens on `where` (an address used as a name; port 0 gets a free one). Throws
    /// std::system_error(address_in_use) if someone listens there already.
    listener(asio::any_io_executor ex, const address& where, const listen_options& /*options*/ = {})
        : state_(std::make_shared<state>()) {
      state_->ex = std::move(ex);
      address a = where;
      std::lock_guard lock(registry().mutex);
      if (a.port == 0) a.port = registry().next_port++;
      state_->name = a.to_string();
      if (registry().listeners.count(state_->name))
        throw std::system_error(make_error_code(std::errc::address_in_use), state_->name);
      registry().listeners[state_->name] = state_;
      local_ = a;
    }
    listener(listener&&) = default;
    ~listener() {
      if (state_) close();
    }

    /// Waits for the next connect() to this address; the connection lands on out's executor.
    asio::awaitable<std::error_code> accept(socket_type& out);
    address local_address() const { return local_; }
    void close() {
      {
        std::lock_guard lock(registry().mutex);
        auto it = registry().listeners.find(state_->name);
        if (it != registry().listeners.end() && it->second.lock() == state_) registry().listeners.erase(it);
      }
      state_->close();
    }

   private:
    struct state;
    /// Starts an accept (a function object: GCC 12 mishandles lambdas captured in coroutines).
    struct accept_init {
      state* st;
      memory_stream* out;
      template <class Handler>
      void operator()(Handler handler) const {
        st->accept(*out, std::move(handler));
      }
    };
    struct state final : detail::memory_pending, std::enable_shared_from_this<state> {
      using accept_handler = asio::any_completion_handler<void(boost::system::error_code)>;
      std::mutex mutex;
      asio::any_io_executor ex;
      std::string name;
      bool closed = false;
      std::deque<memory_stream> ready;
      std::optional<accept_handler> pending;
      memory_stream* pending_out = nullptr;
      asio::any_io_executor work;
      detail::memory_op_service* service = nullptr;

      void accept(memory_stream& out, accept_handler h) {
        std::unique_lock lock(mutex);
        if (closed) return complete(lock, std::move(h), asio::error::operation_aborted);
        if (!ready.empty()) {
          out.adopt(std::move(ready.front()));
          ready.pop_front();
          return complete(lock, std::move(h), {});
        }
        pending.emplace(std::move(h));
        pending_out = &out;
        work = asio::prefer(ex, asio::execution::outstanding_work.tracked);
        service = &asio::use_service<detail::memory_op_service>(asio::query(ex, asio::execution::context));
        service->add(shared_from_this());
      }
      /// A connect() arrived with the server's end.
      bool offer(memory_stream s) {
        std::unique_lock lock(mutex);
        if (closed) return false;
        if (pending) {
          pending_out->adopt(std::move(s));
          take_pending(lock, {});
          return true;
        }
        ready.push_back(std::move(s));
        return true;
      }
      void close() {
        std::unique_lock lock(mutex);
        closed = true;
        auto waiting = std::move(ready);
        ready.clear();
        if (pending) take_pending(lock, asio::error::operation_aborted);
      }
      void take_pending(std::unique_lock<std::mutex>& lock, boost::system::error_code ec) {
        accept_handler h = std::move(*pending);
        pending.reset();
        pending_out = nullptr;
        auto w = std::move(work);
        work = {};
        auto* svc = std::exchange(service, nullptr);
        complete(lock, std::move(h), ec);
        if (svc) svc->remove(this);
      }
      void complete(std::unique_lock<std::mutex>& lock, accept_handler h, boost::system::error_code ec) {
        if (lock.owns_lock()) lock.unlock();
        asio::post(ex, asio::append(std::move(h), ec));
      }
      void destroy_pending() noexcept override {
        std::optional<accept_handler> h;
        asio::any_io_executor w;
        {
          std::lock_guard lock(mutex);
          h = std::move(pending);
          pending.reset();
          pending_out = nullptr;
          w = std::move(work);
          work = {};
          service = nullptr;
        }
      }
    };
    friend class memory_transport;
    std::shared_ptr<state> state_;
    address local_;
  };
  using listener_type = listener;

  /// Connects to a listener in this process; errc::unreachable if nobody listens there.
  asio::awaitable<std::error_code> connect(asio::any_io_executor ex, const address& to,
                                           std::chrono::milliseconds /*timeout*/, socket_type& out) const {
    std::shared_ptr<listener::state> l;
    {
      std::lock_guard lock(registry().mutex);
      auto it = registry().listeners.find(to.to_string());
      if (it != registry().listeners.end()) l = it->second.lock();
    }
    if (!l) co_return make_error_code(errc::unreachable);
    std::string client_name = fmt_client_name();
    auto [mine, theirs] = memory_stream::make_pair(ex, l->ex, client_name, "memory:" + to.to_string());
    if (!l->offer(std::move(theirs))) co_return make_error_code(errc::unreachable);
    out = std::move(mine);
    co_return std::error_code{};
  }
  /// Listens on `where` (see listener); throws std::system_error(address_in_use) if taken.
  listener listen(asio::any_io_executor ex, const address& where, const listen_options& options = {}) const {
    return listener(std::move(ex), where, options);
  }
  /// Nothing to do: a connected pair is ready.
  static constexpr bool has_start_step = false;
  asio::awaitable<std::error_code> start(socket_type&, transport_role) const { co_return std::error_code{}; }
  void close(socket_type& s) const noexcept { s.close(); }
  void shutdown_send(socket_type& s) const noexcept { s.shutdown_send(); }
  std::size_t available(socket_type& s) const noexcept { return s.available(); }
  std::string describe_peer(const socket_type& s) const { return s.peer(); }

 private:
  struct registry_type {
    std::mutex mutex;
    std::map<std::string, std::weak_ptr<listener::state>> listeners;
    std::uint16_t next_port = 1;
    std::uint64_t next_client = 1;
  };
  static registry_type& registry() {
    static registry_type r;
    return r;
  }
  static std::string fmt_client_name() {
    std::lock_guard lock(registry().mutex);
    return "memory-client:" + std::to_string(registry().next_client++);
  }
};

inline asio::awaitable<std::error_code> memory_transport::listener::accept(socket_type& out) {
  std::shared_ptr<state> keep = state_;  // the listener may go while this waits
  std::tuple<boost::system::error_code> result =
      co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>&, void(boost::system::error_code)>(
          accept_init{keep.get(), &out}, asio::as_tuple(asio::use_awaitable));
  co_return std::get<0>(result);
}

static_assert(transport<memory_transport>);

}  // namespace occams_rpc
