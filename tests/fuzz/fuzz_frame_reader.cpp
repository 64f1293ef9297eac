// libFuzzer target: arbitrary bytes, fed in arbitrary chunk sizes, to request_reader and
// response_reader. The chunked readers must agree with a one-shot reference parser written
// from PROTOCOL.md, every frame must point at exactly its bytes of the stream, an error must
// be sticky, and memory must stay bounded by the frame limit whatever the lengths claim.
//
// Input: byte 0 picks the frame limit and the chunking seed, the rest is the stream.
#include <occams_rpc/proto/frame_reader.hpp>

#include "fuzz_check.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace {

using namespace occams_rpc;
using namespace occams_rpc::proto;

std::uint32_t le32(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}
std::uint64_t le64(const unsigned char* p) { return le32(p) | std::uint64_t{le32(p + 4)} << 32; }

// One frame or the final state, as the reference parser sees the whole stream at once.
struct ref_frame {
  std::size_t offset;
  std::size_t size;
};
struct ref_result {
  std::vector<ref_frame> frames;
  std::error_code error;  // set if the stream fails after `frames`
  std::size_t tail = 0;   // offset of the incomplete rest (when no error)
};

ref_result reference_parse(const unsigned char* p, std::size_t n, std::size_t max_frame, bool request) {
  ref_result r;
  const std::size_t hs = request ? 32 : 20;
  std::size_t off = 0;
  for (;;) {
    r.tail = off;
    if (n - off < hs) return r;
    const unsigned char* h = p + off;
    if (h[0] != 0x25 || h[1] != 0x4d) { r.error = errc::bad_magic; return r; }
    if (h[2] != 1) { r.error = errc::bad_version; return r; }
    std::uint64_t body;
    if (request) {
      std::uint32_t action = le32(h + 4), msg = le32(h + 24), blob = le32(h + 28);
      if (blob > 0x7fffffffu) { r.error = errc::bad_frame; return r; }
      body = std::uint64_t{(action & 0x80000000u) ? action & 0x7fffffffu : 0} + msg + blob;
    } else {
      std::uint8_t flag = h[3];
      std::uint32_t msg = le32(h + 4), blob = le32(h + 16);
      if (flag > 2) { r.error = errc::bad_frame; return r; }
      if (blob > 0x7fffffffu) { r.error = errc::bad_frame; return r; }
      body = flag == 0 ? std::uint64_t{msg} + blob : blob;  // flag 1: msg_len is a code
    }
    if (hs + body > max_frame) { r.error = errc::frame_too_large; return r; }
    if (n - off < hs + body) return r;
    r.frames.push_back({off, static_cast<std::size_t>(hs + body)});
    off += static_cast<std::size_t>(hs + body);
  }
}

// Checks a request frame against its bytes in the stream.
void check_frame(const request_frame& f, const unsigned char* at, std::size_t size) {
  FUZZ_CHECK(size == request_header_size + f.header.body_len());
  FUZZ_CHECK(f.header.seq == le64(at + 8));
  FUZZ_CHECK(f.header.client_id == le64(at + 16));
  FUZZ_CHECK(f.header.action_word == le32(at + 4));
  FUZZ_CHECK(f.header.format == at[3]);
  FUZZ_CHECK(f.action.size() == f.header.action_len());
  FUZZ_CHECK(f.msg.size() == f.header.msg_len);
  FUZZ_CHECK(f.blob.size() == f.header.blob_len);
  FUZZ_CHECK(f.is_ping() == (le32(at + 4) == 0 && le32(at + 24) == 0));
  const auto* body = reinterpret_cast<const char*>(at) + request_header_size;
  FUZZ_CHECK(std::memcmp(f.action.data(), body, f.action.size()) == 0);
  FUZZ_CHECK(std::memcmp(f.msg.data(), body + f.action.size(), f.msg.size()) == 0);
  FUZZ_CHECK(std::memcmp(f.blob.data(), body + f.action.size() + f.msg.size(), f.blob.size()) == 0);
  // Re-encoding the header gives the same bytes.
  char again[request_header_size];
  encode(f.header, again);
  FUZZ_CHECK(std::memcmp(again, at, request_header_size) == 0);
}

void check_frame(const response_frame& f, const unsigned char* at, std::size_t size) {
  FUZZ_CHECK(size == response_header_size + f.header.body_len());
  FUZZ_CHECK(static_cast<std::uint8_t>(f.header.flag) == at[3]);
  FUZZ_CHECK(f.header.seq == le64(at + 8));
  FUZZ_CHECK(f.header.msg_len == le32(at + 4));
  const auto* body = reinterpret_cast<const char*>(at) + response_header_size;
  if (f.ok()) {
    FUZZ_CHECK(f.msg.size() == f.header.msg_len);
    FUZZ_CHECK(f.blob.size() == f.header.blob_len);
    FUZZ_CHECK(std::memcmp(f.msg.data(), body, f.msg.size()) == 0);
    FUZZ_CHECK(std::memcmp(f.blob.data(), body + f.msg.size(), f.blob.size()) == 0);
  } else {
    FUZZ_CHECK(f.msg.empty());  // never sized from a flag-1 code
    FUZZ_CHECK(f.blob.size() == f.header.blob_len);
    FUZZ_CHECK(std::memcmp(f.blob.data(), body, f.blob.size()) == 0);
    FUZZ_CHECK(f.error_string().size() == f.blob.size());
  }
  char again[response_header_size];
  encode(f.header, again);
  FUZZ_CHECK(std::memcmp(again, at, response_header_size) == 0);
}

template <class Frame>
void run(const unsigned char* data, std::size_t size, std::size_t max_frame, std::uint32_t seed) {
  constexpr bool request = std::is_same_v<Frame, request_frame>;
  const ref_result expected = reference_parse(data, size, max_frame, request);

  frame_reader<Frame> reader(max_frame, 16 + seed % 64);
  std::size_t fed = 0, consumed = 0, frames = 0, largest_chunk = 0;
  std::error_code failed;
  auto rng = seed * 2654435761u + 1;
  auto drain = [&] {
    Frame f;
    for (;;) {
      std::error_code ec;
      auto st = reader.next(f, ec);
      if (st == read_status::need_more) {
        FUZZ_CHECK(!ec);
        FUZZ_CHECK(!failed);
        FUZZ_CHECK(reader.buffered() == fed - consumed);
        return;
      }
      if (st == read_status::error) {
        FUZZ_CHECK(ec);
        if (failed) FUZZ_CHECK(ec == failed);  // sticky
        failed = ec;
        // The reference fails at the same point with the same error, once the header is in.
        FUZZ_CHECK(frames == expected.frames.size());
        FUZZ_CHECK(ec == expected.error);
        return;
      }
      FUZZ_CHECK(!failed);
      FUZZ_CHECK(frames < expected.frames.size());
      const auto& ref = expected.frames[frames];
      FUZZ_CHECK(ref.offset == consumed);
      FUZZ_CHECK(ref.size <= max_frame);
      FUZZ_CHECK(consumed + ref.size <= fed);
      check_frame(f, data + consumed, ref.size);
      consumed += ref.size;
      ++frames;
    }
  };

  while (fed < size) {
    // Chunk sizes: mostly small, sometimes large, from a tiny LCG.
    rng = rng * 1103515245u + 12345u;
    std::size_t chunk = (rng >> 16) % 8 == 0 ? (rng >> 8) % 4096 + 1 : (rng >> 16) % 17 + 1;
    chunk = std::min(chunk, size - fed);
    largest_chunk = std::max(largest_chunk, chunk);
    if ((rng >> 20) % 2) {
      reader.feed({reinterpret_cast<const char*>(data) + fed, chunk});
    } else {  // the socket path: read into prepare(), then commit
      auto room = reader.prepare(chunk);
      FUZZ_CHECK(room.size() >= chunk);
      std::memcpy(room.data(), data + fed, chunk);
      reader.commit(chunk);
    }
    fed += chunk;
    drain();
    drain();  // asking again changes nothing
    // Memory stays bounded by what the stream justifies (a partial frame below the limit plus
    // one chunk), never by what a length field claims. After a failure the caller stops
    // reading, so there is nothing to bound.
    if (!failed) {
      std::size_t held = reader.prepare(1).size() + reader.buffered();
      FUZZ_CHECK(held <= 2 * (max_frame + largest_chunk) + 256);
    }
  }
  drain();
  FUZZ_CHECK(frames == expected.frames.size());
  if (expected.error) {
    FUZZ_CHECK(failed == expected.error);
  } else {
    FUZZ_CHECK(!failed);
    FUZZ_CHECK(consumed == expected.tail);
    FUZZ_CHECK(reader.buffered() == size - consumed);
  }
  reader.shrink_to(1024);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t control = data[0];
  static constexpr std::size_t limits[] = {64, 100, 1000, std::size_t{1} << 20};
  const std::size_t max_frame = limits[control & 3];
  const std::uint32_t seed = control >> 2;
  run<request_frame>(data + 1, size - 1, max_frame, seed);
  run<response_frame>(data + 1, size - 1, max_frame, seed);
  return 0;
}
