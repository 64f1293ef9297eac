// The write side of a connection (client or server): frames are added to pending(), and the
// connection's writer coroutine calls write_next(), which writes everything queued in one
// gathered write (batched flush) while new frames go into the other batch.
#pragma once

#include <occams_rpc/proto/frame_writer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <span>
#include <utility>
#include <vector>

namespace occams_rpc::detail {

namespace asio = boost::asio;

class batch_writer {
 public:
  using clock = std::chrono::steady_clock;

  /// `buffer_size`: each batch's initial size. A batch that grew past 16 times that keeps its
  /// memory while large batches follow, and shrinks back after the first small one (a steady
  /// stream of large frames does not reallocate every batch; a burst does not pin memory).
  explicit batch_writer(std::size_t buffer_size)
      : pending_(buffer_size), writing_(buffer_size), shrink_limit_(buffer_size * 16) {}

  /// The batch that new frames go into.
  proto::frame_writer& pending() noexcept { return pending_; }
  const proto::frame_writer& pending() const noexcept { return pending_; }

  /// A write is under way (its batch, and the blobs it references, are in use).
  bool writing() const noexcept { return in_progress_; }
  /// The write under way has taken longer than `limit`.
  bool stuck(clock::time_point now, clock::duration limit) const noexcept {
    return in_progress_ && now - started_ > limit;
  }

  /// Writes the pending batch (which must not be empty) in one gathered write. When it
  /// completes, the written batch is cleared: what it referenced may be released.
  template <class Socket>
  asio::awaitable<boost::system::error_code> write_next(Socket& socket) {
    std::swap(pending_, writing_);
    gather_.clear();
    for (auto b : writing_.buffers()) gather_.emplace_back(b.data(), b.size());
    in_progress_ = true;
    started_ = clock::now();
    auto [ec, n] = co_await asio::async_write(socket, std::span<const asio::const_buffer>(gather_),
                                              asio::as_tuple(asio::deferred));
    in_progress_ = false;
    bool small = writing_.buffered_bytes() < shrink_limit_;
    writing_.clear();
    if (small) writing_.shrink_to(shrink_limit_);
    co_return ec;
  }

 private:
  proto::frame_writer pending_;
  proto::frame_writer writing_;
  std::vector<asio::const_buffer> gather_;  // written through a span: Asio copies the sequence
  std::size_t shrink_limit_;
  bool in_progress_ = false;
  clock::time_point started_{};
};

}  // namespace occams_rpc::detail
