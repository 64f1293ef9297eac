#include <occams_rpc/transport/address.hpp>

#include <catch2/catch.hpp>

using namespace occams_rpc;

TEST_CASE("host:port, [v6]:port, /path and unix:/path addresses parse", "[transport]") {
  CHECK(parse_address("127.0.0.1:8080") == address::tcp("127.0.0.1", 8080));
  CHECK(parse_address("localhost:0") == address::tcp("localhost", 0));
  CHECK(parse_address("[::1]:9") == address::tcp("::1", 9));
  CHECK(parse_address("/tmp/x.sock") == address::unix_socket("/tmp/x.sock"));
  CHECK(parse_address("unix:/tmp/y.sock") == address::unix_socket("/tmp/y.sock"));
}

TEST_CASE("addresses print back in a form that parses to the same address", "[transport]") {
  for (const char* text : {"127.0.0.1:8080", "[::1]:9", "unix:/tmp/y.sock"}) {
    auto a = parse_address(text);
    CHECK(a.to_string() == text);
    CHECK(parse_address(a.to_string()) == a);
  }
}

TEST_CASE("malformed addresses are rejected with invalid_address", "[transport]") {
  for (const char* text : {"", "nohostport", "host:", ":80", "host:65536", "host:12x", "::1:80", "[::1]80",
                           "[::1", "unix:"}) {
    address a;
    INFO(text);
    CHECK(parse_address(text, a) == make_error_code(errc::invalid_address));
  }
  CHECK_THROWS_AS(parse_address("bad"), std::system_error);
}
