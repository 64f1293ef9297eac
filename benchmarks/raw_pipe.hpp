// The I/O of one raw_bench connection, client or server alike, on raw_loop (epoll):
//   - reads go into one large buffer (4 MiB, grown for a larger frame), as much as the socket
//     holds: a read that fills the room is followed by another, a short one means the socket
//     is drained (level-triggered epoll reports what comes later);
//   - the derived class cuts the complete frames in place and queues what to send: the server
//     its answers, rewritten in the receive buffer itself, the client its next requests;
//   - everything queued by a read leaves in one gathered write (writev) right after it.
// A write that would block keeps the rest queued and waits for EPOLLOUT. While the queued
// bytes point into the receive buffer (the server's answers), reading pauses until they are
// written, so the buffer never moves under them; the kernel's socket buffers keep the
// pipeline full meanwhile.
//
// Derived provides
//   std::size_t on_input(char* p, std::size_t n, std::size_t& need);
//     consumes whole frames, returns the bytes used (or `bad_input` after calling fail());
//     `need` is the size of the partial frame left, once its header is known;
//   void on_closed(const std::string& why);  // the connection failed or the peer left
//   static constexpr bool output_refers_to_input;  // queued bytes point into the read buffer
#pragma once

#include "raw_loop.hpp"
#include "raw_socket.hpp"

#include <occams_rpc/core/buffer.hpp>

#include <sys/epoll.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace bench {

/// Bytes to write, in order: runs of bytes owned here (copied in) and runs held elsewhere
/// (referenced: the read buffer, the client's payload), written with writev. Adjacent runs
/// merge, so a run of small frames is one iovec.
class raw_out {
 public:
  enum class result { done, blocked, failed };

  /// References `n` bytes at `p`, which must stay unchanged until written.
  void add(const char* p, std::size_t n) {
    if (n == 0) return;
    if (!runs_.empty() && !runs_.back().own && runs_.back().p + runs_.back().n == p) runs_.back().n += n;
    else runs_.push_back({false, p, 0, n});
    total_ += n;
  }
  /// Copies `n` bytes in.
  void copy(const void* p, std::size_t n) {
    if (n == 0) return;
    std::size_t at = own_.size();
    own_.append(p, n);
    if (!runs_.empty() && runs_.back().own && runs_.back().off + runs_.back().n == at) runs_.back().n += n;
    else runs_.push_back({true, nullptr, at, n});
    total_ += n;
  }
  bool empty() const noexcept { return sent_ == total_; }

  /// Writes what is queued until done or the socket would block.
  result write(int fd) {
    while (sent_ < total_) {
      iovec iov[max_iov];
      int cnt = 0;
      std::size_t skip = skip_;
      for (std::size_t i = first_; i < runs_.size() && cnt < max_iov; ++i, skip = 0) {
        const run& r = runs_[i];
        const char* p = r.own ? own_.data() + r.off : r.p;
        iov[cnt++] = {const_cast<char*>(p + skip), r.n - skip};
      }
      ssize_t w = ::writev(fd, iov, cnt);
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? result::blocked : result::failed;
      }
      advance(static_cast<std::size_t>(w));
    }
    runs_.clear();
    own_.clear();
    total_ = sent_ = 0;
    first_ = skip_ = 0;
    return result::done;
  }

 private:
  static constexpr int max_iov = 1024;  // IOV_MAX on Linux
  struct run {
    bool own;
    const char* p;    // !own
    std::size_t off;  // own: offset in own_ (which may move while it grows)
    std::size_t n;
  };
  void advance(std::size_t w) {
    sent_ += w;
    while (w > 0) {
      std::size_t left = runs_[first_].n - skip_;
      if (w < left) { skip_ += w; return; }
      w -= left;
      ++first_;
      skip_ = 0;
    }
  }

  std::vector<run> runs_;
  occams_rpc::byte_buffer own_{64 * 1024};
  std::size_t total_ = 0, sent_ = 0;
  std::size_t first_ = 0, skip_ = 0;  // the first run not wholly written, and its bytes written
};

template <class Derived>
class raw_pipe : public raw_loop::handler {
 public:
  static constexpr std::size_t bad_input = ~std::size_t{0};
  static constexpr std::size_t initial_capacity = 4u << 20;
  static constexpr std::size_t min_read = 64 * 1024;
  static constexpr std::size_t keep_near_front = 4096;  // a partial frame this small moves to the front

  raw_pipe(raw_loop& loop, raw_fd fd)
      : loop_(loop), fd_(std::move(fd)), buf_(new char[initial_capacity]), cap_(initial_capacity) {}
  raw_pipe(const raw_pipe&) = delete;
  raw_pipe& operator=(const raw_pipe&) = delete;

  void start() { loop_.add(fd_.get(), this, EPOLLIN); }
  void close() {
    closed_ = true;
    fd_.reset();  // also leaves the epoll set
  }
  bool closed() const noexcept { return closed_; }

  void on_event(std::uint32_t events) final {
    if (closed_) return;
    if (blocked_) {
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) resume_write();
      if (closed_ || (blocked_ && Derived::output_refers_to_input)) return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable();
  }

 protected:
  raw_out& out() noexcept { return out_; }

  /// Writes what is queued (the client calls it after queueing its first requests).
  void flush() {
    if (blocked_ || closed_ || out_.empty()) return;
    switch (out_.write(fd_.get())) {
      case raw_out::result::done: return;
      case raw_out::result::blocked:
        blocked_ = true;
        loop_.modify(fd_.get(), this, Derived::output_refers_to_input ? EPOLLOUT : EPOLLIN | EPOLLOUT);
        return;
      case raw_out::result::failed: return lost(std::strerror(errno));
    }
  }

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }

  void readable() {
    for (;;) {
      make_room();
      std::size_t room = cap_ - end_;
      ssize_t n = ::read(fd_.get(), buf_.get() + end_, room);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) lost(std::strerror(errno));
        return;
      }
      if (n == 0) return lost("the peer closed the connection");
      end_ += static_cast<std::size_t>(n);
      std::size_t used = self().on_input(buf_.get() + begin_, end_ - begin_, need_);
      if (used == bad_input) return close();
      if (Derived::output_refers_to_input) unread_ = used;  // dropped once written
      else begin_ += used;
      flush();
      if (closed_) return;
      if (blocked_ && Derived::output_refers_to_input) return;  // resume_write() drops the answered frames, reads on
      begin_ += unread_;
      unread_ = 0;
      if (static_cast<std::size_t>(n) < room) return;  // drained: epoll says when more comes
    }
  }

  void resume_write() {
    blocked_ = false;
    flush();
    if (closed_ || blocked_) return;
    loop_.modify(fd_.get(), this, EPOLLIN);
    begin_ += unread_;
    unread_ = 0;
    if (Derived::output_refers_to_input) readable();  // reading paused meanwhile
  }

  /// Room for a useful read: at least min_read, and the rest of a partial frame. Bytes move
  /// only when a small partial frame can go back to the front (cheap, and the buffer's first
  /// pages stay in cache) or when the room is short.
  void make_room() {
    std::size_t held = end_ - begin_;
    if (held == 0) {
      begin_ = end_ = 0;
    } else if (begin_ > 0 && held <= keep_near_front) {
      std::memmove(buf_.get(), buf_.get() + begin_, held);
      begin_ = 0;
      end_ = held;
    }
    std::size_t want = std::max(min_read, need_ > held ? need_ - held : 0);
    if (cap_ - end_ >= want) return;
    if (held + want > cap_) {  // a frame larger than the buffer: grow (bounded by on_input's limit)
      std::size_t cap = std::max(cap_ * 2, held + want);
      std::unique_ptr<char[]> bigger(new char[cap]);
      std::memcpy(bigger.get(), buf_.get() + begin_, held);
      buf_ = std::move(bigger);
      cap_ = cap;
    } else {
      std::memmove(buf_.get(), buf_.get() + begin_, held);
    }
    begin_ = 0;
    end_ = held;
  }

  void lost(const std::string& why) {
    if (closed_) return;
    close();
    self().on_closed(why);
  }

  raw_loop& loop_;
  raw_fd fd_;
  std::unique_ptr<char[]> buf_;
  std::size_t cap_;
  std::size_t begin_ = 0, end_ = 0;  // the bytes read and not yet consumed
  std::size_t unread_ = 0;           // consumed, but still referenced by queued output
  std::size_t need_ = 0;
  raw_out out_;
  bool blocked_ = false;
  bool closed_ = false;
};

}  // namespace bench
