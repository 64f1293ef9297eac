// The I/O loop of one raw_bench connection, client or server alike: read what has arrived,
// hand it to the derived class to cut frames, read again until reading would block, then
// send everything queued in one write. While a write is in progress the next batch fills.
//
// Derived provides
//   std::size_t on_input(const char* p, std::size_t n, std::size_t& need);
//     consumes whole frames, returns the bytes used (or `bad_input` after calling fail());
//     `need` is the size of the partial frame left, when its header is known
//   void on_closed(const std::string& why);  // the connection failed or the peer left
#pragma once

#include "raw_socket.hpp"

#include <occams_rpc/core/buffer.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace bench {

/// Requests and responses queued for one write: bytes copied into one buffer, except large
/// blobs, which are referenced (one gather write; copying them would cost more than the iovec).
class raw_batch {
 public:
  static constexpr std::size_t ref_threshold = 16 * 1024;

  occams_rpc::byte_buffer& bytes() noexcept { return bytes_; }
  void add_blob(std::span<const char> blob, bool stable) {
    if (stable && blob.size() >= ref_threshold) refs_.push_back({bytes_.size(), blob});
    else bytes_.append(blob);
  }
  bool empty() const noexcept { return bytes_.empty() && refs_.empty(); }
  void clear() noexcept { bytes_.clear(); refs_.clear(); }
  std::size_t size() const noexcept {
    std::size_t n = bytes_.size();
    for (auto& r : refs_) n += r.blob.size();
    return n;
  }
  const std::vector<asio::const_buffer>& gather() {
    gather_.clear();
    std::size_t from = 0;
    for (auto& r : refs_) {
      if (r.offset > from) gather_.emplace_back(bytes_.data() + from, r.offset - from);
      gather_.emplace_back(r.blob.data(), r.blob.size());
      from = r.offset;
    }
    if (bytes_.size() > from) gather_.emplace_back(bytes_.data() + from, bytes_.size() - from);
    return gather_;
  }

 private:
  struct ref { std::size_t offset; std::span<const char> blob; };
  occams_rpc::byte_buffer bytes_{64 * 1024};
  std::vector<ref> refs_;
  std::vector<asio::const_buffer> gather_;
};

template <class Derived>
class raw_pipe {
 public:
  static constexpr std::size_t bad_input = ~std::size_t{0};
  static constexpr std::size_t read_chunk = 64 * 1024;
  static constexpr std::size_t max_queued = 8u << 20;  // stop reading past this (back-pressure)

  explicit raw_pipe(raw_socket s) : socket_(std::move(s)), in_(read_chunk * 2) {}

  void start() { read(); }
  void close() {
    boost::system::error_code ignored;
    closed_ = true;
    socket_.close(ignored);
  }
  bool closed() const noexcept { return closed_; }

 protected:
  raw_batch& queue() noexcept { return queued_; }

  /// Writes the queued batch unless a write is in progress (its completion comes back here).
  void flush() {
    if (writing_busy_ || queued_.empty() || closed_) return;
    std::swap(queued_, writing_);
    writing_busy_ = true;
    asio::async_write(socket_, writing_.gather(), [this](boost::system::error_code ec, std::size_t) {
      writing_busy_ = false;
      writing_.clear();
      if (ec) return lost(ec);
      flush();
      if (paused_) {
        paused_ = false;
        read();
      }
    });
  }

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }

  void read() {
    if (closed_) return;
    socket_.async_read_some(room(), [this](boost::system::error_code ec, std::size_t n) {
      if (ec) return lost(ec);
      if (!take(n)) return;
      // Read on while bytes are there; the answers go out in one write once it would block.
      for (;;) {
        std::size_t more = socket_.read_some(room(), ec);
        if (ec == asio::error::would_block) break;
        if (ec) return lost(ec);
        if (!take(more)) return;
      }
      flush();
      if (queued_.size() > max_queued) paused_ = true;  // flush's completion resumes reading
      else read();
    });
  }

  asio::mutable_buffer room() {
    std::size_t want = std::max(in_.size() + read_chunk, need_);
    char* p = in_.prepare(want - in_.size());
    return {p, in_.capacity() - in_.size()};
  }

  /// Cuts the frames now complete; keeps a partial one at the front of the buffer.
  bool take(std::size_t n) {
    in_.commit(n);
    std::size_t used = self().on_input(in_.data(), in_.size(), need_);
    if (used == bad_input) {
      close();
      return false;
    }
    in_.consume(used);
    return !closed_;
  }

  void lost(boost::system::error_code ec) {
    if (closed_) return;
    close();
    self().on_closed(ec == asio::error::eof ? "the peer closed the connection" : ec.message());
  }

  raw_socket socket_;
  occams_rpc::byte_buffer in_;
  std::size_t need_ = 0;
  raw_batch queued_, writing_;
  bool writing_busy_ = false;
  bool paused_ = false;
  bool closed_ = false;
};

}  // namespace bench
