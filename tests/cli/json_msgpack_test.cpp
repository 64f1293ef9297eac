// The occams tool's JSON <-> msgpack conversion (docs/cli.md, "JSON and msgpack").
#include "json_msgpack.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

using namespace occams_cli;

namespace {

std::string hex(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    static constexpr char digits[] = "0123456789abcdef";
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

template <class T>
std::string packed(const T& v) {
  msgpack::sbuffer b;
  msgpack::pack(b, v);
  return std::string(b.data(), b.size());
}

}  // namespace

TEST_CASE("JSON arguments become the msgpack the Rust side expects", "[cli]") {
  CHECK(hex(json_to_msgpack("[1,2]")) == "920102");  // PROTOCOL.md's golden Calculator.add msg
  CHECK(hex(json_to_msgpack("null")) == "c0");
  CHECK(hex(json_to_msgpack(" -1 ")) == "ff");
  CHECK(hex(json_to_msgpack("300")) == "cd012c");
  CHECK(hex(json_to_msgpack("18446744073709551615")) == "cfffffffffffffffff");
  CHECK(hex(json_to_msgpack("true")) == "c3");
  CHECK(hex(json_to_msgpack("\"hi\"")) == "a26869");
  CHECK(hex(json_to_msgpack("{\"inode\":5}")) == "81a5696e6f646505");  // PROTOCOL.md's golden msg
  CHECK(json_to_msgpack("1.5") == packed(1.5));
  CHECK((json_to_msgpack("[\"a\",[true,null]]") == packed(std::make_tuple(std::string("a"), std::make_tuple(true, msgpack::type::nil_t{})))));
}

TEST_CASE("bin, ext, non-string map keys, non-UTF-8 strings and non-finite floats have JSON forms both ways", "[cli]") {
  CHECK(hex(json_to_msgpack("{\"$bin\":\"YWJj\"}")) == "c403616263");
  CHECK(msgpack_to_json(packed(std::vector<char>{'a', 'b', 'c'})) == "{\"$bin\":\"YWJj\"}");
  CHECK(hex(json_to_msgpack("{\"$ext\":[-3,\"AQI=\"]}")) == "d5fd0102");
  CHECK(msgpack_to_json(json_to_msgpack("{\"$ext\":[-3,\"AQI=\"]}")) == "{\"$ext\":[-3,\"AQI=\"]}");
  std::map<std::int64_t, std::string> m{{1, "one"}, {-2, "minus two"}};
  CHECK(json_to_msgpack("{\"$map\":[[-2,\"minus two\"],[1,\"one\"]]}") == packed(m));
  CHECK(msgpack_to_json(packed(m)) == "{\"$map\":[[-2,\"minus two\"],[1,\"one\"]]}");
  std::string bad_utf8 = "\xa2\xff\xfe";  // a str of two bytes that are not UTF-8
  CHECK(msgpack_to_json(bad_utf8) == "{\"$str\":\"//4=\"}");
  CHECK(json_to_msgpack("{\"$str\":\"//4=\"}") == bad_utf8);
  CHECK(msgpack_to_json(packed(1.0 / 0.0)) == "{\"$float\":\"inf\"}");
  CHECK(json_to_msgpack("{\"$float\":\"-inf\"}") == packed(-1.0 / 0.0));
  // A one-key map whose key starts with '$' would read back as a form: it prints as $map.
  std::map<std::string, int> dollar{{"$bin", 1}};
  CHECK(msgpack_to_json(packed(dollar)) == "{\"$map\":[[\"$bin\",1]]}");
  CHECK(json_to_msgpack(msgpack_to_json(packed(dollar))) == packed(dollar));
}

TEST_CASE("msgpack answers print as one line of JSON", "[cli]") {
  CHECK(msgpack_to_json(std::string("\x03", 1)) == "3");
  CHECK(msgpack_to_json(packed(std::int64_t{-5})) == "-5");
  CHECK(msgpack_to_json(packed(std::string("divide by zero"))) == "\"divide by zero\"");
  CHECK(msgpack_to_json(packed(std::map<std::string, int>{{"a", 1}, {"b", 2}})) == "{\"a\":1,\"b\":2}");
  CHECK(msgpack_to_json(packed(std::vector<int>{1, 2, 3})) == "[1,2,3]");
  CHECK(msgpack_to_json(std::string("\xc0", 1)) == "null");
  // Round trips through JSON keep the bytes.
  for (const char* j : {"[1,-2,{\"k\":[\"v\",null,false]}]", "{\"$bin\":\"\"}", "2.5E-1", "{}", "[]"})
    CHECK(msgpack_to_json(json_to_msgpack(j)) == j);
}

TEST_CASE("bad JSON, unknown forms and bad base64 are refused with what is wrong", "[cli]") {
  auto refused = [](const char* j) -> std::string {
    try {
      json_to_msgpack(j);
    } catch (const conversion_error& e) {
      return e.what();
    }
    return "accepted";
  };
  CHECK_THAT(refused("[1,2"), Catch::Contains("bad JSON"));
  CHECK_THAT(refused("[1,2] x"), Catch::Contains("bad JSON at byte"));
  CHECK_THAT(refused(""), Catch::Contains("bad JSON"));
  CHECK_THAT(refused("{\"$bim\":\"YWJj\"}"), Catch::Contains("unknown form {\"$bim\""));
  CHECK_THAT(refused("{\"$bin\":\"YWJ\"}"), Catch::Contains("base64"));
  CHECK_THAT(refused("{\"$bin\":\"YW=j\"}"), Catch::Contains("not base64"));
  CHECK_THAT(refused("{\"$bin\":3}"), Catch::Contains("base64 string"));
  CHECK_THAT(refused("{\"$ext\":[300,\"AA==\"]}"), Catch::Contains("-128..127"));
  CHECK_THAT(refused("{\"$map\":[[1]]}"), Catch::Contains("[KEY, VALUE] pair"));
  CHECK(refused("{\"$bin\":\"YWI=\"}") == "accepted");
}

TEST_CASE("bytes that are not exactly one msgpack value are refused, forged lengths included", "[cli]") {
  auto refused = [](std::string bytes) {
    try {
      msgpack_to_json(bytes);
    } catch (const conversion_error&) {
      return true;
    }
    return false;
  };
  CHECK(refused(std::string("\x01\x02", 2)));                    // two values
  CHECK(refused(std::string("\xdd\xff\xff\xff\xff", 5)));        // an array of 2^32-1 items in 5 bytes
  CHECK(refused(std::string("\xc1", 1)));                        // never used
  CHECK(refused(std::string()));                                 // nothing
}

TEST_CASE("base64 encodes and decodes RFC 4648's vectors", "[cli]") {
  std::vector<std::pair<std::string, std::string>> v = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (auto& [plain, coded] : v) {
    CHECK(base64_encode(plain) == coded);
    CHECK(base64_decode(coded) == plain);
  }
}
