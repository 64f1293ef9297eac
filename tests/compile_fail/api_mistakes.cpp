// Mistakes in a service description or an implementation must stop the build with a readable
// static_assert message. Each case is compiled on its own (OCCAMS_RPC_CASE selects it) by a
// ctest test that expects the build to fail with that message (see CMakeLists.txt here).
#include <occams_rpc.hpp>

#include <cstdint>
#include <string>

using namespace occams_rpc;

OCCAMS_RPC_SERVICE(Cal, (add, std::int64_t(std::int64_t, std::int64_t)), (name, std::string()));

struct good_impl {
  std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }
  std::string name() { return "cal"; }
};

#if OCCAMS_RPC_CASE == 0
// The control: everything right compiles.
void control(client_stream& s) {
  api::router r;
  r.add<Cal>(good_impl{});
  api::stub<Cal> cal(s);
  (void)cal.add(1, 2);
}
#elif OCCAMS_RPC_CASE == 1
struct missing_method {
  std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }
};
void f() { api::router().add<Cal>(missing_method{}); }
#elif OCCAMS_RPC_CASE == 2
struct wrong_parameters {
  std::int64_t add(std::string a, std::int64_t b) { return b; }
  std::string name() { return "cal"; }
};
void f() { api::router().add<Cal>(wrong_parameters{}); }
#elif OCCAMS_RPC_CASE == 3
struct wrong_return {
  std::string add(std::int64_t, std::int64_t) { return "3"; }
  std::string name() { return "cal"; }
};
void f() { api::router().add<Cal>(wrong_return{}); }
#elif OCCAMS_RPC_CASE == 4
void f(client_stream& s) {
  api::stub<Cal> cal(s);
  (void)cal.add(1);  // one argument short
}
#elif OCCAMS_RPC_CASE == 5
void f(client_stream& s) {
  api::stub<Cal> cal(s);
  (void)cal.add("one", 2);
}
#elif OCCAMS_RPC_CASE == 6
OCCAMS_RPC_SERVICE(Refs, (get, std::int64_t(const std::string&)));
Refs::get g;
#elif OCCAMS_RPC_CASE == 7
OCCAMS_RPC_SERVICE(NotASignature, (get, std::int64_t));
NotASignature::get g;
#elif OCCAMS_RPC_CASE == 8
// raw_codec carries byte strings, not a call's arguments (it has no encode_args).
void f(client_stream& s) {
  api::stub<Cal, client_stream, raw_codec> cal(s);
  (void)cal.add(1, 2);
}
#elif OCCAMS_RPC_CASE == 9 || OCCAMS_RPC_CASE == 10
// A codec for integers only.
struct ints_only {
  std::error_code encode(const std::int64_t&, byte_buffer&) const { return {}; }
  std::error_code decode(std::span<const char>, std::int64_t&) const { return {}; }
  template <std::same_as<std::int64_t>... A>
  std::error_code encode_args(byte_buffer&, const A&...) const { return {}; }
  template <std::same_as<std::int64_t>... A>
  std::error_code decode_args(std::span<const char>, std::tuple<A...>&) const { return {}; }
};
#if OCCAMS_RPC_CASE == 9
void f() { api::basic_router<ints_only>().add<Cal>(good_impl{}); }  // Cal::name returns a string
#else
struct lookup_error {
  std::int64_t key = 0;
};
OCCAMS_RPC_SERVICE(Lookup, (get, std::int64_t(std::int64_t), lookup_error));  // travels encoded
void f(client_stream& s) {
  api::stub<Lookup, client_stream, ints_only> lookup(s);
  (void)lookup.get(1);
}
#endif
#elif OCCAMS_RPC_CASE == 11
struct move_only_codec : msgpack_codec {
  move_only_codec() = default;
  move_only_codec(move_only_codec&&) = default;
};
void f(client_stream& s) {
  api::stub<Cal, client_stream, move_only_codec> cal(s);
  (void)cal.add(1, 2);
}
#elif OCCAMS_RPC_CASE == 12
// Not an API mistake but a stream one, checked the same way: a transport object of another type.
struct other_transport : socket_transport {};
void f(asio::any_io_executor ex) { (void)client_stream::async_connect(other_transport{}, ex, address::tcp("h", 1)); }
#endif
