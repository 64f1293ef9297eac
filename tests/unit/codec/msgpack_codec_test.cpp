#include <occams_rpc/codec/msgpack_codec.hpp>

#include "unit/support/hex.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

using namespace occams_rpc;
using occams_rpc::test::as_span;
using occams_rpc::test::from_hex;
using occams_rpc::test::to_hex;

namespace {

struct inode_arg {
  std::uint64_t inode = 0;
  OCCAMS_RPC_FIELDS(inode)
};

struct point {
  std::int32_t x = 0;
  std::int32_t y = 0;
  OCCAMS_RPC_FIELDS(x, y)
  bool operator==(const point&) const = default;
};

struct file_attr {
  std::uint64_t inode = 0;
  std::string name;
  std::vector<char> data;
  std::optional<std::uint32_t> mode;
  std::vector<point> points;
  std::map<std::string, std::int64_t> xattrs;
  bool dir = false;
  double score = 0;
  OCCAMS_RPC_FIELDS(inode, name, data, mode, points, xattrs, dir, score)
  bool operator==(const file_attr&) const = default;
};

struct read_ret {
  std::uint32_t ret_size = 0;
  OCCAMS_RPC_FIELDS(ret_size)
};

// A value whose packing fails half-way.
struct throws_on_pack {};

const msgpack_codec codec;

std::string encoded(const auto& value) {
  byte_buffer out;
  auto ec = codec.encode(value, out);
  REQUIRE_FALSE(ec);
  return std::string(out.view());
}

template <class T>
T round_trip(const T& value) {
  auto bytes = encoded(value);
  T out{};
  auto ec = codec.decode(as_span(bytes), out);
  REQUIRE_FALSE(ec);
  return out;
}

// Decodes `hex` as T and returns the error (checking that nothing is thrown).
template <class T>
std::error_code decode_error(std::string_view hex) {
  auto bytes = from_hex(hex);
  T out{};
  std::error_code ec;
  CHECK_NOTHROW(ec = codec.decode(as_span(bytes), out));
  return ec;
}

}  // namespace

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
namespace adaptor {
template <>
struct pack<throws_on_pack> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const throws_on_pack&) const {
    o.pack_array(3);
    o.pack_int(1);
    throw std::runtime_error("cannot pack");
  }
};
}  // namespace adaptor
}
}  // namespace msgpack

static_assert(codec_for<msgpack_codec, int>);
static_assert(codec_for<msgpack_codec, std::string>);
static_assert(codec_for<msgpack_codec, point>);
static_assert(codec_for<msgpack_codec, std::vector<std::string>>);

TEST_CASE("integers round-trip through msgpack in their smallest encoding", "[codec]") {
  CHECK(to_hex(encoded(0)) == "00");
  CHECK(to_hex(encoded(5)) == "05");
  CHECK(to_hex(encoded(127)) == "7f");
  CHECK(to_hex(encoded(128)) == "cc 80");
  CHECK(to_hex(encoded(-1)) == "ff");
  CHECK(to_hex(encoded(-32)) == "e0");
  CHECK(to_hex(encoded(-33)) == "d0 df");
  CHECK(to_hex(encoded(65535)) == "cd ff ff");
  CHECK(to_hex(encoded(std::uint64_t{1} << 32)) == "cf 00 00 00 01 00 00 00 00");

  CHECK(round_trip(0) == 0);
  CHECK(round_trip(-1) == -1);
  CHECK(round_trip(std::int8_t{-128}) == -128);
  CHECK(round_trip(std::uint16_t{65535}) == 65535);
  CHECK(round_trip(std::numeric_limits<std::int64_t>::min()) == std::numeric_limits<std::int64_t>::min());
  CHECK(round_trip(std::numeric_limits<std::int64_t>::max()) == std::numeric_limits<std::int64_t>::max());
  CHECK(round_trip(std::numeric_limits<std::uint64_t>::max()) == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("strings round-trip as msgpack str", "[codec]") {
  CHECK(to_hex(encoded(std::string())) == "a0");
  CHECK(to_hex(encoded(std::string("hi"))) == "a2 68 69");
  CHECK(to_hex(encoded(std::string(40, 'x')).substr(0, 2)) == "d9 28");
  CHECK(round_trip(std::string("Calculator.add")) == "Calculator.add");
  CHECK(round_trip(std::string("h\xc3\xa9llo \xe2\x9c\x93")) == "h\xc3\xa9llo \xe2\x9c\x93");
  std::string with_nul("a\0b", 3);
  CHECK(round_trip(with_nul) == with_nul);
  std::string big(70'000, 'q');
  CHECK(round_trip(big) == big);
}

TEST_CASE("bools and doubles round-trip", "[codec]") {
  CHECK(to_hex(encoded(true)) == "c3");
  CHECK(to_hex(encoded(false)) == "c2");
  CHECK(round_trip(true) == true);
  CHECK(round_trip(false) == false);
  CHECK(to_hex(encoded(1.5)) == "cb 3f f8 00 00 00 00 00 00");
  CHECK(round_trip(1.5) == 1.5);
  CHECK(round_trip(-0.1) == -0.1);
  CHECK(round_trip(std::numeric_limits<double>::max()) == std::numeric_limits<double>::max());
  CHECK(round_trip(1.5f) == 1.5f);
}

TEST_CASE("floats always travel as msgpack floats, as rmp-serde writes them", "[codec]") {
  // msgpack-c alone would write 2.0 as the integer 02, and 2^64 through undefined behaviour.
  CHECK(to_hex(encoded(2.0)) == "cb 40 00 00 00 00 00 00 00");
  CHECK(to_hex(encoded(18446744073709551616.0)) == "cb 43 f0 00 00 00 00 00 00");
  CHECK(round_trip(18446744073709551616.0) == 18446744073709551616.0);
  CHECK(to_hex(encoded(2.0f)) == "ca 40 00 00 00");
  CHECK(round_trip(-9223372036854775808.0) == -9223372036854775808.0);
  // An integer on the wire still decodes into a double (a peer that writes ints for floats).
  double d = 0;
  CHECK_FALSE(msgpack_codec{}.decode(std::span<const char>("\x07", 1), d));
  CHECK(d == 7.0);
}

TEST_CASE("vectors and maps round-trip as msgpack arrays and maps", "[codec]") {
  CHECK(to_hex(encoded(std::vector<int>{1, 2, 3})) == "93 01 02 03");
  CHECK(round_trip(std::vector<int>{}) == std::vector<int>{});
  CHECK(round_trip(std::vector<std::int64_t>{-5, 0, 1 << 20}) == std::vector<std::int64_t>{-5, 0, 1 << 20});
  std::vector<std::string> names{"a", "", "long name"};
  CHECK(round_trip(names) == names);

  std::map<std::string, std::int64_t> m{{"a", 1}, {"b", -2}};
  CHECK(to_hex(encoded(m)) == "82 a1 61 01 a1 62 fe");
  CHECK(round_trip(m) == m);
  std::unordered_map<std::string, std::vector<int>> um{{"x", {1}}, {"y", {}}};
  CHECK(round_trip(um) == um);
  std::vector<std::vector<int>> nested{{1, 2}, {}, {3}};
  CHECK(round_trip(nested) == nested);
}

TEST_CASE("optional values travel as the value or as nil", "[codec]") {
  CHECK(to_hex(encoded(std::optional<int>{})) == "c0");
  CHECK(to_hex(encoded(std::optional<int>{5})) == "05");
  CHECK(round_trip(std::optional<int>{}) == std::nullopt);
  CHECK(round_trip(std::optional<int>{5}) == 5);
  CHECK(round_trip(std::optional<std::string>{"s"}) == "s");
  std::optional<int> out = 9;
  REQUIRE_FALSE(codec.decode(as_span(from_hex("c0")), out));
  CHECK_FALSE(out);
}

TEST_CASE("byte vectors travel as msgpack bin and strings as str", "[codec]") {
  std::vector<char> bytes{'\x00', '\xff', 'a'};
  auto wire = encoded(bytes);
  CHECK(static_cast<unsigned char>(wire[0]) == 0xc4);
  CHECK(to_hex(wire) == "c4 03 00 ff 61");
  CHECK(round_trip(bytes) == bytes);

  std::vector<unsigned char> ubytes{1, 2, 255};
  CHECK(to_hex(encoded(ubytes)) == "c4 03 01 02 ff");
  CHECK(round_trip(ubytes) == ubytes);

  std::vector<char> big(300, 'z');
  CHECK(to_hex(encoded(big).substr(0, 3)) == "c5 01 2c");  // bin 16
  CHECK(round_trip(big) == big);

  CHECK(static_cast<unsigned char>(encoded(std::string("abc"))[0]) == 0xa3);  // str, not bin
}

TEST_CASE("a struct with OCCAMS_RPC_FIELDS encodes as a map keyed by field name", "[codec]") {
  CHECK(to_hex(encoded(inode_arg{5})) == "81 a5 69 6e 6f 64 65 05");
  CHECK(to_hex(encoded(point{1, -2})) == "82 a1 78 01 a1 79 fe");
  inode_arg in;
  REQUIRE_FALSE(codec.decode(as_span(from_hex("81 a5 69 6e 6f 64 65 05")), in));
  CHECK(in.inode == 5);
  // Rust's {"ret_size":3} from PROTOCOL.md.
  read_ret r;
  REQUIRE_FALSE(codec.decode(as_span(from_hex("81 a8 72 65 74 5f 73 69 7a 65 03")), r));
  CHECK(r.ret_size == 3);
}

TEST_CASE("a struct with every kind of field round-trips", "[codec]") {
  file_attr a{.inode = 42,
              .name = "file.txt",
              .data = {'\x01', '\x00', '\x7f'},
              .mode = 0644,
              .points = {{1, 2}, {-3, 4}},
              .xattrs = {{"user.a", 1}, {"user.b", -1}},
              .dir = true,
              .score = 0.25};
  CHECK(round_trip(a) == a);
  file_attr empty;
  CHECK(round_trip(empty) == empty);
}

TEST_CASE("decoding a struct keeps defaults for missing keys and ignores unknown keys", "[codec]") {
  // {"y": 7, "z": 1}: x is missing, z unknown.
  point p{100, 100};
  REQUIRE_FALSE(codec.decode(as_span(from_hex("82 a1 79 07 a1 7a 01")), p));
  CHECK(p.x == 100);
  CHECK(p.y == 7);
  // Keys in any order.
  point q;
  REQUIRE_FALSE(codec.decode(as_span(from_hex("82 a1 79 02 a1 78 01")), q));
  CHECK(q == point{1, 2});
}

TEST_CASE("encode_args sends no argument as nil, one as itself and several as one array", "[codec]") {
  byte_buffer none;
  REQUIRE_FALSE(codec.encode_args(none));
  CHECK(to_hex(none.view()) == "c0");

  byte_buffer one;
  REQUIRE_FALSE(codec.encode_args(one, 5));
  CHECK(to_hex(one.view()) == "05");

  byte_buffer one_struct;
  REQUIRE_FALSE(codec.encode_args(one_struct, inode_arg{5}));
  CHECK(to_hex(one_struct.view()) == "81 a5 69 6e 6f 64 65 05");

  byte_buffer two;
  REQUIRE_FALSE(codec.encode_args(two, 1, 2));
  CHECK(to_hex(two.view()) == "92 01 02");

  byte_buffer three;
  REQUIRE_FALSE(codec.encode_args(three, std::string("a"), true, std::vector<int>{7}));
  CHECK(to_hex(three.view()) == "93 a1 61 c3 91 07");
}

TEST_CASE("decode_args is the inverse of encode_args", "[codec]") {
  std::tuple<> none;
  CHECK_FALSE(codec.decode_args(as_span(from_hex("c0")), none));

  std::tuple<int> one;
  REQUIRE_FALSE(codec.decode_args(as_span(from_hex("05")), one));
  CHECK(std::get<0>(one) == 5);

  std::tuple<inode_arg> one_struct;
  REQUIRE_FALSE(codec.decode_args(as_span(from_hex("81 a5 69 6e 6f 64 65 05")), one_struct));
  CHECK(std::get<0>(one_struct).inode == 5);

  std::tuple<std::int64_t, std::int64_t> two;
  REQUIRE_FALSE(codec.decode_args(as_span(from_hex("92 01 02")), two));
  CHECK(two == std::tuple<std::int64_t, std::int64_t>{1, 2});

  byte_buffer buf;
  REQUIRE_FALSE(codec.encode_args(buf, std::string("x"), point{3, 4}, false));
  std::tuple<std::string, point, bool> three{"", {}, true};
  REQUIRE_FALSE(codec.decode_args(buf.span(), three));
  CHECK(three == std::tuple<std::string, point, bool>{"x", {3, 4}, false});
}

TEST_CASE("decode_args rejects the wrong kind or number of arguments", "[codec]") {
  std::tuple<> none;
  CHECK(codec.decode_args(as_span(from_hex("05")), none) == errc::decode);
  std::tuple<int> one;
  CHECK(codec.decode_args(as_span(from_hex("a1 61")), one) == errc::decode);
  std::tuple<std::int64_t, std::int64_t> two;
  CHECK(codec.decode_args(as_span(from_hex("05")), two) == errc::decode);
  // An argument missing or one too many is an undecodable call, as on the Rust side; it must
  // not leave the missing argument at a default value.
  CHECK(codec.decode_args(as_span(from_hex("91 01")), two) == errc::decode);
  CHECK(codec.decode_args(as_span(from_hex("93 01 02 03")), two) == errc::decode);
  CHECK(codec.decode_args(as_span(from_hex("90")), two) == errc::decode);
}

TEST_CASE("unit travels as nil", "[codec]") {
  CHECK(to_hex(encoded(unit{})) == "c0");
  unit u;
  CHECK_FALSE(codec.decode(as_span(from_hex("c0")), u));
  CHECK(codec.decode(as_span(from_hex("00")), u) == errc::decode);
  CHECK(unit{} == unit{});
}

TEST_CASE("encode appends to what the buffer already holds", "[codec]") {
  byte_buffer out;
  out.append(std::string_view("HDR"));
  REQUIRE_FALSE(codec.encode(std::vector<int>{1}, out));
  REQUIRE_FALSE(codec.encode(2, out));
  CHECK(to_hex(out.view()) == "48 44 52 91 01 02");
}

TEST_CASE("a failed encode returns errc::encode and leaves the buffer as it was", "[codec]") {
  byte_buffer out;
  out.append(std::string_view("keep"));
  std::error_code ec;
  CHECK_NOTHROW(ec = codec.encode(throws_on_pack{}, out));
  CHECK(ec == errc::encode);
  CHECK(out.view() == "keep");
  std::vector<throws_on_pack> v(2);
  CHECK(codec.encode(v, out) == errc::encode);
  CHECK(out.view() == "keep");
}

TEST_CASE("decoding malformed or truncated input returns errc::decode and never throws", "[codec]") {
  SECTION("empty input") {
    CHECK(decode_error<int>("") == errc::decode);
    CHECK(decode_error<std::string>("") == errc::decode);
  }
  SECTION("forged container lengths with no elements") {
    CHECK(decode_error<std::vector<int>>("dd ff ff ff ff") == errc::decode);
    CHECK(decode_error<std::vector<std::string>>("dd ff ff ff ff") == errc::decode);
    CHECK(decode_error<std::tuple<std::int64_t, std::int64_t>>("dd ff ff ff ff") == errc::decode);
    CHECK(decode_error<std::vector<int>>("dc ff ff") == errc::decode);
    CHECK(decode_error<std::map<std::string, std::int64_t>>("df ff ff ff ff") == errc::decode);
    CHECK(decode_error<std::map<std::string, std::int64_t>>("de ff ff 01") == errc::decode);
    CHECK(decode_error<point>("df 7f ff ff ff") == errc::decode);
    CHECK(decode_error<std::vector<char>>("c6 ff ff ff ff") == errc::decode);
    CHECK(decode_error<std::string>("db ff ff ff ff") == errc::decode);
    CHECK(decode_error<std::vector<int>>("dd 00 00 00 03 01 02") == errc::decode);  // one short
  }
  SECTION("truncated strings and numbers") {
    CHECK(decode_error<std::string>("a5 69 6e") == errc::decode);
    CHECK(decode_error<std::string>("d9") == errc::decode);
    CHECK(decode_error<std::string>("d9 05 61") == errc::decode);
    CHECK(decode_error<std::int64_t>("cf 00 00") == errc::decode);
    CHECK(decode_error<double>("cb 3f f8") == errc::decode);
    CHECK(decode_error<inode_arg>("81 a5 69 6e 6f") == errc::decode);
    CHECK(decode_error<inode_arg>("81 a5 69 6e 6f 64 65") == errc::decode);
  }
  SECTION("wrong types") {
    CHECK(decode_error<int>("a1 61") == errc::decode);
    CHECK(decode_error<std::string>("05") == errc::decode);
    CHECK(decode_error<bool>("01") == errc::decode);
    CHECK(decode_error<std::vector<int>>("81 a1 61 01") == errc::decode);
    CHECK(decode_error<inode_arg>("91 05") == errc::decode);
    CHECK(decode_error<inode_arg>("81 a5 69 6e 6f 64 65 a1 61") == errc::decode);  // inode is a str
    CHECK(decode_error<inode_arg>("81 01 05") == errc::decode);                    // non-string key
    CHECK(decode_error<std::vector<std::string>>("92 a1 61 01") == errc::decode);
    CHECK(decode_error<std::map<std::string, std::int64_t>>("81 a1 61 a1 62") == errc::decode);
    CHECK(decode_error<std::int8_t>("cd 01 00") == errc::decode);  // 256 does not fit
    CHECK(decode_error<std::uint32_t>("ff") == errc::decode);      // -1 is not unsigned
  }
  SECTION("reserved byte and deep nesting") {
    CHECK(decode_error<int>("c1") == errc::decode);
    std::string deep(200'000, '\x91');
    deep.push_back('\x01');
    std::vector<int> out;
    std::error_code ec;
    CHECK_NOTHROW(ec = codec.decode(as_span(deep), out));
    CHECK(ec == errc::decode);
  }
}

TEST_CASE("decoding random bytes as many types never throws", "[codec]") {
  std::uint64_t state = 0x9e3779b97f4a7c15u;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int i = 0; i < 3000; ++i) {
    std::string bytes(next() % 24, '\0');
    for (auto& c : bytes) c = static_cast<char>(next());
    auto s = as_span(bytes);
    file_attr fa;
    std::vector<std::string> vs;
    std::map<std::string, std::int64_t> m;
    std::tuple<std::int64_t, std::int64_t> t;
    std::string str;
    std::optional<int> o;
    bool all_ok = true;
    try {
      (void)codec.decode(s, fa);
      (void)codec.decode(s, vs);
      (void)codec.decode(s, m);
      (void)codec.decode(s, t);
      (void)codec.decode(s, str);
      (void)codec.decode(s, o);
      (void)codec.decode_args(s, t);
    } catch (...) {
      all_ok = false;
    }
    REQUIRE(all_ok);
  }
}

namespace {
/// Both decoders (the direct one and msgpack-c's) on `bytes`: same verdict, same value.
template <class T>
bool decoders_agree(std::span<const char> bytes) {
  T fast{}, general{};
  auto a = msgpack_codec{}.decode(bytes, fast);
  auto b = msgpack_codec::decode_general(bytes, general);
  if (static_cast<bool>(a) != static_cast<bool>(b)) return false;
  if constexpr (std::is_floating_point_v<T>) return a || std::memcmp(&fast, &general, sizeof fast) == 0;
  else return a || fast == general;
}
template <class T>
int disagreements_on_short_inputs() {
  int bad = 0;
  char buf[3];
  for (int len = 1; len <= 3; ++len)
    for (int v = 0; v < (len == 1 ? 256 : len == 2 ? 65536 : 65536); ++v) {
      buf[0] = static_cast<char>(v & 0xff);
      buf[1] = static_cast<char>((v >> 8) & 0xff);
      buf[2] = static_cast<char>(len == 3 ? 0xff - (v & 0xff) : 0);
      bad += !decoders_agree<T>(std::span<const char>(buf, static_cast<std::size_t>(len)));
    }
  return bad;
}
}  // namespace

TEST_CASE("the direct decoder agrees with msgpack-c on every input of up to two bytes and many of three", "[codec]") {
  CHECK(disagreements_on_short_inputs<std::int8_t>() == 0);
  CHECK(disagreements_on_short_inputs<std::uint8_t>() == 0);
  CHECK(disagreements_on_short_inputs<std::int16_t>() == 0);
  CHECK(disagreements_on_short_inputs<std::uint64_t>() == 0);
  CHECK(disagreements_on_short_inputs<std::int64_t>() == 0);
  CHECK(disagreements_on_short_inputs<bool>() == 0);
  CHECK(disagreements_on_short_inputs<double>() == 0);
  CHECK(disagreements_on_short_inputs<std::string>() == 0);
  CHECK(disagreements_on_short_inputs<std::vector<char>>() == 0);
  CHECK(disagreements_on_short_inputs<unit>() == 0);
}

TEST_CASE("the direct decoder checks integer ranges like msgpack-c", "[codec]") {
  CHECK(decode_error<std::uint8_t>("cd 01 00") == errc::decode);      // 256
  CHECK(decode_error<std::int8_t>("d1 ff 7f") == errc::decode);       // -129
  CHECK(decode_error<std::uint64_t>("ff") == errc::decode);           // -1
  CHECK(decode_error<std::int64_t>("cf 80 00 00 00 00 00 00 00") == errc::decode);  // 2^63
  std::int64_t v = 0;
  CHECK_FALSE(msgpack_codec{}.decode(std::span<const char>("\xd0\x05", 2), v));  // int8 5 is positive
  CHECK(v == 5);
  double d = 0;
  CHECK_FALSE(msgpack_codec{}.decode(std::span<const char>("\xca\x3f\xc0\x00\x00", 5), d));  // float32 1.5
  CHECK(d == 1.5);
  std::tuple<std::int64_t, std::int64_t> args;
  CHECK(msgpack_codec{}.decode_args(std::span<const char>("\x93\x01\x02\x03", 4), args) == errc::decode);
  CHECK_FALSE(msgpack_codec{}.decode_args(std::span<const char>("\x92\x01\x02", 3), args));
  CHECK(args == std::tuple<std::int64_t, std::int64_t>{1, 2});
}
