// A batch of frames for one gathered write. Headers, action strings, small msgs and small blobs
// are copied into one contiguous buffer; msgs and blobs of at least `blob_ref_threshold` bytes
// go by reference in the gather list (two iovecs per frame cost the kernel more than one copy
// of a small payload). Referenced bytes must outlive the write of the batch.
#pragma once

#include <occams_rpc/core/buffer.hpp>
#include <occams_rpc/proto/header.hpp>

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace occams_rpc::proto {

/// What a request is addressed to: a numeric action or an action string.
class action {
 public:
  constexpr action(std::uint32_t number) noexcept : number_(number) {}  // NOLINT: implicit on purpose
  constexpr action(std::string_view name) noexcept : name_(name), is_name_(true) {}  // NOLINT
  constexpr action(const char* name) noexcept : action(std::string_view(name)) {}    // NOLINT

  bool is_name() const noexcept { return is_name_; }
  std::string_view name() const noexcept { return name_; }
  std::uint32_t number() const noexcept { return number_; }
  std::uint32_t word() const noexcept {
    return is_name_ ? string_action_bit | static_cast<std::uint32_t>(name_.size()) : number_;
  }
  /// Numeric actions must fit 31 bits and names must be shorter than 2^31 bytes.
  bool valid() const noexcept { return is_name_ ? name_.size() <= max_numeric_action : number_ <= max_numeric_action; }

 private:
  std::string_view name_;
  std::uint32_t number_ = 0;
  bool is_name_ = false;
};

class frame_writer {
 public:
  static constexpr std::size_t default_blob_ref_threshold = 16 * 1024;

  explicit frame_writer(std::size_t initial_capacity = 8192,
                        std::size_t blob_ref_threshold = default_blob_ref_threshold)
      : buf_(initial_capacity), blob_ref_threshold_(blob_ref_threshold) {}

  // --- requests ---

  /// Appends a whole request frame.
  void add_request(std::uint64_t seq, action a, std::span<const char> msg, std::span<const char> blob = {},
                   std::uint64_t client_id = 0) {
    add_request(seq, a, {}, msg, blob, client_id, 0);
  }
  /// Appends a whole request frame whose msg is `prefix` then `msg` (an extension's prefix,
  /// proto/extensions.hpp), with v1's format byte or an extension's. A frame copied whole (no
  /// piece large enough to be referenced: the common small call) takes one reservation and
  /// one header write, not one per piece.
  void add_request(std::uint64_t seq, action a, std::span<const char> prefix, std::span<const char> msg,
                   std::span<const char> blob, std::uint64_t client_id, std::uint8_t format) {
    if (would_reference(msg) || would_reference(blob)) {
      auto mark = begin_request(seq, a, client_id, format);
      add_msg(prefix);
      add_msg(msg);
      end_request(mark, blob);
      return;
    }
    std::size_t total = request_header_size + a.name().size() + prefix.size() + msg.size() + blob.size();
    char* out = buf_.prepare(total);
    request_header h = header_for(seq, a, client_id, format);
    h.msg_len = static_cast<std::uint32_t>(prefix.size() + msg.size());
    h.blob_len = static_cast<std::uint32_t>(blob.size());
    encode(h, out);
    out = copy_piece(out + request_header_size, a.name());
    out = copy_piece(out, prefix);
    out = copy_piece(copy_piece(out, msg), blob);
    buf_.commit(total);
  }
  void add_ping(std::uint64_t seq, std::uint64_t client_id = 0) { add_request(seq, ping_action, {}, {}, client_id); }
  /// A header-only request frame with an extension's format byte (a cancel frame).
  void add_control(std::uint64_t seq, std::uint8_t format, std::uint64_t client_id = 0) {
    end_request(begin_request(seq, ping_action, client_id, format));
  }

  /// Starts a request whose msg the caller then appends to `body()` (a codec encodes straight
  /// into the batch, no intermediate copy); `end_request` finishes it.
  /// `format` is v1's format byte (0), or an extension's on a negotiated connection
  /// (proto/extensions.hpp).
  std::size_t begin_request(std::uint64_t seq, action a, std::uint64_t client_id = 0, std::uint8_t format = 0) {
    std::size_t mark = buf_.size();
    encode(header_for(seq, a, client_id, format), buf_.prepare(request_header_size));
    buf_.commit(request_header_size);
    if (a.is_name()) buf_.append(a.name());
    ref_bytes_at_mark_ = ref_bytes_;
    return mark;
  }
  /// Adds (part of) the msg of the frame begun last: copied, or referenced if large.
  void add_msg(std::span<const char> msg) { add_bytes(msg); }
  /// Whether add_msg / end_* would reference these bytes rather than copy them.
  bool would_reference(std::span<const char> bytes) const noexcept { return bytes.size() >= blob_ref_threshold_; }
  void end_request(std::size_t mark, std::span<const char> blob = {}) {
    char* h = buf_.data() + mark;
    auto action_len = detail::load_le<std::uint32_t>(h + 4);
    action_len = (action_len & string_action_bit) ? action_len & ~string_action_bit : 0;
    auto msg_len = buf_.size() - mark - request_header_size - action_len + (ref_bytes_ - ref_bytes_at_mark_);
    detail::store_le(h + 24, static_cast<std::uint32_t>(msg_len));
    detail::store_le(h + 28, static_cast<std::uint32_t>(blob.size()));
    add_bytes(blob);
  }

  // --- responses ---

  void add_response(std::uint64_t seq, std::span<const char> msg, std::span<const char> blob = {}) {
    auto mark = begin_response(seq);
    add_msg(msg);
    end_response(mark, blob);
  }
  /// A flag-1 response: the code travels in the msg_len field, no body.
  void add_error_code(std::uint64_t seq, std::uint32_t code) {
    response_header h{.flag = response_flag::error_code, .msg_len = code, .seq = seq, .blob_len = 0};
    encode(h, buf_.prepare(response_header_size));
    buf_.commit(response_header_size);
  }
  /// A flag-2 response: framework errors are the `rpc_*` strings, anything else a user error.
  void add_error_string(std::uint64_t seq, std::string_view error) {
    response_header h{.flag = response_flag::error_string, .msg_len = 0, .seq = seq,
                      .blob_len = static_cast<std::uint32_t>(error.size())};
    encode(h, buf_.prepare(response_header_size));
    buf_.commit(response_header_size);
    buf_.append(error);
  }
  std::size_t begin_response(std::uint64_t seq) {
    std::size_t mark = buf_.size();
    response_header h{.seq = seq};
    encode(h, buf_.prepare(response_header_size));
    buf_.commit(response_header_size);
    ref_bytes_at_mark_ = ref_bytes_;
    return mark;
  }
  void end_response(std::size_t mark, std::span<const char> blob = {}) {
    char* h = buf_.data() + mark;
    auto msg_len = buf_.size() - mark - response_header_size + (ref_bytes_ - ref_bytes_at_mark_);
    detail::store_le(h + 4, static_cast<std::uint32_t>(msg_len));
    detail::store_le(h + 16, static_cast<std::uint32_t>(blob.size()));
    add_bytes(blob);
  }

  /// Where a codec appends the msg between begin_* and end_*.
  byte_buffer& body() noexcept { return buf_; }
  /// Drops a frame begun at `mark` (an encode failed half-way, before any add_msg).
  void rollback(std::size_t mark) noexcept { buf_.truncate(mark); }

  // --- the batch ---

  bool empty() const noexcept { return buf_.empty() && refs_.empty(); }
  /// Total bytes in the batch, referenced blobs included.
  std::size_t bytes() const noexcept { return buf_.size() + ref_bytes_; }
  /// Bytes copied into the contiguous buffer.
  std::size_t buffered_bytes() const noexcept { return buf_.size(); }

  /// The gather list for one write: the contiguous buffer cut around the referenced blobs.
  /// Valid until the batch is changed.
  const std::vector<std::span<const char>>& buffers() {
    gather_.clear();
    std::size_t from = 0;
    for (const auto& r : refs_) {
      if (r.offset > from) gather_.emplace_back(buf_.data() + from, r.offset - from);
      gather_.push_back(r.blob);
      from = r.offset;
    }
    if (buf_.size() > from) gather_.emplace_back(buf_.data() + from, buf_.size() - from);
    return gather_;
  }

  /// Empties the batch, keeping its memory.
  void clear() noexcept {
    buf_.clear();
    refs_.clear();
    ref_bytes_ = 0;
    ref_bytes_at_mark_ = 0;
  }
  /// Releases memory after a burst (only when empty).
  void shrink_to(std::size_t limit) { if (empty()) buf_.shrink_to(limit); }

 private:
  /// A request's header, its lengths still 0.
  static request_header header_for(std::uint64_t seq, action a, std::uint64_t client_id, std::uint8_t format) noexcept {
    request_header h;
    h.format = format;
    h.action_word = a.word();
    h.seq = seq;
    h.client_id = client_id;
    return h;
  }
  static char* copy_piece(char* out, std::span<const char> piece) noexcept {
    if (!piece.empty()) std::memcpy(out, piece.data(), piece.size());
    return out + piece.size();
  }
  void add_bytes(std::span<const char> bytes) {
    if (bytes.size() >= blob_ref_threshold_) {
      refs_.push_back({buf_.size(), bytes});
      ref_bytes_ += bytes.size();
    } else {
      buf_.append(bytes);
    }
  }

  struct blob_ref {
    std::size_t offset;  // where in buf_ the blob belongs
    std::span<const char> blob;
  };
  byte_buffer buf_;
  std::size_t blob_ref_threshold_;
  std::vector<blob_ref> refs_;
  std::size_t ref_bytes_ = 0;
  std::size_t ref_bytes_at_mark_ = 0;  // ref_bytes_ when the open frame began
  std::vector<std::span<const char>> gather_;
};

}  // namespace occams_rpc::proto
