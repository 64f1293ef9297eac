#include <occams_rpc/codec/bytes.hpp>
#include <occams_rpc/codec/msgpack_codec.hpp>

#include "unit/support/hex.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <tuple>
#include <vector>

using namespace occams_rpc;
using occams_rpc::test::to_hex;

namespace {
struct with_bytes {
  std::string name;
  bytes data;
  OCCAMS_RPC_FIELDS(name, data)
};

std::string encoded(const auto& v) {
  byte_buffer out;
  REQUIRE_FALSE(msgpack_codec{}.encode(v, out));
  return std::string(out.view());
}
}  // namespace

TEST_CASE("bytes views what it is made from and owns only what it is given", "[codec]") {
  std::string s = "hello";
  bytes view(s);
  CHECK(view.data() == s.data());
  CHECK(view.size() == 5);
  CHECK_FALSE(view.owns());
  bytes literal("abc");  // a string literal without its terminating NUL
  CHECK(literal.size() == 3);
  bytes owned = bytes::copy_of(view);
  CHECK(owned.owns());
  CHECK(owned.data() != s.data());
  CHECK(owned == view);
  bytes moved = std::move(owned);  // the heap memory moves: the view stays valid
  CHECK(moved.view() == "hello");
  bytes copy = moved;  // a copy of an owner owns its own copy
  CHECK(copy.owns());
  CHECK(copy.data() != moved.data());
  CHECK(copy == moved);
  bytes copy_of_view = view;  // a copy of a view views the same bytes
  CHECK(copy_of_view.data() == s.data());
}

TEST_CASE("bytes travel as msgpack bin, like a byte vector", "[codec]") {
  std::string s = "abc";
  CHECK(to_hex(encoded(bytes(s))) == "c4 03 61 62 63");
  CHECK(encoded(bytes(s)) == encoded(std::vector<char>(s.begin(), s.end())));
}

TEST_CASE("bytes decoded as a value or an argument view the input; inside a struct they own a copy", "[codec]") {
  msgpack_codec codec;
  std::string wire = encoded(bytes(std::string_view("payload")));
  bytes value;
  REQUIRE_FALSE(codec.decode(std::span<const char>(wire.data(), wire.size()), value));
  CHECK(value.view() == "payload");
  CHECK_FALSE(value.owns());
  CHECK(value.data() == wire.data() + 2);  // no copy: it points into the input

  std::string args = encoded(std::make_tuple(bytes(std::string_view("ab")), 7));
  std::tuple<bytes, int> decoded;
  REQUIRE_FALSE(codec.decode_args(std::span<const char>(args.data(), args.size()), decoded));
  CHECK(std::get<0>(decoded).view() == "ab");
  CHECK(std::get<0>(decoded).data() >= args.data());
  CHECK(std::get<0>(decoded).data() < args.data() + args.size());
  CHECK(std::get<1>(decoded) == 7);

  std::string nested = encoded(with_bytes{"n", bytes(std::string_view("inner"))});
  with_bytes out;
  REQUIRE_FALSE(codec.decode(std::span<const char>(nested.data(), nested.size()), out));
  nested.assign(nested.size(), '\0');  // the input goes away: the struct's bytes must not care
  CHECK(out.data.view() == "inner");
  CHECK(out.data.owns());

  // A str decodes too (as into a byte vector); anything else is refused.
  std::string text = encoded(std::string("txt"));
  REQUIRE_FALSE(codec.decode(std::span<const char>(text.data(), text.size()), value));
  CHECK(value.view() == "txt");
  std::string number = encoded(5);
  CHECK(codec.decode(std::span<const char>(number.data(), number.size()), value) == make_error_code(errc::decode));
  CHECK(msgpack_codec::decode_general(std::span<const char>(number.data(), number.size()), value) ==
        make_error_code(errc::decode));
}

TEST_CASE("the direct bin encoder writes what msgpack-c's packer writes at every header size", "[codec]") {
  for (std::size_t n : {0u, 1u, 31u, 32u, 255u, 256u, 65535u, 65536u, 70000u}) {
    std::vector<char> v(n, 'z');
    if (n) v.front() = 'a';
    msgpack::sbuffer reference;
    msgpack::pack(reference, v);
    INFO("size " << n);
    CHECK(encoded(bytes(v)) == std::string(reference.data(), reference.size()));
    CHECK(encoded(std::span<const char>(v)) == std::string(reference.data(), reference.size()));
  }
}
