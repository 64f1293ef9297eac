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
/// Large sections: the blob (else the msg) of a frame, if it is at least `divert_from` bytes
/// and has not all arrived when the bytes before it have, is read straight into a buffer of
/// its own instead of the read buffer (big reads, no memmove of a partial large frame, no copy
/// when take() hands it over: the owner's buffer and the section's are swapped, so the
/// owner's old memory serves the next large section).
template <class Frame>
class frame_reader {
 public:
  using header_type = decltype(Frame::header);
  static constexpr std::size_t header_size =
      std::is_same_v<header_type, request_header> ? request_header_size : response_header_size;

  explicit frame_reader(std::size_t max_frame_size = 64u << 20, std::size_t initial_capacity = 8192,
                        std::size_t divert_from = 64u << 10)
      : max_frame_size_(max_frame_size),
        divert_from_(divert_from),
        first_room_(std::max<std::size_t>(initial_capacity, 256)),
        buf_(initial_capacity) {}

  /// Room to read at least `min_room` bytes into (more if the buffer has it). Invalidates the
  /// views of frames returned so far.
  std::span<char> prepare(std::size_t min_room = 1) {
    section_done_ = false;
    if (section_left_ > 0) return prepare_section(min_room);
    if (start_ > 0) {  // drop consumed frames, keep the partial one
      buf_.consume(start_);
      start_ = 0;
    }
    // Room for min_room more bytes; for a frame whose size is known, up to double what is
    // buffered (capped at the frame's size): a lying header costs what was really sent.
    std::size_t want = buf_.size() + min_room;
    if (grow_to_ > want) want = std::min(grow_to_, std::max(want, buf_.size() * 2));
    if (buf_.capacity() < want) buf_.reserve(want);
    std::size_t room = buf_.capacity() - buf_.size();
    return {buf_.prepare(room), room};
  }
  void commit(std::size_t n) noexcept {
    if (section_left_ > 0) {
      section_.commit(n);
      section_left_ -= n;
    } else {
      buf_.commit(n);
    }
  }

  /// Feeds bytes by copying (for tests and in-memory transports).
  void feed(std::span<const char> bytes) {
    while (!bytes.empty()) {  // a diverted section takes its own bytes only, buf_ the rest
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
    if (failed_) { ec = failed_; return read_status::error; }
    if (diverted_) return next_diverted(out);
    std::size_t avail = buf_.size() - start_;
    if (avail < header_size) { need_ = grow_to_ = header_size; return read_status::need_more; }
    const char* p = buf_.data() + start_;
    header_type h;
    if (auto e = decode(p, h)) return fail(e, ec);
    std::uint64_t total = header_size + h.body_len();
    if (total > max_frame_size_) return fail(errc::frame_too_large, ec);
    if (avail < total) {
      need_ = grow_to_ = static_cast<std::size_t>(total);
      if (divert_from_ != 0 && h.body_len() >= divert_from_) maybe_divert(h, avail);
      return read_status::need_more;
    }
    need_ = grow_to_ = 0;
    fill(out, h, p + header_size);
    start_ += static_cast<std::size_t>(total);
    return read_status::frame;
  }

  /// Puts `bytes`, a view of the frame next() returned last, into `dst`. The frame's diverted
  /// section is handed over whole (swapped with dst: no copy); anything else is copied.
  void take(std::span<const char> bytes, byte_buffer& dst) {
    if (section_done_ && !bytes.empty() && bytes.data() == section_.data() && bytes.size() == section_.size()) {
      std::swap(dst, section_);
      section_.clear();
      section_done_ = false;
      return;
    }
    dst.clear();
    dst.append(bytes);
  }

  /// Bytes received but not yet returned as frames.
  std::size_t buffered() const noexcept { return buf_.size() - start_ + (diverted_ ? section_.size() : 0); }
  std::size_t max_frame_size() const noexcept { return max_frame_size_; }
  /// The whole size of the frame being received, once its header has arrived; else 0.
  std::size_t pending_frame_size() const noexcept { return need_; }
  /// Bytes of memory held.
  std::size_t capacity() const noexcept { return buf_.capacity() + section_.capacity(); }
  /// Releases memory after a large frame: shrinks to `limit` bytes, keeping what is buffered,
  /// unless that or the frame being received needs more; the large sections' buffer is freed
  /// unless a section is being read into it. Invalidates the views of frames returned so far.
  void shrink_to(std::size_t limit) {
    if (!diverted_ && section_.capacity() > 0) {
      section_ = byte_buffer();
      section_done_ = false;
    }
    if (buf_.capacity() <= limit || buf_.size() - start_ > limit || (!diverted_ && need_ > limit)) return;
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

  /// The bytes before the large section have all arrived, the section has not: its buffered
  /// part moves to section_ (at most what one read brought), the rest is read there.
  void maybe_divert(const header_type& h, std::size_t avail) {
    std::size_t before_msg = header_size + action_len(h), msg = msg_len(h), blob = h.blob_len;
    std::size_t head, len;
    if (blob >= divert_from_) {
      head = before_msg + msg;
      len = blob;
    } else if (msg >= divert_from_) {
      head = before_msg;
      len = msg;
    } else {
      return;
    }
    if (avail < head) {  // read the bytes before the section into buf_ first, no more
      grow_to_ = head;
      return;
    }
    std::size_t have = avail - head;
    if (have >= len) return;  // the section is in: only bytes after it are missing
    section_.clear();
    section_.reserve(std::min(len, std::max(have * 2, first_room_)));  // grows as bytes arrive
    section_.append(buf_.data() + start_ + head, have);
    buf_.truncate(start_ + head);
    diverted_ = true;
    section_is_blob_ = len == blob && head == before_msg + msg;
    section_left_ = len - have;
    head_ = head;
    tail_ = static_cast<std::size_t>(header_size + h.body_len()) - head - len;
    grow_to_ = head + tail_;
  }

  /// Room in section_ for the diverted section's next bytes, never past its end (the next
  /// frame's bytes go to buf_). It grows at most by doubling per read, up to the section.
  std::span<char> prepare_section(std::size_t min_room) {
    std::size_t want = std::min(section_left_, std::max({min_room, section_.size(), first_room_}));
    if (section_.capacity() - section_.size() < want) section_.reserve(section_.size() + want);
    std::size_t room = std::min(section_.capacity() - section_.size(), section_left_);
    return {section_.prepare(room), room};
  }

  /// The frame whose section was diverted: whole once the section and the bytes after it (a
  /// small blob after a diverted msg) are in.
  read_status next_diverted(Frame& out) {
    if (section_left_ > 0 || buf_.size() - start_ < head_ + tail_) return read_status::need_more;
    const char* p = buf_.data() + start_;
    header_type h;
    (void)decode(p, h);  // decoded once already
    fill_diverted(out, h, p + header_size, p + head_);
    start_ += head_ + tail_;
    diverted_ = false;
    section_done_ = true;
    need_ = grow_to_ = 0;
    return read_status::frame;
  }

  static std::size_t action_len(const request_header& h) noexcept { return h.action_len(); }
  static std::size_t action_len(const response_header&) noexcept { return 0; }
  static std::size_t msg_len(const request_header& h) noexcept { return h.msg_len; }
  static std::size_t msg_len(const response_header& h) noexcept { return h.flag == response_flag::ok ? h.msg_len : 0; }

  /// Like fill(), with the diverted section in section_ and the tail at `tail`.
  void fill_diverted(Frame& f, const header_type& h, const char* body, const char* tail) const noexcept {
    fill(f, h, body);  // every view before the section is right; the section's and after are not
    std::span<const char> sec{section_.data(), section_.size()};
    if (section_is_blob_) {
      f.blob = sec;
    } else {
      f.msg = sec;
      f.blob = {tail, tail_};
    }
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
  std::size_t divert_from_;  // 0: never divert
  std::size_t first_room_;   // a section's first room when its buffer holds none
  byte_buffer buf_;
  std::size_t start_ = 0;    // first byte not yet returned as a frame
  std::size_t need_ = 0;     // total size of the pending frame, once its header is known
  std::size_t grow_to_ = 0;  // what buf_ may grow to for the pending frame
  // The diverted section of the pending frame (diverted_), or of the frame returned last
  // (section_done_, until the next prepare()).
  byte_buffer section_;
  bool diverted_ = false;
  bool section_done_ = false;
  bool section_is_blob_ = false;
  std::size_t section_left_ = 0;  // section bytes still to read
  std::size_t head_ = 0;          // frame bytes in buf_ before the section
  std::size_t tail_ = 0;          // frame bytes in buf_ after it
  std::error_code failed_;
};

using request_reader = frame_reader<request_frame>;
using response_reader = frame_reader<response_frame>;

}  // namespace occams_rpc::proto
