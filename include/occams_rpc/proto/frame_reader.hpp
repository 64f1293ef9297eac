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
///
/// Large bodies are read straight into their own buffers. A frame whose body (action, msg and
/// blob) is at least `direct_min` bytes and has not arrived whole when its header is cut is
/// read in direct mode: the body bytes already buffered are copied into one buffer per part
/// (action, msg, blob), and prepare() then offers the rest of the current part, so that the
/// socket reads land where the frame's views will point and nothing of it is moved again.
/// Once it is out (from_parts()), the caller may adopt the part buffers by swapping them with
/// its own (part()): the caller owns the bytes without a copy, and the reader keeps the
/// caller's old buffers for the next large frame. After a large frame the next read asks for
/// one header only, so that the following large body starts in its own buffer too.
template <class Frame>
class frame_reader {
 public:
  using header_type = decltype(Frame::header);
  static constexpr bool is_request = std::is_same_v<header_type, request_header>;
  static constexpr std::size_t header_size = is_request ? request_header_size : response_header_size;
  /// The parts of a body, in wire order (a response has no action; its error string is the
  /// blob part).
  enum part : std::size_t { action_part = 0, msg_part = 1, blob_part = 2 };

  /// `direct_min`: bodies this large are read in direct mode (0: 64 KiB, or the initial
  /// capacity if larger).
  explicit frame_reader(std::size_t max_frame_size = 64u << 20, std::size_t initial_capacity = 8192,
                        std::size_t direct_min = 0)
      : max_frame_size_(max_frame_size),
        step_(std::max<std::size_t>(initial_capacity, 256)),
        direct_min_(direct_min ? direct_min : std::max<std::size_t>(initial_capacity, 64 * 1024)),
        buf_(initial_capacity) {}

  /// Room to read into: at least `min_room` bytes (more if the buffer has it), except in
  /// direct mode (the rest of the current part, or less while its buffer grows with what
  /// arrives) and right after a large frame (one header). Invalidates the views of frames
  /// returned so far.
  std::span<char> prepare(std::size_t min_room = 1) {
    if (direct_ && part_ < 3) return prepare_part();  // (once the parts are whole, bytes after them go to buf_)
    if (start_ > 0) {  // drop consumed frames, keep the partial one
      buf_.consume(start_);
      start_ = 0;
    }
    if (header_next_ && buf_.size() < header_size) {  // after a large frame: its successor's header alone
      if (buf_.capacity() < header_size) buf_.reserve(header_size);
      return {buf_.prepare(header_size - buf_.size()), header_size - buf_.size()};
    }
    // Room for min_room more bytes; for a frame whose size is known, up to double what is
    // buffered (capped at the frame's size): a lying header costs what was really sent.
    std::size_t want = buf_.size() + min_room;
    if (need_ > want) want = std::min(need_, std::max(want, buf_.size() * 2));
    if (buf_.capacity() < want) buf_.reserve(want);
    std::size_t room = buf_.capacity() - buf_.size();
    return {buf_.prepare(room), room};
  }
  void commit(std::size_t n) noexcept {
    if (!direct_ || part_ >= 3) {
      buf_.commit(n);
      return;
    }
    parts_[part_].commit(n);
    direct_got_ += n;
    next_part();
  }

  /// Feeds bytes by copying (for tests and in-memory transports).
  void feed(std::span<const char> bytes) {
    while (!bytes.empty()) {
      auto room = prepare(bytes.size());
      std::size_t n = std::min(room.size(), bytes.size());
      std::memcpy(room.data(), bytes.data(), n);
      commit(n);
      bytes = bytes.subspan(n);
    }
  }

  /// Cuts the next whole frame out of the buffered bytes. After an error the reader stays
  /// failed: the stream cannot be resynchronised.
  read_status next(Frame& out, std::error_code& ec) {
    from_parts_ = false;
    if (failed_) { ec = failed_; return read_status::error; }
    if (direct_) {
      if (direct_got_ < need_ - header_size) return read_status::need_more;
      direct_ = false;
      need_ = 0;
      from_parts_ = true;
      header_next_ = true;
      fill_from_parts(out);
      return read_status::frame;
    }
    std::size_t avail = buf_.size() - start_;
    if (avail < header_size) { need_ = header_size; return read_status::need_more; }
    const char* p = buf_.data() + start_;
    header_type h;
    if (auto e = decode(p, h)) return fail(e, ec);
    std::uint64_t total = header_size + h.body_len();
    if (total > max_frame_size_) return fail(errc::frame_too_large, ec);
    header_next_ = false;
    if (avail < total) {
      need_ = static_cast<std::size_t>(total);
      if (h.body_len() >= direct_min_) begin_direct(h, p, avail);
      return read_status::need_more;
    }
    need_ = 0;
    fill(out, h, p + header_size);
    start_ += static_cast<std::size_t>(total);
    return read_status::frame;
  }

  /// Whether the frame next() returned last was read in direct mode: its views point into
  /// part(), which the caller may swap with its own buffers (until the next prepare()).
  bool from_parts() const noexcept { return from_parts_; }
  /// A direct-mode part's buffer: the frame's bytes of that part once from_parts().
  byte_buffer& part(part p) noexcept { return parts_[p]; }

  /// Bytes received but not yet returned as frames.
  std::size_t buffered() const noexcept {
    return buf_.size() - start_ + (direct_ ? header_size + direct_got_ : 0);
  }
  std::size_t max_frame_size() const noexcept { return max_frame_size_; }
  /// The whole size of the frame being received, once its header has arrived; else 0.
  std::size_t pending_frame_size() const noexcept { return need_; }
  /// Bytes of memory held (the read buffer and the part buffers).
  std::size_t capacity() const noexcept {
    return buf_.capacity() + parts_[0].capacity() + parts_[1].capacity() + parts_[2].capacity();
  }
  /// Releases memory after a large frame: shrinks to `limit` bytes, keeping what is buffered,
  /// unless that or the frame being received needs more. Invalidates the views of frames
  /// returned so far.
  void shrink_to(std::size_t limit) {
    if (direct_ || capacity() <= limit || buffered() > limit || need_ > limit) return;
    for (auto& b : parts_) b = byte_buffer();
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

  /// Direct mode for the frame whose header is at `p` (with `avail` bytes of it buffered):
  /// the body bytes already here go to the part buffers, the read buffer is emptied.
  void begin_direct(const header_type& h, const char* p, std::size_t avail) {
    header_ = h;
    if constexpr (is_request) {
      len_[action_part] = h.action_len();
      len_[msg_part] = h.msg_len;
    } else {
      len_[action_part] = 0;
      len_[msg_part] = h.flag == response_flag::ok ? h.msg_len : 0;
    }
    len_[blob_part] = h.blob_len;
    const char* body = p + header_size;
    std::size_t have = avail - header_size;
    direct_got_ = have;
    for (std::size_t i = 0; i < 3; ++i) {
      parts_[i].clear();
      std::size_t n = std::min(have, len_[i]);
      parts_[i].append(body, n);
      body += n;
      have -= n;
    }
    buf_.clear();
    start_ = 0;
    direct_ = true;
    part_ = 0;
    next_part();
  }

  /// Moves part_ past the parts that are whole.
  void next_part() noexcept {
    while (part_ < 3 && parts_[part_].size() == len_[part_]) ++part_;
  }

  /// The rest of the current part, or less while the part's buffer grows geometrically with
  /// what has arrived (a lying header costs what was really sent).
  std::span<char> prepare_part() {
    byte_buffer& b = parts_[part_];
    std::size_t rest = len_[part_] - b.size();
    std::size_t want = std::min(rest, std::max(b.size(), step_));
    if (b.capacity() - b.size() < want) b.reserve(b.size() + want);
    std::size_t room = std::min(rest, b.capacity() - b.size());
    return {b.prepare(room), room};
  }

  void fill_from_parts(request_frame& f) const noexcept {
    f.header = header_;
    f.action = parts_[action_part].view();
    f.msg = parts_[msg_part].span();
    f.blob = parts_[blob_part].span();
  }
  void fill_from_parts(response_frame& f) const noexcept {
    f.header = header_;
    f.msg = parts_[msg_part].span();
    f.blob = parts_[blob_part].span();
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
  std::size_t step_;        // a part buffer's first growth
  std::size_t direct_min_;  // bodies this large are read in direct mode
  byte_buffer buf_;
  std::size_t start_ = 0;  // first byte not yet returned as a frame
  std::size_t need_ = 0;   // total size of the pending frame, once its header is known
  std::error_code failed_;
  // Direct mode.
  bool direct_ = false;       // a large body is being read into parts_
  bool from_parts_ = false;   // the last frame returned lies in parts_
  bool header_next_ = false;  // the last frame was large: read the next header alone
  header_type header_{};
  byte_buffer parts_[3];
  std::size_t len_[3] = {0, 0, 0};
  std::size_t part_ = 0;        // the part being read into
  std::size_t direct_got_ = 0;  // body bytes received in direct mode
};

using request_reader = frame_reader<request_frame>;
using response_reader = frame_reader<response_frame>;

}  // namespace occams_rpc::proto
