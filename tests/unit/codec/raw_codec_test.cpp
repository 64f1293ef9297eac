#include <occams_rpc/codec/raw_codec.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace occams_rpc;

static_assert(codec_for<raw_codec, std::string>);
static_assert(codec_for<raw_codec, std::vector<char>>);
static_assert(codec_for<raw_codec, std::vector<unsigned char>>);
static_assert(!codec_for<raw_codec, int>);
static_assert(!codec_for<raw_codec, std::vector<int>>);

TEST_CASE("raw_codec sends the bytes themselves and reads them back", "[codec]") {
  raw_codec codec;
  const std::string binary("\x00\xff\x01 raw\n", 8);

  byte_buffer out;
  REQUIRE_FALSE(codec.encode(binary, out));
  CHECK(out.view() == binary);

  std::string s;
  REQUIRE_FALSE(codec.decode(out.span(), s));
  CHECK(s == binary);

  std::vector<unsigned char> u;
  REQUIRE_FALSE(codec.decode(out.span(), u));
  CHECK(u == std::vector<unsigned char>(binary.begin(), binary.end()));

  std::vector<char> c;
  REQUIRE_FALSE(codec.decode(out.span(), c));
  CHECK(std::string(c.begin(), c.end()) == binary);
}

TEST_CASE("raw_codec appends to the buffer and decodes an empty msg as an empty value", "[codec]") {
  raw_codec codec;
  byte_buffer out;
  out.append(std::string_view("a"));
  REQUIRE_FALSE(codec.encode(std::vector<unsigned char>{'b', 'c'}, out));
  REQUIRE_FALSE(codec.encode(std::string(), out));
  CHECK(out.view() == "abc");

  std::string s = "previous";
  REQUIRE_FALSE(codec.decode({}, s));
  CHECK(s.empty());
}

TEST_CASE("raw_codec round-trips a large payload unchanged", "[codec]") {
  raw_codec codec;
  std::vector<unsigned char> big(1 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<unsigned char>(i * 31 + 7);
  byte_buffer out;
  REQUIRE_FALSE(codec.encode(big, out));
  std::vector<unsigned char> back;
  REQUIRE_FALSE(codec.decode(out.span(), back));
  CHECK(back == big);
}
