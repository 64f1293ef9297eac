// Type names and signatures of the reflection listing, derived from the C++ types.
#include <occams_rpc/api/reflection.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

using namespace occams_rpc;

namespace {

struct point {
  std::int32_t x = 0, y = 0;
  OCCAMS_RPC_FIELDS(x, y)
};

struct order_id {
  std::uint64_t v = 0;
  OCCAMS_RPC_FIELDS(v)
};

OCCAMS_RPC_SERVICE(Shapes,
    (area, double(std::vector<point>)),
    (touch, void()),
    (index, std::map<std::string, std::int64_t>(std::vector<std::string>), std::map<int, int>),
    (find, std::optional<point>(std::uint8_t, std::tuple<bool, std::string>), std::errc),
    (store, std::uint64_t(bytes, std::vector<char>), std::string),
    (lookup, order_id(order_id)));

}  // namespace

template <>
struct occams_rpc::api::type_name<order_id> {
  static std::string get() { return "order_id (u64)"; }
};

TEST_CASE("type names follow the wire types: sized integers, string, bytes, lists, maps, options, tuples", "[api]") {
  CHECK(api::type_name<std::int64_t>::get() == "i64");
  CHECK(api::type_name<std::uint16_t>::get() == "u16");
  CHECK(api::type_name<bool>::get() == "bool");
  CHECK(api::type_name<float>::get() == "f32");
  CHECK(api::type_name<double>::get() == "f64");
  CHECK(api::type_name<std::string>::get() == "string");
  CHECK(api::type_name<bytes>::get() == "bytes");
  CHECK(api::type_name<std::vector<char>>::get() == "bytes");
  CHECK(api::type_name<unit>::get() == "()");
  CHECK(api::type_name<std::vector<std::string>>::get() == "[string]");
  CHECK((api::type_name<std::map<std::uint32_t, std::vector<double>>>::get() == "{u32: [f64]}"));
  CHECK(api::type_name<std::optional<std::int8_t>>::get() == "i8?");
  CHECK((api::type_name<std::tuple<bool, std::string>>::get() == "(bool, string)"));
  CHECK((api::type_name<std::array<std::int32_t, 3>>::get() == "[i32; 3]"));
}

TEST_CASE("structs and enums are named as in C++, without anonymous namespaces; a specialisation wins", "[api]") {
  CHECK(api::type_name<point>::get() == "point");
  CHECK(api::type_name<std::errc>::get() == "std::errc");
  CHECK(api::type_name<std::vector<point>>::get() == "[point]");
  CHECK(api::type_name<order_id>::get() == "order_id (u64)");
}

TEST_CASE("a service's description lists each method's signature and error type in order", "[api]") {
  auto s = api::describe_service<Shapes>();
  CHECK(s.name == "Shapes");
  std::vector<api::method_info> want = {
      {"area", "f64([point])", ""},
      {"touch", "void()", ""},
      {"index", "{string: i64}([string])", "{i32: i32}"},
      {"find", "point?(u8, (bool, string))", "std::errc"},
      {"store", "u64(bytes, bytes)", "string"},
      {"lookup", "order_id (u64)(order_id (u64))", ""},
  };
  CHECK(s.methods == want);
  CHECK(api::to_string(s.methods[0]) == "area: f64([point])");
  CHECK(api::to_string(s.methods[4]) == "store: u64(bytes, bytes), error: string");
}
