// An incremental frame reader: bytes in, whole frames, "need more" or an error out.
// Sans-io: the caller reads from its socket straight into `prepare()` and `commit()`s.
#pragma once

#include <occams_rpc/core/buffer.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/proto/frame.hpp>

#include <cstddef>
#include <algorithm>
#include <cstring>
#include <span>
#include <system_error>
#include <type_traits>

namespace occams_rpc::proto {

enum class read_status { frame, need_more, error };

/// Reads request frames (Frame = request_frame) or response frames (Frame = response_frame).
/// The size limit is checked on the header alone. Memory grows with the bytes that really
/// arrive, never on the header's word: a header claiming 60 MiB grows the buffer geometrically
/// (at most doubling per read) up to the frame's size, as its body comes in.
template <class Frame>
class frame_reader {
 public:
  using header_type = decltype(Frame::header);
  static constexpr std::size_t header_size =
      std::is_same_v<header_type, request_header> ? request_header_size : response_header_size;

  explicit frame_reader(std::size_t max_frame_size = 64u << 20, std::size_t initial_capacity = 8192)
      : max_frame_size_(max_frame_size), buf_(initial_capacity) {}

  /// Room to read at least `min_room` bytes into (more if the buffer has it). Invalidates the
  /// views of frames returned so far.
  std::span<char> prepare(std::size_t min_room = 1) {
    if (start_ > 0) {  // drop consumed frames, keep the partial one
      buf_.consume(start_);
      start_ = 0;
    }
    // Room for min_room more bytes; for a frame whose size is known, up to double what is
    // buffered (capped at the frame's size): a lying header costs what was really sent.
    std::size_t want = buf_.size() + min_room;
    if (need_ > want) want = std::min(need_, std::max(want, buf_.size() * 2));
    if (buf_.capacity() < want) buf_.reserve(want);
    std::size_t room = buf_.capacity() - buf_.size();
    return {buf_.prepare(room), room};
  }
  void commit(std::size_t n) noexcept { buf_.commit(n); }

  /// Feeds bytes by copying (for tests and in-memory transports).
  void feed(std::span<const char> bytes) {
    auto room = prepare(bytes.size());
    std::memcpy(room.data(), bytes.data(), bytes.size());
    commit(bytes.size());
  }

  /// Cuts the next whole frame out of the buffered bytes. After an error the reader stays
  /// failed: the stream cannot be resynchronised.
  read_status next(Frame& out, std::error_code& ec) {
    if (failed_) { ec = failed_; return read_status::error; }
    std::size_t avail = buf_.size() - start_;
    if (avail < header_size) { need_ = header_size; return read_status::need_more; }
    const char* p = buf_.data() + start_;
    header_type h;
    if (auto e = decode(p, h)) return fail(e, ec);
    std::uint64_t total = header_size + h.body_len();
    if (total > max_frame_size_) return fail(errc::frame_too_large, ec);
    if (avail < total) { need_ = static_cast<std::size_t>(total); return read_status::need_more; }
    need_ = 0;
    fill(out, h, p + header_size);
    start_ += static_cast<std::size_t>(total);
    return read_status::frame;
  }

  /// Bytes received but not yet returned as frames.
  std::size_t buffered() const noexcept { return buf_.size() - start_; }
  std::size_t max_frame_size() const noexcept { return max_frame_size_; }
  /// The whole size of the frame being received, once its header has arrived; else 0.
  std::size_t pending_frame_size() const noexcept { return need_; }
  /// Bytes of memory held.
  std::size_t capacity() const noexcept { return buf_.capacity(); }
  /// Releases memory after a large frame: shrinks to `limit` bytes, keeping what is buffered,
  /// unless that or the frame being received needs more. Invalidates the views of frames
  /// returned so far.
  void shrink_to(std::size_t limit) {
    if (buf_.capacity() <= limit || buffered() > limit || need_ > limit) return;
    buf_.consume(start_);
    start_ = 0;
    buf_.shrink_to(limit);
  }

 private:
  read_status fail(std::error_code e, std::error_code& ec) {
    failed_ = e;
    ec = e;
    return read_status::error;
  }

  static void fill(request_frame& f, const request_header& h, const char* body) noexcept {
    f.header = h;
    f.action = {body, h.action_len()};
    body += h.action_len();
    f.msg = {body, h.msg_len};
    f.blob = {body + h.msg_len, h.blob_len};
  }
  static void fill(response_frame& f, const response_header& h, const char* body) noexcept {
    f.header = h;
    if (h.flag == response_flag::ok) {
      f.msg = {body, h.msg_len};
      f.blob = {body + h.msg_len, h.blob_len};
    } else {
      f.msg = {};
      f.blob = {body, h.blob_len};  // the error string (flag 2); empty for flag 1
    }
  }

  std::size_t max_frame_size_;
  byte_buffer buf_;
  std::size_t start_ = 0;  // first byte not yet returned as a frame
  std::size_t need_ = 0;   // total size of the pending frame, once its header is known
  std::error_code failed_;
};

using request_reader = frame_reader<request_frame>;
using response_reader = frame_reader<response_frame>;

}  // namespace occams_rpc::proto
