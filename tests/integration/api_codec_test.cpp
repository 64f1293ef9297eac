// The codec is a real parameter: a second codec, nothing like msgpack, drives a typed service
// through api::basic_router and api::stub over a real connection.
#include "test_support.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

using namespace occams_rpc;
using namespace test;

namespace {

template <class T>
concept tiny_integer = std::is_same_v<T, bool> || std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t> ||
                       std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>;
template <class T>
concept tiny_text = std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<char>> || std::is_same_v<T, bytes>;
template <class T>
concept tiny_codable = tiny_integer<T> || tiny_text<T> || std::is_same_v<T, std::vector<std::int64_t>> || std::is_same_v<T, unit>;

/// A small length-prefixed binary codec:
/// - bool and 32/64-bit integers: 8 bytes, little-endian two's complement (out of the type's range: no decode);
/// - std::string, std::vector<char>, bytes: the bytes themselves (a `bytes` decodes as a view);
/// - std::vector<std::int64_t>: the integers one after another; unit: no bytes;
/// - a call's arguments: each as a 4-byte little-endian length, then its encoding.
/// It does not opt in to encodes_views_as_values, so the stub converts view arguments.
class tiny_codec {
 public:
  template <tiny_codable T>
  std::error_code encode(const T& v, byte_buffer& out) const noexcept {
    try {
      if constexpr (tiny_integer<T>) {
        put_u64(out, static_cast<std::uint64_t>(static_cast<std::int64_t>(v)));
      } else if constexpr (tiny_text<T>) {
        out.append(v.data(), v.size());
      } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
        for (auto n : v) put_u64(out, static_cast<std::uint64_t>(n));
      }
      return {};
    } catch (...) {
      return errc::encode;
    }
  }

  template <tiny_codable T>
  std::error_code decode(std::span<const char> in, T& out) const noexcept {
    try {
      if constexpr (tiny_integer<T>) {
        if (in.size() != 8) return errc::decode;
        auto n = static_cast<std::int64_t>(get_u64(in.data()));
        if constexpr (std::is_same_v<T, bool>) {
          if (n != 0 && n != 1) return errc::decode;
        } else {
          if (!std::in_range<T>(n)) return errc::decode;
        }
        out = static_cast<T>(n);
      } else if constexpr (std::is_same_v<T, bytes>) {
        out = bytes(in);  // a view of the input, as msgpack_codec gives
      } else if constexpr (tiny_text<T>) {
        out.assign(in.begin(), in.end());
      } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
        if (in.size() % 8) return errc::decode;
        out.clear();
        for (std::size_t i = 0; i < in.size(); i += 8) out.push_back(static_cast<std::int64_t>(get_u64(in.data() + i)));
      } else {
        if (!in.empty()) return errc::decode;  // unit
      }
      return {};
    } catch (...) {
      return errc::decode;
    }
  }

  template <tiny_codable... Args>
  std::error_code encode_args(byte_buffer& out, const Args&... args) const noexcept {
    std::error_code ec;
    [[maybe_unused]] auto one = [&](const auto& a) {
      if (ec) return;
      try {
        std::size_t at = out.size();
        out.append("\0\0\0\0", 4);
        if ((ec = encode(a, out))) return;
        auto n = static_cast<std::uint32_t>(out.size() - at - 4);
        for (int i = 0; i < 4; ++i) out.data()[at + i] = static_cast<char>(n >> (8 * i));
      } catch (...) {
        ec = errc::encode;
      }
    };
    (one(args), ...);
    return ec;
  }

  template <tiny_codable... Args>
  std::error_code decode_args(std::span<const char> in, std::tuple<Args...>& out) const noexcept {
    std::error_code ec;
    [[maybe_unused]] auto one = [&](auto& a) {
      if (ec) return;
      if (in.size() < 4) return void(ec = errc::decode);
      std::uint32_t n = 0;
      for (int i = 0; i < 4; ++i) n |= std::uint32_t(static_cast<unsigned char>(in[i])) << (8 * i);
      if (in.size() - 4 < n) return void(ec = errc::decode);
      ec = decode(in.subspan(4, n), a);
      in = in.subspan(4 + n);
    };
    std::apply([&](auto&... a) { (one(a), ...); }, out);
    if (!ec && !in.empty()) ec = errc::decode;  // more arguments than the method takes
    return ec;
  }

 private:
  static void put_u64(byte_buffer& out, std::uint64_t n) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(n >> (8 * i));
    out.append(b, 8);
  }
  static std::uint64_t get_u64(const char* p) noexcept {
    std::uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return n;
  }
};

OCCAMS_RPC_SERVICE(Ledger,
    (add, std::int64_t(std::int64_t, std::int64_t)),
    (greet, std::string(std::string)),               // one argument
    (count, std::uint32_t()),                        // none
    (note, void(std::string, bool)),                 // no result
    (reverse, bytes(bytes)),                         // bytes both ways: views of the msgs
    (raw_size, std::uint64_t(std::vector<char>)),    // a byte vector given as a view
    (sum, std::int64_t(std::vector<std::int64_t>), std::vector<std::int64_t>),  // an encoded error
    (withdraw, std::int64_t(std::int64_t), std::string),                         // a string error
    (later, std::int64_t(std::int64_t)));            // a coroutine

struct ledger {
  std::uint32_t calls = 0;
  std::vector<std::string> notes;
  std::int64_t add(std::int64_t a, std::int64_t b) {
    ++calls;
    return a + b;
  }
  std::string greet(const std::string& who) {
    ++calls;
    return "hello, " + who;
  }
  std::uint32_t count() { return calls; }
  void note(std::string text, bool loud) {
    ++calls;
    if (loud) std::transform(text.begin(), text.end(), text.begin(), [](char c) { return char(std::toupper(c)); });
    notes.push_back(std::move(text));
  }
  bytes reverse(bytes in) {
    std::string r(in.begin(), in.end());
    std::reverse(r.begin(), r.end());
    return bytes::copy_of(bytes(r));
  }
  std::uint64_t raw_size(const std::vector<char>& v) { return v.size(); }
  api::result<std::int64_t, std::vector<std::int64_t>> sum(const std::vector<std::int64_t>& v) {
    std::vector<std::int64_t> negative;
    std::copy_if(v.begin(), v.end(), std::back_inserter(negative), [](auto n) { return n < 0; });
    if (!negative.empty()) return api::fail(std::move(negative));
    std::int64_t s = 0;
    for (auto n : v) s += n;
    return s;
  }
  api::result<std::int64_t, std::string> withdraw(std::int64_t amount) {
    if (amount > 100) return api::fail(std::string("insufficient funds"));
    return 100 - amount;
  }
  asio::awaitable<std::int64_t> later(std::int64_t n) {
    co_await sleep_for(1ms);
    co_return n * 2;
  }
};

using tiny_router = api::basic_router<tiny_codec>;
template <class Channel = client_stream>
using tiny_stub = api::stub<Ledger, Channel, tiny_codec>;

// The concept says what the API needs, and refuses what a codec cannot carry.
struct takes_double : api::method<std::int64_t(double)> {};
struct returns_double : api::method<double(std::int64_t)> {};
struct struct_error : api::method<std::int64_t(std::int64_t), std::vector<std::string>> {};
static_assert(api::codec_for_method<tiny_codec, Ledger::add>);
static_assert(api::codec_for_method<tiny_codec, Ledger::note>);
static_assert(api::codec_for_method<tiny_codec, Ledger::sum>);
static_assert(!api::codec_for_method<tiny_codec, takes_double>);
static_assert(!api::codec_for_method<tiny_codec, returns_double>);
static_assert(!api::codec_for_method<tiny_codec, struct_error>);
static_assert(api::codec_for_method<msgpack_codec, Ledger::sum>);
static_assert(!api::codec_for_method<raw_codec, Ledger::greet>);  // no encode_args
static_assert(!api::encodes_views_as_values<tiny_codec> && api::encodes_views_as_values<msgpack_codec>);

}  // namespace

TEST_CASE("a second codec drives a typed service through router and stub", "[api][codec]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  auto impl = std::make_shared<ledger>();
  tiny_router routes;
  routes.add<Ledger>(impl);
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where);
    tiny_stub<> ledger(stream);
    auto sum = co_await ledger.add(40, 2);
    CHECK(sum.value() == 42);
    auto hi = co_await ledger.greet("codec");  // a const char* converted to the std::string parameter
    CHECK(hi.value() == "hello, codec");
    auto noted = co_await ledger.note(std::string_view("quiet"), false);
    CHECK(noted.has_value());
    auto loud = co_await ledger.note("loud", true);
    CHECK(loud.has_value());
    auto n = co_await ledger.count();
    CHECK(n.value() == 4);
    auto rev = co_await ledger.reverse("abc");
    REQUIRE(rev.has_value());
    CHECK(rev->view() == "cba");
    CHECK(rev->owns());  // a view of the response, which it took along
    std::string big(70'000, 'x');
    big.front() = 'a';
    auto size = co_await ledger.raw_size(bytes(big));  // a span for a byte vector: converted
    CHECK(size.value() == big.size());
    // Named, not braced in the co_await: GCC 12 fails on an initializer_list's array there.
    std::vector<std::int64_t> positive{1, 2, 3}, mixed{1, -2, 3, -4};
    auto total = co_await ledger.sum(positive);
    CHECK(total.value() == 6);
    auto refused = co_await ledger.sum(mixed);
    REQUIRE(refused.has_error());
    CHECK(refused.error() == std::vector<std::int64_t>{-2, -4});
    auto left = co_await ledger.withdraw(30);
    CHECK(left.value() == 70);
    auto broke = co_await ledger.withdraw(300);
    REQUIRE(broke.has_error());
    CHECK(broke.error() == "insufficient funds");
    auto twice = co_await ledger.later(21);
    CHECK(twice.value() == 42);
  });
  CHECK(impl->notes == std::vector<std::string>{"quiet", "LOUD"});
}

TEST_CASE("the stub and the router really use the codec they are given", "[api][codec]") {
  asio::io_context io;
  std::vector<std::string> seen;
  struct recorder {
    std::vector<std::string>* seen;
    void operator()(server_request req) {
      seen->emplace_back(req.msg().data(), req.msg().size());
      req.respond(std::string_view("\x07\0\0\0\0\0\0\0", 8));  // 7 in the tiny codec
    }
  };
  server recording(io.get_executor(), recorder{&seen});
  auto recorded_at = recording.listen(listen_address(false));
  tiny_router routes;
  routes.add<Ledger>(ledger{});
  server tiny_server(io.get_executor(), std::move(routes));
  auto tiny_at = tiny_server.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto to_recorder = co_await connect(recorded_at);
    auto add = co_await tiny_stub<>(to_recorder).add(1, -2);
    CHECK(add.value() == 7);
    auto greet = co_await tiny_stub<>(to_recorder).greet("");
    CHECK(greet.value() == std::string("\x07\0\0\0\0\0\0\0", 8));  // any bytes are a string here
    auto count = co_await tiny_stub<>(to_recorder).count();
    CHECK(count.value() == 7);

    // A msgpack stub's bytes do not decode in the tiny codec's router, and the reverse.
    auto to_tiny = co_await connect(tiny_at);
    auto as_msgpack = co_await api::stub<Ledger>(to_tiny).add(1, 2);
    CHECK(as_msgpack.framework_error() == make_error_code(errc::decode));
    auto as_tiny = co_await tiny_stub<>(to_tiny).add(1, 2);
    CHECK(as_tiny.value() == 3);
  });
  REQUIRE(seen.size() == 3);
  using namespace std::string_literals;
  CHECK(seen[0] == "\x08\0\0\0"s "\x01\0\0\0\0\0\0\0"s "\x08\0\0\0"s "\xfe\xff\xff\xff\xff\xff\xff\xff"s);
  CHECK(seen[1] == "\0\0\0\0"s);  // one empty string
  CHECK(seen[2].empty());        // no argument: nothing
}
