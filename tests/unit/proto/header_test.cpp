// The golden frames of PROTOCOL.md, in both directions, and the header errors.
#include <occams_rpc/codec/msgpack_codec.hpp>
#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/proto/header.hpp>

#include "unit/support/frames.hpp"
#include "unit/support/hex.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>

using namespace occams_rpc;
using namespace occams_rpc::proto;
using occams_rpc::test::as_span;
using occams_rpc::test::as_view;
using occams_rpc::test::from_hex;
using occams_rpc::test::read_one;
using occams_rpc::test::wire;
using occams_rpc::test::to_hex;

namespace golden {
// Copied verbatim from PROTOCOL.md, "Golden vectors (hex)".
const std::string ping_seq1 = from_hex(
    "25 4d 01 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
const std::string action3_seq2 = from_hex(
    "25 4d 01 00 03 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 08 00 00 00 03 00 00 00 "
    "81 a5 69 6e 6f 64 65 05 61 62 63");
const std::string calculator_add_seq7 = from_hex(
    "25 4d 01 00 0e 00 00 80 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00 "
    "43 61 6c 63 75 6c 61 74 6f 72 2e 61 64 64 92 01 02");
const std::string pong_seq1 = from_hex("25 4d 01 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00");
const std::string ok3_seq7 = from_hex("25 4d 01 00 01 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 03");
const std::string ok_ret_size_seq2 = from_hex(
    "25 4d 01 00 0b 00 00 00 02 00 00 00 00 00 00 00 03 00 00 00 81 a8 72 65 74 5f 73 69 7a 65 03 61 62 63");
const std::string eacces_seq9 = from_hex("25 4d 01 01 0d 00 00 00 09 00 00 00 00 00 00 00 00 00 00 00");
const std::string method_notfound_seq10 = from_hex(
    "25 4d 01 02 00 00 00 00 0a 00 00 00 00 00 00 00 13 00 00 00 72 70 63 5f 6d 65 74 68 6f 64 5f 6e 6f 74 "
    "66 6f 75 6e 64");
const std::string divide_by_zero_seq11 = from_hex(
    "25 4d 01 02 00 00 00 00 0b 00 00 00 00 00 00 00 0e 00 00 00 64 69 76 69 64 65 20 62 79 20 7a 65 72 6f");

const std::string inode5 = from_hex("81 a5 69 6e 6f 64 65 05");
const std::string ret_size3 = from_hex("81 a8 72 65 74 5f 73 69 7a 65 03");
}  // namespace golden

namespace {




struct inode_arg {
  std::uint64_t inode = 0;
  OCCAMS_RPC_FIELDS(inode)
};

}  // namespace

TEST_CASE("the golden frames have the documented lengths", "[proto]") {
  CHECK(golden::ping_seq1.size() == 32);
  CHECK(golden::action3_seq2.size() == 43);
  CHECK(golden::calculator_add_seq7.size() == 49);
  CHECK(golden::pong_seq1.size() == 20);
  CHECK(golden::ok3_seq7.size() == 21);
  CHECK(golden::ok_ret_size_seq2.size() == 34);
  CHECK(golden::eacces_seq9.size() == 20);
  CHECK(golden::method_notfound_seq10.size() == 39);
  CHECK(golden::divide_by_zero_seq11.size() == 34);
}

// --- requests ---------------------------------------------------------------------------

TEST_CASE("a ping request encodes to the golden bytes", "[proto]") {
  frame_writer w;
  w.add_ping(1);
  CHECK(to_hex(wire(w)) == to_hex(golden::ping_seq1));

  char out[request_header_size];
  encode(request_header{.seq = 1}, out);
  CHECK(to_hex({out, sizeof out}) == to_hex(golden::ping_seq1));
}

TEST_CASE("the golden ping request decodes to a ping with seq 1", "[proto]") {
  request_reader r;
  auto f = read_one(golden::ping_seq1, r);
  CHECK(f.is_ping());
  CHECK(f.header.format == 0);
  CHECK(f.header.action_word == 0);
  CHECK_FALSE(f.header.has_string_action());
  CHECK(f.header.seq == 1);
  CHECK(f.header.client_id == 0);
  CHECK(f.header.msg_len == 0);
  CHECK(f.header.blob_len == 0);
  CHECK(f.action.empty());
  CHECK(f.msg.empty());
  CHECK(f.blob.empty());
}

TEST_CASE("a numeric-action request with msg and blob encodes to the golden bytes", "[proto]") {
  frame_writer w;
  w.add_request(2, 3u, as_span(golden::inode5), as_span("abc"));
  CHECK(to_hex(wire(w)) == to_hex(golden::action3_seq2));

  // The same frame with the msg encoded by the codec straight into the batch.
  frame_writer w2;
  auto mark = w2.begin_request(2, 3u);
  REQUIRE_FALSE(msgpack_codec{}.encode(inode_arg{5}, w2.body()));
  w2.end_request(mark, as_span("abc"));
  CHECK(to_hex(wire(w2)) == to_hex(golden::action3_seq2));

  char out[request_header_size];
  encode(request_header{.action_word = 3, .seq = 2, .msg_len = 8, .blob_len = 3}, out);
  CHECK(to_hex({out, sizeof out}) == to_hex(std::string_view(golden::action3_seq2).substr(0, 32)));
}

TEST_CASE("the golden numeric-action request decodes to action 3, its msg and its blob", "[proto]") {
  request_reader r;
  auto f = read_one(golden::action3_seq2, r);
  CHECK_FALSE(f.is_ping());
  CHECK_FALSE(f.header.has_string_action());
  CHECK(f.header.numeric_action() == 3);
  CHECK(f.header.action_len() == 0);
  CHECK(f.header.seq == 2);
  CHECK(f.header.msg_len == 8);
  CHECK(f.header.blob_len == 3);
  CHECK(f.header.body_len() == 11);
  CHECK(f.action.empty());
  CHECK(to_hex(as_view(f.msg)) == to_hex(golden::inode5));
  CHECK(as_view(f.blob) == "abc");

  inode_arg arg;
  REQUIRE_FALSE(msgpack_codec{}.decode(f.msg, arg));
  CHECK(arg.inode == 5);
}

TEST_CASE("a string-action request encodes to the golden bytes", "[proto]") {
  frame_writer w;
  w.add_request(7, "Calculator.add", as_span(from_hex("92 01 02")));
  CHECK(to_hex(wire(w)) == to_hex(golden::calculator_add_seq7));

  frame_writer w2;
  auto mark = w2.begin_request(7, "Calculator.add");
  REQUIRE_FALSE(msgpack_codec{}.encode_args(w2.body(), 1, 2));
  w2.end_request(mark);
  CHECK(to_hex(wire(w2)) == to_hex(golden::calculator_add_seq7));

  CHECK(action("Calculator.add").word() == (string_action_bit | 14u));
}

TEST_CASE("the golden string-action request decodes to Calculator.add and [1,2]", "[proto]") {
  request_reader r;
  auto f = read_one(golden::calculator_add_seq7, r);
  CHECK_FALSE(f.is_ping());
  CHECK(f.header.has_string_action());
  CHECK(f.header.action_word == 0x8000000eu);
  CHECK(f.header.action_len() == 14);
  CHECK(f.header.seq == 7);
  CHECK(f.header.msg_len == 3);
  CHECK(f.header.blob_len == 0);
  CHECK(f.header.body_len() == 17);
  CHECK(f.action == "Calculator.add");
  CHECK(to_hex(as_view(f.msg)) == "92 01 02");
  CHECK(f.blob.empty());

  std::tuple<std::int64_t, std::int64_t> args;
  REQUIRE_FALSE(msgpack_codec{}.decode_args(f.msg, args));
  CHECK(args == std::tuple<std::int64_t, std::int64_t>{1, 2});
}

TEST_CASE("the client id is written after the seq and read back", "[proto]") {
  frame_writer w;
  w.add_request(5, 9u, as_span("m"), {}, 0x0102030405060708u);
  auto bytes = wire(w);
  CHECK(to_hex(std::string_view(bytes).substr(16, 8)) == "08 07 06 05 04 03 02 01");
  request_reader r;
  auto f = read_one(bytes, r);
  CHECK(f.header.client_id == 0x0102030405060708u);
  CHECK(f.header.seq == 5);
}

// --- responses --------------------------------------------------------------------------

TEST_CASE("an empty OK response (a pong) encodes to the golden bytes", "[proto]") {
  frame_writer w;
  w.add_response(1, {});
  CHECK(to_hex(wire(w)) == to_hex(golden::pong_seq1));

  char out[response_header_size];
  encode(response_header{.seq = 1}, out);
  CHECK(to_hex({out, sizeof out}) == to_hex(golden::pong_seq1));
}

TEST_CASE("the golden pong decodes to an empty OK response with seq 1", "[proto]") {
  response_reader r;
  auto f = read_one(golden::pong_seq1, r);
  CHECK(f.ok());
  CHECK(f.header.flag == response_flag::ok);
  CHECK(f.header.seq == 1);
  CHECK(f.header.msg_len == 0);
  CHECK(f.header.blob_len == 0);
  CHECK(f.msg.empty());
  CHECK(f.blob.empty());
}

TEST_CASE("an OK response with msg 3 encodes to the golden bytes", "[proto]") {
  frame_writer w;
  w.add_response(7, as_span(from_hex("03")));
  CHECK(to_hex(wire(w)) == to_hex(golden::ok3_seq7));

  frame_writer w2;
  auto mark = w2.begin_response(7);
  REQUIRE_FALSE(msgpack_codec{}.encode(3, w2.body()));
  w2.end_response(mark);
  CHECK(to_hex(wire(w2)) == to_hex(golden::ok3_seq7));
}

TEST_CASE("the golden OK response decodes to seq 7 and msg 3", "[proto]") {
  response_reader r;
  auto f = read_one(golden::ok3_seq7, r);
  CHECK(f.ok());
  CHECK(f.header.seq == 7);
  CHECK(f.header.msg_len == 1);
  CHECK(f.header.blob_len == 0);
  CHECK(to_hex(as_view(f.msg)) == "03");
  CHECK(f.blob.empty());
  int value = 0;
  REQUIRE_FALSE(msgpack_codec{}.decode(f.msg, value));
  CHECK(value == 3);
}

TEST_CASE("an OK response with msg and blob encodes to the golden bytes", "[proto]") {
  frame_writer w;
  w.add_response(2, as_span(golden::ret_size3), as_span("abc"));
  CHECK(to_hex(wire(w)) == to_hex(golden::ok_ret_size_seq2));

  char out[response_header_size];
  encode(response_header{.msg_len = 11, .seq = 2, .blob_len = 3}, out);
  CHECK(to_hex({out, sizeof out}) == to_hex(std::string_view(golden::ok_ret_size_seq2).substr(0, 20)));
}

TEST_CASE("the golden OK response with a blob decodes to its msg and blob", "[proto]") {
  response_reader r;
  auto f = read_one(golden::ok_ret_size_seq2, r);
  CHECK(f.ok());
  CHECK(f.header.seq == 2);
  CHECK(f.header.msg_len == 11);
  CHECK(f.header.blob_len == 3);
  CHECK(f.header.body_len() == 14);
  CHECK(to_hex(as_view(f.msg)) == to_hex(golden::ret_size3));
  CHECK(as_view(f.blob) == "abc");
}

TEST_CASE("an error-code response encodes to the golden bytes", "[proto]") {
  frame_writer w;
  w.add_error_code(9, 13);
  CHECK(to_hex(wire(w)) == to_hex(golden::eacces_seq9));

  char out[response_header_size];
  encode(response_header{.flag = response_flag::error_code, .msg_len = 13, .seq = 9}, out);
  CHECK(to_hex({out, sizeof out}) == to_hex(golden::eacces_seq9));
}

TEST_CASE("the golden error-code response decodes to code 13 with no body", "[proto]") {
  response_reader r;
  auto f = read_one(golden::eacces_seq9, r);
  CHECK_FALSE(f.ok());
  CHECK(f.header.flag == response_flag::error_code);
  CHECK(f.header.error_code() == 13);
  CHECK(f.header.seq == 9);
  CHECK(f.header.body_len() == 0);
  CHECK(f.msg.empty());
  CHECK(f.blob.empty());
  CHECK(f.error_string().empty());
}

TEST_CASE("a framework error-string response encodes to the golden bytes", "[proto]") {
  frame_writer w;
  w.add_error_string(10, to_wire_string(errc::method_not_found));
  CHECK(to_hex(wire(w)) == to_hex(golden::method_notfound_seq10));
}

TEST_CASE("the golden framework error response decodes to rpc_method_notfound", "[proto]") {
  response_reader r;
  auto f = read_one(golden::method_notfound_seq10, r);
  CHECK_FALSE(f.ok());
  CHECK(f.header.flag == response_flag::error_string);
  CHECK(f.header.seq == 10);
  CHECK(f.header.msg_len == 0);
  CHECK(f.header.blob_len == 19);
  CHECK(f.msg.empty());
  CHECK(f.error_string() == "rpc_method_notfound");
  CHECK(from_wire_string(f.error_string()) == errc::method_not_found);
}

TEST_CASE("a user error-string response encodes to the golden bytes", "[proto]") {
  frame_writer w;
  w.add_error_string(11, "divide by zero");
  CHECK(to_hex(wire(w)) == to_hex(golden::divide_by_zero_seq11));
}

TEST_CASE("the golden user error response decodes to its string, not a framework error", "[proto]") {
  response_reader r;
  auto f = read_one(golden::divide_by_zero_seq11, r);
  CHECK(f.header.flag == response_flag::error_string);
  CHECK(f.header.seq == 11);
  CHECK(f.error_string() == "divide by zero");
  CHECK_FALSE(from_wire_string(f.error_string()));
}

TEST_CASE("all golden frames written into one batch read back in order", "[proto]") {
  frame_writer req;
  req.add_ping(1);
  req.add_request(2, 3u, as_span(golden::inode5), as_span("abc"));
  req.add_request(7, "Calculator.add", as_span(from_hex("92 01 02")));
  CHECK(wire(req) == golden::ping_seq1 + golden::action3_seq2 + golden::calculator_add_seq7);

  frame_writer resp;
  resp.add_response(1, {});
  resp.add_response(7, as_span(from_hex("03")));
  resp.add_response(2, as_span(golden::ret_size3), as_span("abc"));
  resp.add_error_code(9, 13);
  resp.add_error_string(10, "rpc_method_notfound");
  resp.add_error_string(11, "divide by zero");
  CHECK(wire(resp) == golden::pong_seq1 + golden::ok3_seq7 + golden::ok_ret_size_seq2 + golden::eacces_seq9 +
                          golden::method_notfound_seq10 + golden::divide_by_zero_seq11);
}

// --- header errors ----------------------------------------------------------------------

TEST_CASE("a header with a bad magic is rejected with bad_magic", "[proto]") {
  auto req = golden::ping_seq1;
  req[0] = 0x26;
  request_header rh;
  CHECK(decode(req.data(), rh) == errc::bad_magic);

  auto resp = golden::pong_seq1;
  resp[1] = 0x4e;
  response_header sh;
  CHECK(decode(resp.data(), sh) == errc::bad_magic);

  // Byte-swapped magic (a big-endian writer) is not accepted either.
  auto swapped = golden::pong_seq1;
  std::swap(swapped[0], swapped[1]);
  CHECK(decode(swapped.data(), sh) == errc::bad_magic);
}

TEST_CASE("a header with an unknown version is rejected with bad_version", "[proto]") {
  for (char v : {'\x00', '\x02', '\xff'}) {
    auto req = golden::action3_seq2;
    req[2] = v;
    request_header rh;
    CHECK(decode(req.data(), rh) == errc::bad_version);

    auto resp = golden::ok3_seq7;
    resp[2] = v;
    response_header sh;
    CHECK(decode(resp.data(), sh) == errc::bad_version);
  }
}

TEST_CASE("a response with an unknown flag is rejected with bad_frame", "[proto]") {
  for (char flag : {'\x03', '\x04', '\x80', '\xff'}) {
    auto resp = golden::pong_seq1;
    resp[3] = flag;
    response_header sh;
    CHECK(decode(resp.data(), sh) == errc::bad_frame);
  }
}

TEST_CASE("a response with a negative i32 blob length is rejected with bad_frame", "[proto]") {
  auto resp = golden::pong_seq1;
  resp[19] = '\x80';  // blob_len = 0x80000000 = i32 min
  response_header sh;
  CHECK(decode(resp.data(), sh) == errc::bad_frame);

  resp = golden::method_notfound_seq10;
  resp[16] = resp[17] = resp[18] = resp[19] = '\xff';  // -1
  CHECK(decode(resp.data(), sh) == errc::bad_frame);

  resp = golden::pong_seq1;
  resp[16] = resp[17] = resp[18] = '\xff';
  resp[19] = '\x7f';  // i32 max is still a valid length
  CHECK_FALSE(decode(resp.data(), sh));
  CHECK(sh.blob_len == 0x7fffffffu);
}

TEST_CASE("a request with a blob length above 2^31-1 is rejected with bad_frame", "[proto]") {
  auto req = golden::ping_seq1;
  req[31] = '\x80';
  request_header rh;
  CHECK(decode(req.data(), rh) == errc::bad_frame);
}

TEST_CASE("the format byte is carried but not checked", "[proto]") {
  auto req = golden::ping_seq1;
  req[3] = '\x05';
  request_header rh;
  REQUIRE_FALSE(decode(req.data(), rh));
  CHECK(rh.format == 5);
  CHECK(rh.is_ping());
}
