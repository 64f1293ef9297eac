#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>

#include "unit/support/alloc_counter.hpp"
#include "unit/support/hex.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace occams_rpc;
using namespace occams_rpc::proto;
using occams_rpc::test::as_span;
using occams_rpc::test::as_view;
using occams_rpc::test::from_hex;
using occams_rpc::test::to_hex;

namespace {

std::string concat(const std::vector<std::span<const char>>& segs) {
  std::string out;
  for (auto s : segs) out.append(s.data(), s.size());
  return out;
}

// A request frame built by hand from PROTOCOL.md's layout.
std::string request_bytes(std::uint64_t seq, std::uint32_t action_word, std::string_view action_name,
                          std::string_view msg, std::string_view blob) {
  std::string h(request_header_size, '\0');
  encode(request_header{.action_word = action_word, .seq = seq,
                        .msg_len = static_cast<std::uint32_t>(msg.size()),
                        .blob_len = static_cast<std::uint32_t>(blob.size())},
         h.data());
  return h + std::string(action_name) + std::string(msg) + std::string(blob);
}
std::string response_bytes(std::uint64_t seq, std::string_view msg, std::string_view blob) {
  std::string h(response_header_size, '\0');
  encode(response_header{.msg_len = static_cast<std::uint32_t>(msg.size()), .seq = seq,
                         .blob_len = static_cast<std::uint32_t>(blob.size())},
         h.data());
  return h + std::string(msg) + std::string(blob);
}

}  // namespace

TEST_CASE("a new frame_writer batch is empty", "[proto]") {
  frame_writer w;
  CHECK(w.empty());
  CHECK(w.bytes() == 0);
  CHECK(w.buffered_bytes() == 0);
  CHECK(w.buffers().empty());
}

TEST_CASE("many frames in one batch form one contiguous buffer of the exact wire bytes", "[proto]") {
  frame_writer w;
  std::string expected;
  for (std::uint64_t seq = 1; seq <= 200; ++seq) {
    std::string msg(seq % 17, static_cast<char>('a' + seq % 26));
    std::string blob(seq % 5, 'z');
    if (seq % 3 == 0) {
      w.add_request(seq, "Svc.method", as_span(msg), as_span(blob), 99);
      auto bytes = request_bytes(seq, string_action_bit | 10, "Svc.method", msg, blob);
      bytes[16] = 99;  // client_id
      expected += bytes;
    } else {
      w.add_request(seq, static_cast<std::uint32_t>(seq), as_span(msg), as_span(blob));
      expected += request_bytes(seq, static_cast<std::uint32_t>(seq), "", msg, blob);
    }
  }
  CHECK_FALSE(w.empty());
  CHECK(w.bytes() == expected.size());
  CHECK(w.buffered_bytes() == expected.size());
  const auto& segs = w.buffers();
  REQUIRE(segs.size() == 1);
  CHECK(concat(segs) == expected);

  // And the reader gets all 200 back in order.
  request_reader r;
  r.feed(segs[0]);
  request_frame f;
  std::error_code ec;
  for (std::uint64_t seq = 1; seq <= 200; ++seq) {
    REQUIRE(r.next(f, ec) == read_status::frame);
    CHECK(f.header.seq == seq);
    CHECK(f.msg.size() == seq % 17);
    CHECK(f.blob.size() == seq % 5);
  }
  CHECK(r.next(f, ec) == read_status::need_more);
}

TEST_CASE("blobs at or above the threshold go by reference in the gather list", "[proto]") {
  constexpr std::size_t threshold = 1024;
  frame_writer w(256, threshold);
  const std::string small_blob(threshold - 1, 's');
  const std::string big1(threshold, '1');
  const std::string big2(5000, '2');
  const std::string big3(threshold + 1, '3');

  w.add_request(1, 7u, as_span("m1"), as_span(big1));         // by reference
  w.add_request(2, "A.b", as_span("m2"), as_span(small_blob)); // copied
  w.add_response(3, as_span("r3"), as_span(big2));              // by reference
  w.add_ping(4);
  w.add_response(5, {}, as_span(big3));                         // by reference, last in batch

  std::string expected = request_bytes(1, 7, "", "m1", big1) + request_bytes(2, string_action_bit | 3, "A.b", "m2", small_blob) +
                         response_bytes(3, "r3", big2) + request_bytes(4, 0, "", "", "") + response_bytes(5, "", big3);

  CHECK(w.bytes() == expected.size());
  CHECK(w.buffered_bytes() == expected.size() - big1.size() - big2.size() - big3.size());

  const auto& segs = w.buffers();
  // [hdr1 m1] [big1] [hdr2 A.b m2 small hdr3 r3] [big2] [ping hdr5] [big3]
  REQUIRE(segs.size() == 6);
  CHECK(segs[1].data() == big1.data());
  CHECK(segs[1].size() == big1.size());
  CHECK(segs[3].data() == big2.data());
  CHECK(segs[3].size() == big2.size());
  CHECK(segs[5].data() == big3.data());
  CHECK(segs[5].size() == big3.size());
  CHECK(segs[0].size() == request_header_size + 2);
  CHECK(segs[2].size() == request_header_size + 3 + 2 + small_blob.size() + response_header_size + 2);
  CHECK(segs[4].size() == request_header_size + response_header_size);
  CHECK(concat(segs) == expected);

  // buffers() can be asked again and gives the same list.
  CHECK(concat(w.buffers()) == expected);
}

TEST_CASE("msgs at or above the threshold go by reference too, and their length is counted", "[proto]") {
  constexpr std::size_t threshold = 1024;
  frame_writer w(256, threshold);
  const std::string big_msg(3000, 'm');
  const std::string big_blob(2000, 'b');
  const std::string small_msg(threshold - 1, 's');
  w.add_request(1, "S.m", as_span(big_msg), as_span(big_blob));  // msg and blob by reference
  w.add_response(2, as_span(big_msg));                            // msg by reference
  w.add_response(3, as_span(small_msg));                          // copied
  std::string expected = request_bytes(1, string_action_bit | 3, "S.m", big_msg, big_blob) + response_bytes(2, big_msg, "") +
                         response_bytes(3, small_msg, "");
  CHECK(concat(w.buffers()) == expected);
  CHECK(w.bytes() == expected.size());
  CHECK(w.buffered_bytes() == expected.size() - 2 * big_msg.size() - big_blob.size());
  const auto& segs = w.buffers();
  // [hdr1 S.m] [big_msg] [big_blob] [hdr2] [big_msg] [hdr3 small]
  REQUIRE(segs.size() == 6);
  CHECK(segs[1].data() == big_msg.data());
  CHECK(segs[2].data() == big_blob.data());
  CHECK(segs[4].data() == big_msg.data());
  CHECK(w.would_reference(as_span(big_msg)));
  CHECK_FALSE(w.would_reference(as_span(small_msg)));
}

TEST_CASE("a referenced blob of the first frame is gathered after its header", "[proto]") {
  frame_writer w(256, 8);
  const std::string blob = "0123456789";
  w.add_request(1, 1u, {}, as_span(blob));
  const auto& segs = w.buffers();
  REQUIRE(segs.size() == 2);
  CHECK(segs[0].size() == request_header_size);
  CHECK(segs[1].data() == blob.data());
  CHECK(concat(segs) == request_bytes(1, 1, "", "", blob));
}

TEST_CASE("begin_request and end_request wrap a msg appended to body()", "[proto]") {
  frame_writer w;
  w.add_ping(1);
  auto mark = w.begin_request(2, "Calculator.add", 5);
  CHECK(mark == request_header_size);
  w.body().append(std::string_view(from_hex("92 01 02")));
  w.end_request(mark, as_span("xyz"));

  auto mark2 = w.begin_request(3, 42u);
  w.body().append(std::string_view("hello"));
  w.body().append(std::string_view(" world"));
  w.end_request(mark2);

  auto bytes = concat(w.buffers());
  auto expected2 = request_bytes(2, string_action_bit | 14, "Calculator.add", from_hex("92 01 02"), "xyz");
  expected2[16] = 5;
  CHECK(to_hex(bytes) == to_hex(request_bytes(1, 0, "", "", "") + expected2 + request_bytes(3, 42, "", "hello world", "")));
}

TEST_CASE("begin_response and end_response wrap a msg appended to body()", "[proto]") {
  frame_writer w;
  auto mark = w.begin_response(9);
  CHECK(mark == 0);
  w.body().append(std::string_view("answer"));
  w.end_response(mark, as_span("blob"));
  CHECK(concat(w.buffers()) == response_bytes(9, "answer", "blob"));
}

TEST_CASE("rollback drops a frame begun but not finished and keeps the earlier ones", "[proto]") {
  frame_writer w;
  w.add_request(1, "A.a", as_span("one"));
  auto before = concat(w.buffers());
  auto mark = w.begin_request(2, "B.b");
  w.body().append(std::string_view("half-encoded"));
  w.rollback(mark);
  CHECK(w.bytes() == before.size());
  CHECK(concat(w.buffers()) == before);

  // The batch goes on normally after a rollback.
  w.add_request(3, "C.c", as_span("three"));
  CHECK(concat(w.buffers()) == before + request_bytes(3, string_action_bit | 3, "C.c", "three", ""));

  // Rolling back a response too.
  auto rmark = w.begin_response(4);
  w.body().append(std::string_view("partial"));
  w.rollback(rmark);
  CHECK(concat(w.buffers()) == before + request_bytes(3, string_action_bit | 3, "C.c", "three", ""));
}

TEST_CASE("rollback after a referenced blob keeps that blob in the gather list", "[proto]") {
  frame_writer w(256, 16);
  const std::string big(100, 'B');
  w.add_request(1, 1u, as_span("m"), as_span(big));
  auto expected = concat(w.buffers());
  auto mark = w.begin_request(2, 2u);
  w.body().append(std::string_view("junk"));
  w.rollback(mark);
  CHECK(concat(w.buffers()) == expected);
  CHECK(w.bytes() == expected.size());
}

TEST_CASE("clear empties the batch and keeps its capacity", "[proto]") {
  frame_writer w(256, 1024);
  const std::string big(4096, 'B');
  for (int i = 0; i < 100; ++i) w.add_request(i, "Svc.method", as_span(std::string(100, 'm')));
  w.add_response(500, {}, as_span(big));
  (void)w.buffers();
  auto cap = w.body().capacity();
  const char* mem = w.body().data();
  w.clear();
  CHECK(w.empty());
  CHECK(w.bytes() == 0);
  CHECK(w.buffers().empty());
  CHECK(w.body().capacity() == cap);

  // Refilling the batch to the same size reuses the memory and allocates nothing.
  std::size_t allocations = 0;
  {
    test::counting_allocations counting;
    for (int i = 0; i < 100; ++i) w.add_request(i, "Svc.method", as_span(big).first(100));
    w.add_response(500, {}, as_span(big));
    (void)w.buffers();
    allocations = counting.stop();
  }
  CHECK(allocations == 0);
  CHECK(w.body().data() == mem);
}

TEST_CASE("error responses are flag 1 with the code and flag 2 with the string", "[proto]") {
  frame_writer w;
  w.add_error_code(1, 0xdeadbeef);
  w.add_error_string(2, "");
  auto bytes = concat(w.buffers());
  REQUIRE(bytes.size() == 40);
  CHECK(to_hex(std::string_view(bytes).substr(0, 20)) ==
        "25 4d 01 01 ef be ad de 01 00 00 00 00 00 00 00 00 00 00 00");
  CHECK(to_hex(std::string_view(bytes).substr(20)) ==
        "25 4d 01 02 00 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00");
}

TEST_CASE("actions are numbers below 2^31 or names", "[proto]") {
  CHECK(action(5u).word() == 5);
  CHECK_FALSE(action(5u).is_name());
  CHECK(action(max_numeric_action).valid());
  CHECK_FALSE(action(max_numeric_action + 1).valid());
  CHECK(action("S.m").is_name());
  CHECK(action("S.m").name() == "S.m");
  CHECK(action("S.m").word() == (string_action_bit | 3));
  CHECK(action(std::string_view("")).word() == string_action_bit);
  CHECK(action("S.m").valid());
}

TEST_CASE("shrink_to releases a large batch's memory once the batch is empty", "[proto]") {
  frame_writer w(256);
  const std::string msg(10'000, 'x');  // below the reference threshold: copied
  for (int i = 0; i < 10; ++i) w.add_request(i, 1u, as_span(msg));
  w.shrink_to(4096);  // not empty: nothing happens
  CHECK(w.body().capacity() >= 100'000);
  w.clear();
  w.shrink_to(4096);
  CHECK(w.body().capacity() <= 4096);
  w.add_ping(2);
  CHECK(concat(w.buffers()) == request_bytes(2, 0, "", "", ""));
}
