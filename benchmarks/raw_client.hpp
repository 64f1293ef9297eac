// raw_bench's client: one connection keeping W requests in flight. Request i of the window
// always uses slot i % W, and its seq is the next of that slot's (i, i+W, i+2W, ...), so a
// response finds its slot by seq % W and is matched by the exact seq. Responses are checked
// where they lie in the receive buffer; the next requests of a read go out in one writev
// (small payloads copied next to their headers, large ones referenced from the payload).
#pragma once

#include "echo_payload.hpp"
#include "measurement.hpp"
#include "raw_pipe.hpp"

#include <occams_rpc/proto/header.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

namespace bench {

namespace proto = occams_rpc::proto;

class raw_client_connection : public raw_pipe<raw_client_connection> {
 public:
  static constexpr bool output_refers_to_input = false;
  static constexpr std::size_t ref_threshold = 16 * 1024;  // larger payloads are referenced

  raw_client_connection(raw_loop& loop, raw_fd s, std::uint32_t window, measurement& m, echo_payload& payload)
      : raw_pipe(loop, std::move(s)), m_(m), payload_(payload), slots_(window) {
    for (std::uint32_t i = 0; i < window; ++i) slots_[i].seq = i;
  }

  /// Starts reading and fills the window.
  void begin() {
    start();
    for (auto& s : slots_) send(s);
    flush();
  }

  std::size_t on_input(char* p, std::size_t n, std::size_t& need) {
    std::size_t used = 0;
    need = 0;
    auto now = bench_clock::now();  // one arrival time per read
    while (n - used >= proto::response_header_size) {
      const char* frame = p + used;
      proto::response_header h;
      if (auto ec = proto::decode(frame, h)) return refuse(fmt::format("bad response header: {}", ec.message()));
      std::uint64_t total = proto::response_header_size + h.body_len();
      if (total > proto::response_header_size + std::max<std::size_t>(payload_.size(), 4096))
        return refuse(fmt::format("a {}-byte response to a {}-byte echo", total, payload_.size()));
      if (n - used < total) {
        need = static_cast<std::size_t>(total);
        break;
      }
      if (!receive(h, {frame + proto::response_header_size, h.blob_len}, now)) return bad_input;
      used += static_cast<std::size_t>(total);
    }
    return used;
  }

  void on_closed(const std::string& why) {
    if (!m_.finished()) m_.fail(fmt::format("connection lost: {}", why));
  }

 private:
  struct slot {
    std::uint64_t seq = 0;
    bench_clock::time_point sent{};
  };

  void send(slot& s) {
    s.sent = bench_clock::now();
    m_.sent();
    proto::request_header h{.action_word = 1, .seq = s.seq,
                            .blob_len = static_cast<std::uint32_t>(payload_.size())};
    char head[proto::request_header_size];
    proto::encode(h, head);
    out().copy(head, sizeof head);
    auto blob = payload_.bytes();  // outlives every write
    if (blob.size() >= ref_threshold) out().add(blob.data(), blob.size());
    else out().copy(blob.data(), blob.size());
  }

  /// Checks one response; the next request of its slot joins the batch written after the read.
  bool receive(const proto::response_header& h, std::span<const char> blob, bench_clock::time_point now) {
    slot& s = slots_[h.seq % slots_.size()];
    if (h.seq != s.seq) return refuse(fmt::format("response for seq {}, which is not in flight", h.seq)), false;
    if (h.flag != proto::response_flag::ok || h.msg_len != 0)
      return refuse(fmt::format("seq {}: not an OK echo (flag {})", h.seq, static_cast<int>(h.flag))), false;
    std::string why;
    if (!payload_.check(blob, why)) return refuse(why), false;
    m_.received();
    m_.record(s.sent, now);
    s.seq += slots_.size();
    if (m_.issuing()) send(s);
    return true;
  }

  std::size_t refuse(const std::string& why) {
    if (!m_.finished()) m_.fail(why);
    return bad_input;
  }

  measurement& m_;
  echo_payload& payload_;
  std::vector<slot> slots_;
};

}  // namespace bench
