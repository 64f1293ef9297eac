#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>

#include "unit/support/frames.hpp"
#include "unit/support/hex.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <string>
#include <string_view>
#include <vector>

using namespace occams_rpc;
using namespace occams_rpc::proto;
using occams_rpc::test::as_span;
using occams_rpc::test::as_view;
using occams_rpc::test::from_hex;
using occams_rpc::test::wire;

namespace {


// A copy of a request frame that outlives the reader's buffer.
struct req {
  std::uint64_t seq;
  std::uint32_t action_word;
  std::string action, msg, blob;
  bool ping;
  bool operator==(const req&) const = default;
};
struct resp {
  std::uint64_t seq;
  response_flag flag;
  std::uint32_t msg_len;
  std::string msg, blob;
  bool operator==(const resp&) const = default;
};

req copy(const request_frame& f) {
  return {f.header.seq, f.header.action_word, std::string(f.action), std::string(as_view(f.msg)),
          std::string(as_view(f.blob)), f.is_ping()};
}
resp copy(const response_frame& f) {
  return {f.header.seq, f.header.flag, f.header.msg_len, std::string(as_view(f.msg)), std::string(as_view(f.blob))};
}

// Drains every whole frame the reader holds; fails the test on an error.
template <class Reader, class Out>
void drain(Reader& r, std::vector<Out>& out) {
  std::conditional_t<std::is_same_v<Out, req>, request_frame, response_frame> f;
  std::error_code ec;
  for (;;) {
    auto st = r.next(f, ec);
    REQUIRE(st != read_status::error);
    if (st == read_status::need_more) return;
    out.push_back(copy(f));
  }
}

// A stream of varied request frames and the frames it must decode to.
std::string request_stream(std::vector<req>& expected) {
  frame_writer w;
  std::string big(3000, 'B');
  w.add_ping(1);
  expected.push_back({1, 0, "", "", "", true});
  w.add_request(2, 3u, as_span(from_hex("81 a5 69 6e 6f 64 65 05")), as_span("abc"));
  expected.push_back({2, 3, "", from_hex("81 a5 69 6e 6f 64 65 05"), "abc", false});
  w.add_request(7, "Calculator.add", as_span(from_hex("92 01 02")));
  expected.push_back({7, string_action_bit | 14, "Calculator.add", from_hex("92 01 02"), "", false});
  w.add_request(8, "S.m", {}, as_span(big));
  expected.push_back({8, string_action_bit | 3, "S.m", "", big, false});
  w.add_request(9, 0u, as_span("x"));  // action 0 with a msg: an ordinary request
  expected.push_back({9, 0, "", "x", "", false});
  w.add_request(10, max_numeric_action, as_span(big), as_span("tail"));
  expected.push_back({10, max_numeric_action, "", big, "tail", false});
  return wire(w);
}

std::string response_stream(std::vector<resp>& expected) {
  frame_writer w;
  std::string big(2500, 'R');
  w.add_response(1, {});
  expected.push_back({1, response_flag::ok, 0, "", ""});
  w.add_response(7, as_span(from_hex("03")));
  expected.push_back({7, response_flag::ok, 1, from_hex("03"), ""});
  w.add_error_code(9, 13);
  expected.push_back({9, response_flag::error_code, 13, "", ""});
  w.add_response(2, as_span(big), as_span("abc"));
  expected.push_back({2, response_flag::ok, 2500, big, "abc"});
  w.add_error_string(10, "rpc_method_notfound");
  expected.push_back({10, response_flag::error_string, 0, "", "rpc_method_notfound"});
  w.add_error_code(11, 0xffffffffu);  // a huge code: still a 20-byte frame
  expected.push_back({11, response_flag::error_code, 0xffffffffu, "", ""});
  w.add_response(12, {}, as_span(big));
  expected.push_back({12, response_flag::ok, 0, "", big});
  return wire(w);
}

// Total memory the reader holds: its free room plus what it buffers.
template <class Reader>
std::size_t capacity_of(Reader& r) {
  return r.prepare(1).size() + r.buffered();
}

std::string request_header_bytes(std::uint32_t action_word, std::uint32_t msg_len, std::uint32_t blob_len,
                                 std::uint64_t seq = 1) {
  std::string h(request_header_size, '\0');
  encode(request_header{.action_word = action_word, .seq = seq, .msg_len = msg_len, .blob_len = blob_len}, h.data());
  return h;
}
std::string response_header_bytes(response_flag flag, std::uint32_t msg_len, std::uint32_t blob_len,
                                  std::uint64_t seq = 1) {
  std::string h(response_header_size, '\0');
  encode(response_header{.flag = flag, .msg_len = msg_len, .seq = seq, .blob_len = blob_len}, h.data());
  return h;
}

// A frame's size on the wire (a flag-1 response's msg_len is a code, not a length).
std::size_t frame_size(const req& e) { return request_header_size + e.action.size() + e.msg.size() + e.blob.size(); }
std::size_t frame_size(const resp& e) {
  return response_header_size + (e.flag == response_flag::ok ? e.msg.size() : 0) + e.blob.size();
}

// Feeds `bytes` one byte at a time; every frame must come out, and nothing stay buffered.
template <class Reader, class Frame>
void check_one_byte_at_a_time(const std::string& bytes, const std::vector<Frame>& expected) {
  Reader r(1 << 20, 64);
  std::vector<Frame> got;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    r.feed(as_span(std::string_view(bytes).substr(i, 1)));
    drain(r, got);
  }
  CHECK(got == expected);
  CHECK(r.buffered() == 0);
}

// Splits each frame of `bytes` in two at every offset, each time into a fresh reader; the frame
// must come out whole, once its last byte is in.
template <class Reader, class Frame>
void check_each_frame_split_everywhere(const std::string& bytes, const std::vector<Frame>& expected) {
  std::size_t begin = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    std::string_view frame = std::string_view(bytes).substr(begin, frame_size(expected[i]));
    for (std::size_t cut = 0; cut <= frame.size(); ++cut) {
      INFO("frame " << i << " cut at " << cut);
      Reader r(1 << 20, 16);
      std::vector<Frame> got;
      r.feed(as_span(frame.substr(0, cut)));
      drain(r, got);
      CHECK(got.size() == (cut == frame.size() ? 1u : 0u));
      r.feed(as_span(frame.substr(cut)));
      drain(r, got);
      REQUIRE(got.size() == 1);
      CHECK(got[0] == expected[i]);
      CHECK(r.buffered() == 0);
    }
    begin += frame.size();
  }
  CHECK(begin == bytes.size());
}

}  // namespace

TEST_CASE("an empty reader needs more bytes", "[proto]") {
  request_reader r;
  request_frame f;
  std::error_code ec;
  CHECK(r.next(f, ec) == read_status::need_more);
  CHECK_FALSE(ec);
  CHECK(r.buffered() == 0);
  CHECK(r.max_frame_size() == 64u << 20);
}

TEST_CASE("request frames fed one byte at a time are all read", "[proto]") {
  std::vector<req> expected;
  auto bytes = request_stream(expected);
  check_one_byte_at_a_time<request_reader>(bytes, expected);
}

TEST_CASE("response frames fed one byte at a time are all read", "[proto]") {
  std::vector<resp> expected;
  auto bytes = response_stream(expected);
  check_one_byte_at_a_time<response_reader>(bytes, expected);
}

TEST_CASE("many frames in one chunk are read one after another", "[proto]") {
  std::vector<req> expected, got;
  auto bytes = request_stream(expected);
  request_reader r;
  r.feed(as_span(bytes));
  CHECK(r.buffered() == bytes.size());
  drain(r, got);
  CHECK(got == expected);
  CHECK(r.buffered() == 0);

  std::vector<resp> rexpected, rgot;
  auto rbytes = response_stream(rexpected);
  response_reader rr;
  rr.feed(as_span(rbytes));
  drain(rr, rgot);
  CHECK(rgot == rexpected);
}

TEST_CASE("the views of frames cut from one chunk stay valid until the next prepare", "[proto]") {
  frame_writer w;
  w.add_request(1, "A.a", as_span("first"));
  w.add_request(2, "B.b", as_span("second"), as_span("blob2"));
  auto bytes = wire(w);
  request_reader r;
  r.feed(as_span(bytes));
  request_frame f1, f2;
  std::error_code ec;
  REQUIRE(r.next(f1, ec) == read_status::frame);
  REQUIRE(r.next(f2, ec) == read_status::frame);
  CHECK(f1.action == "A.a");
  CHECK(as_view(f1.msg) == "first");
  CHECK(f2.action == "B.b");
  CHECK(as_view(f2.msg) == "second");
  CHECK(as_view(f2.blob) == "blob2");
}

TEST_CASE("a request frame split at every possible offset is read whole", "[proto]") {
  std::vector<req> expected;
  auto bytes = request_stream(expected);
  check_each_frame_split_everywhere<request_reader>(bytes, expected);
}

TEST_CASE("two frames split at every offset, across their boundary too, are both read", "[proto]") {
  frame_writer w;
  w.add_request(7, "Calculator.add", as_span(from_hex("92 01 02")), as_span("blob"));
  const std::size_t first_size = w.bytes();
  w.add_request(8, 5u, as_span("msg"));
  auto pair = wire(w);
  const std::vector<req> expected = {
      {7, string_action_bit | 14, "Calculator.add", from_hex("92 01 02"), "blob", false},
      {8, 5, "", "msg", "", false}};
  for (std::size_t cut = 0; cut <= pair.size(); ++cut) {
    INFO("cut at " << cut);
    request_reader r(1 << 20, 16);
    std::vector<req> got;
    r.feed(as_span(std::string_view(pair).substr(0, cut)));
    drain(r, got);
    CHECK(got.size() == (cut >= first_size ? 1u : 0u) + (cut == pair.size() ? 1u : 0u));
    r.feed(as_span(std::string_view(pair).substr(cut)));
    drain(r, got);
    CHECK(got == expected);
    CHECK(r.buffered() == 0);
  }
}

TEST_CASE("a response frame split at every possible offset is read whole", "[proto]") {
  std::vector<resp> expected;
  auto bytes = response_stream(expected);
  check_each_frame_split_everywhere<response_reader>(bytes, expected);
}

TEST_CASE("the whole stream split into three at many offsets decodes the same", "[proto]") {
  std::vector<req> expected;
  auto bytes = request_stream(expected);
  for (std::size_t a = 0; a < bytes.size(); a += 97) {
    for (std::size_t b = a; b <= bytes.size(); b += 331) {
      request_reader r(1 << 20, 32);
      std::vector<req> got;
      r.feed(as_span(std::string_view(bytes).substr(0, a)));
      drain(r, got);
      r.feed(as_span(std::string_view(bytes).substr(a, b - a)));
      drain(r, got);
      r.feed(as_span(std::string_view(bytes).substr(b)));
      drain(r, got);
      REQUIRE(got == expected);
    }
  }
}

TEST_CASE("prepare grows the buffer geometrically, reading straight into it, up to the pending frame", "[proto]") {
  request_reader r(1 << 20, 256);
  auto header = request_header_bytes(5, 100'000, 20'000);
  r.feed(as_span(header));
  request_frame f;
  std::error_code ec;
  REQUIRE(r.next(f, ec) == read_status::need_more);
  // Reading straight into prepare()/commit() works like feed(); each read's room is at most
  // about what is buffered (doubling), never the whole claimed frame at once.
  std::string body(120'000, 'b');
  std::size_t sent = 0, reads = 0;
  while (sent < body.size()) {
    auto room = r.prepare(1);
    REQUIRE(room.size() >= 1);
    CHECK(r.capacity() <= std::max<std::size_t>(2 * (header.size() + sent), 512));
    std::size_t n = std::min(room.size(), body.size() - sent);
    std::memcpy(room.data(), body.data() + sent, n);
    r.commit(n);
    sent += n;
    ++reads;
    REQUIRE(reads < 64);
  }
  CHECK(r.capacity() <= 2 * (header.size() + body.size()));
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.msg.size() == 100'000);
  CHECK(f.blob.size() == 20'000);
}

TEST_CASE("a frame larger than the limit is rejected with frame_too_large before memory is reserved",
          "[proto]") {
  constexpr std::size_t limit = 1 << 20;
  SECTION("request with a huge msg_len") {
    request_reader r(limit, 256);
    r.feed(as_span(request_header_bytes(5, 0xffffffffu, 0)));
    request_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::frame_too_large);
    CHECK(capacity_of(r) < 4096);
  }
  SECTION("request with a huge action string length") {
    request_reader r(limit, 256);
    r.feed(as_span(request_header_bytes(string_action_bit | 0x7fffffffu, 0, 0)));
    request_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::frame_too_large);
    CHECK(capacity_of(r) < 4096);
  }
  SECTION("request whose lengths are each below the limit but sum above it") {
    request_reader r(limit, 256);
    r.feed(as_span(request_header_bytes(string_action_bit | 400'000u, 400'000u, 400'000u)));
    request_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::frame_too_large);
    CHECK(capacity_of(r) < 4096);
  }
  SECTION("OK response with a huge msg_len") {
    response_reader r(limit, 256);
    r.feed(as_span(response_header_bytes(response_flag::ok, 0xffffffffu, 0)));
    response_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::frame_too_large);
    CHECK(capacity_of(r) < 4096);
  }
  SECTION("error-string response with a long string") {
    response_reader r(limit, 256);
    r.feed(as_span(response_header_bytes(response_flag::error_string, 0, 0x7fffffffu)));
    response_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::frame_too_large);
    CHECK(capacity_of(r) < 4096);
  }
  SECTION("request with every length at its maximum") {
    request_reader r(limit, 256);
    r.feed(as_span(request_header_bytes(string_action_bit | 0x7fffffffu, 0xffffffffu, 0x7fffffffu)));
    request_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::frame_too_large);
    CHECK(capacity_of(r) < 4096);
  }
  SECTION("a frame within the limit gets its memory as its body arrives (the measure is sensitive)") {
    request_reader r(limit, 256);
    r.feed(as_span(request_header_bytes(5, 600'000, 0)));
    request_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::need_more);
    r.feed(as_span(std::string(300'000, 'b')));
    CHECK(r.next(f, ec) == read_status::need_more);
    CHECK(capacity_of(r) >= 300'000);
  }
}

TEST_CASE("a frame of exactly the limit is accepted and one byte more is rejected", "[proto]") {
  constexpr std::size_t limit = 1000;
  {
    request_reader r(limit, 64);
    frame_writer w;
    w.add_request(1, 2u, as_span(std::string(limit - request_header_size, 'm')));
    r.feed(as_span(wire(w)));
    request_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::frame);
    CHECK(f.msg.size() == limit - request_header_size);
  }
  {
    request_reader r(limit, 64);
    r.feed(as_span(request_header_bytes(2, 0, limit - request_header_size + 1)));
    request_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::frame_too_large);
  }
  {
    response_reader r(limit, 64);
    frame_writer w;
    const std::string msg(limit - response_header_size - 10, 'm'), blob(10, 'b');  // referenced: kept alive
    w.add_response(1, as_span(msg), as_span(blob));
    r.feed(as_span(wire(w)));
    response_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::frame);
  }
  {
    response_reader r(limit, 64);
    r.feed(as_span(response_header_bytes(response_flag::ok, limit - response_header_size, 1)));
    response_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::frame_too_large);
  }
}

TEST_CASE("a reader stays failed after an error", "[proto]") {
  std::vector<req> expected;
  auto good = request_stream(expected);
  SECTION("after bad magic") {
    request_reader r;
    auto bad = request_header_bytes(1, 0, 0);
    bad[0] = 'X';
    r.feed(as_span(bad));
    request_frame f;
    std::error_code ec;
    REQUIRE(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::bad_magic);
    r.feed(as_span(good));
    for (int i = 0; i < 3; ++i) {
      std::error_code ec2;
      CHECK(r.next(f, ec2) == read_status::error);
      CHECK(ec2 == errc::bad_magic);
    }
  }
  SECTION("after bad version") {
    response_reader r;
    auto bad = response_header_bytes(response_flag::ok, 0, 0);
    bad[2] = 2;
    r.feed(as_span(bad));
    response_frame f;
    std::error_code ec;
    REQUIRE(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::bad_version);
    r.feed(as_span(response_header_bytes(response_flag::ok, 0, 0)));
    std::error_code ec2;
    CHECK(r.next(f, ec2) == read_status::error);
    CHECK(ec2 == errc::bad_version);
  }
  SECTION("after a good frame then a too-large one") {
    request_reader r(4096, 256);
    r.feed(as_span(request_header_bytes(1, 0, 0, 77)));
    r.feed(as_span(request_header_bytes(1, 5000, 0)));
    r.feed(as_span(good));
    request_frame f;
    std::error_code ec;
    REQUIRE(r.next(f, ec) == read_status::frame);
    CHECK(f.header.seq == 77);
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::frame_too_large);
    std::error_code ec2;
    CHECK(r.next(f, ec2) == read_status::error);
    CHECK(ec2 == errc::frame_too_large);
  }
}

TEST_CASE("a reader rejects an unknown response flag and a negative blob length", "[proto]") {
  {
    response_reader r;
    r.feed(as_span(from_hex("25 4d 01 03 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00")));
    response_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::bad_frame);
  }
  {
    response_reader r;
    r.feed(as_span(from_hex("25 4d 01 00 00 00 00 00 01 00 00 00 00 00 00 00 ff ff ff ff")));
    response_frame f;
    std::error_code ec;
    CHECK(r.next(f, ec) == read_status::error);
    CHECK(ec == errc::bad_frame);
  }
}

TEST_CASE("a flag-1 response with a huge error code is read as a 20-byte frame", "[proto]") {
  // msg_len holds the code: sizing the frame from it would wait for 4 GiB or reject it.
  response_reader r(64, 32);
  auto bytes = response_header_bytes(response_flag::error_code, 0xfffffff0u, 0, 3) +
               response_header_bytes(response_flag::ok, 0, 0, 4);
  r.feed(as_span(std::string_view(bytes).substr(0, 20)));
  response_frame f;
  std::error_code ec;
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK_FALSE(ec);
  CHECK(f.header.flag == response_flag::error_code);
  CHECK(f.header.error_code() == 0xfffffff0u);
  CHECK(f.header.body_len() == 0);
  CHECK(f.header.seq == 3);
  CHECK(f.msg.empty());
  CHECK(f.blob.empty());
  CHECK(capacity_of(r) < 4096);
  r.feed(as_span(std::string_view(bytes).substr(20)));
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.header.seq == 4);
  CHECK(f.ok());
}

TEST_CASE("a ping is action 0 with an empty msg but action 0 with a msg is not a ping", "[proto]") {
  frame_writer w;
  w.add_ping(1);
  w.add_request(2, 0u, as_span("m"));              // action 0 with a msg: ordinary request
  w.add_request(3, 0u, {}, as_span("ignored"));    // ping with a blob: still a ping
  w.add_request(4, 1u, {});                        // action 1, no msg: not a ping
  w.add_request(5, "", {});                        // empty string action: not a ping
  request_reader r;
  r.feed(as_span(wire(w)));
  request_frame f;
  std::error_code ec;
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.header.seq == 1);
  CHECK(f.is_ping());
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.header.seq == 2);
  CHECK_FALSE(f.is_ping());
  CHECK(as_view(f.msg) == "m");
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.header.seq == 3);
  CHECK(f.is_ping());
  CHECK(as_view(f.blob) == "ignored");
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.header.seq == 4);
  CHECK_FALSE(f.is_ping());
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.header.seq == 5);
  CHECK(f.header.has_string_action());
  CHECK_FALSE(f.is_ping());
  CHECK(r.next(f, ec) == read_status::need_more);
}

TEST_CASE("shrink_to releases a large frame's memory and keeps the bytes buffered after it", "[proto]") {
  request_reader r(1 << 20, 256);
  frame_writer w;
  const std::string big(200'000, 'x');  // referenced by the batch: kept alive
  w.add_request(1, 2u, as_span(big));
  w.add_request(2, 2u, as_span("small"));
  auto bytes = wire(w);
  r.feed(as_span(bytes.substr(0, bytes.size() - 3)));  // the small frame still partial
  request_frame f;
  std::error_code ec;
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.msg.size() == big.size());
  REQUIRE(r.next(f, ec) == read_status::need_more);
  CHECK(capacity_of(r) >= 200'000);
  r.shrink_to(4096);
  CHECK(capacity_of(r) <= 4096);
  r.feed(as_span(bytes.substr(bytes.size() - 3)));
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.header.seq == 2);
  CHECK(as_view(f.msg) == "small");
  // Still usable afterwards.
  r.feed(as_span(request_header_bytes(0, 0, 0, 9)));
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.header.seq == 9);
}

TEST_CASE("shrink_to keeps the memory a partly received large frame needs", "[proto]") {
  request_reader r(1 << 20, 256);
  frame_writer w;
  const std::string big(100'000, 'x');
  w.add_request(1, 2u, as_span(big));
  auto bytes = wire(w);
  r.feed(as_span(bytes.substr(0, 50'000)));
  request_frame f;
  std::error_code ec;
  REQUIRE(r.next(f, ec) == read_status::need_more);
  CHECK(r.pending_frame_size() == bytes.size());
  r.shrink_to(4096);
  CHECK(capacity_of(r) >= 50'000);
  r.feed(as_span(bytes.substr(50'000)));
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.msg.size() == big.size());
}

TEST_CASE("a header claiming a huge body reserves memory only as its bytes arrive", "[proto]") {
  // Memory must grow with the bytes received, never with the bytes claimed: a peer that sends
  // headers of 60 MiB frames and nothing more must not make the reader reserve 60 MiB each.
  const std::size_t claimed = 60u << 20;
  request_reader r(64u << 20, 8192);
  auto header = request_header_bytes(0, 0, static_cast<std::uint32_t>(claimed), 1);  // action 0: no action bytes
  r.feed(as_span(header));
  request_frame f;
  std::error_code ec;
  REQUIRE(r.next(f, ec) == read_status::need_more);
  CHECK(r.pending_frame_size() == header.size() + claimed);
  auto room = r.prepare(4096);
  CHECK(capacity_of(r) <= 16384);
  CHECK(room.size() <= 16384);
  // Fed in 64 KiB reads, the buffer stays within a small multiple of what has arrived (it
  // grows geometrically), far below the claim.
  const std::string chunk(64 * 1024, 'y');
  std::size_t received = header.size();
  for (int i = 0; i < 64; ++i) {
    r.feed(as_span(chunk));
    received += chunk.size();
    REQUIRE(r.next(f, ec) == read_status::need_more);
    CHECK(capacity_of(r) <= 4 * received + 2 * chunk.size());
  }
  // And the rest arrives: the frame is whole.
  std::string rest(header.size() + claimed - received, 'z');
  r.feed(as_span(rest));
  REQUIRE(r.next(f, ec) == read_status::frame);
  CHECK(f.blob.size() == claimed);
}
