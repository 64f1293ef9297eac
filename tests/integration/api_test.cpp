// The typed API end to end: stubs over a client_stream, a router serving several services.
#include "test_support.hpp"

#include <algorithm>

#include "calculator_services.hpp"

#include <boost/asio/use_future.hpp>

#include <future>
#include <thread>
#include <vector>

using namespace occams_rpc;
using namespace test;

namespace {

struct file_attr {
  std::uint64_t inode = 0;
  std::string name;
  std::vector<char> data;
  OCCAMS_RPC_FIELDS(inode, name, data)
  bool operator==(const file_attr&) const = default;
};

struct fs_error {
  std::int32_t code = 0;
  std::string path;
  OCCAMS_RPC_FIELDS(code, path)
  bool operator==(const fs_error&) const = default;
};

OCCAMS_RPC_SERVICE(FileService,
    (stat, file_attr(std::uint64_t), fs_error),  // a struct result and a struct error
    (touch, void()),                             // no argument, no result
    (rename, bool(std::string, std::string)),
    (boom, std::int64_t(std::int64_t)),          // throws
    (slow_boom, std::int64_t(std::int64_t)));    // throws from a coroutine

struct file_service {
  int touched = 0;
  api::result<file_attr, fs_error> stat(std::uint64_t inode) {
    if (inode == 0) return api::fail(fs_error{2, "/no/such"});
    return file_attr{inode, "f" + std::to_string(inode), {'a', '\0', 'b'}};
  }
  void touch() { ++touched; }
  bool rename(const std::string& from, const std::string& to) { return from != to; }
  std::int64_t boom(std::int64_t) { throw std::runtime_error("boom"); }
  asio::awaitable<std::int64_t> slow_boom(std::int64_t n) {
    asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
    co_await t.async_wait(asio::deferred);
    if (n > 0) throw std::runtime_error("slow boom");
    co_return n;
  }
};

struct blob_record {
  std::string name;
  bytes data;  // inside a struct: decoded as an owned copy
  OCCAMS_RPC_FIELDS(name, data)
};

OCCAMS_RPC_SERVICE(BlobService,
    (reverse, bytes(bytes)),                  // answers with bytes of its own
    (later_tail, bytes(bytes, std::uint32_t)),  // reads its view of the request after suspending
    (wrap, blob_record(bytes)));

struct blob_service {
  bytes reverse(bytes in) {
    std::string r(in.begin(), in.end());
    std::reverse(r.begin(), r.end());
    return bytes::copy_of(bytes(r));
  }
  asio::awaitable<bytes> later_tail(bytes in, std::uint32_t skip) {
    asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
    co_await t.async_wait(asio::deferred);  // the request (and so the view) is still held
    co_return bytes(in.span().subspan(std::min<std::size_t>(skip, in.size())));
  }
  blob_record wrap(bytes in) { return {"wrapped", in}; }
};

// A string error whose to_string builds a std::string (as docs/api.md's quota_error does); the
// router must keep that temporary alive while it answers (ASan saw it freed first).
struct quota_error {
  std::string user;
};

}  // namespace

template <>
struct occams_rpc::api::error_codec<quota_error> {
  static constexpr error_kind kind = error_kind::string;
  static std::string to_string(const quota_error& e) { return "quota exceeded for user: " + e.user; }
  static quota_error from_string(std::string_view s) {
    s.remove_prefix(std::min(s.size(), std::string_view("quota exceeded for user: ").size()));
    return {std::string(s)};
  }
};

namespace {

OCCAMS_RPC_SERVICE(QuotaService, (reserve, std::int64_t(std::string, std::int64_t), quota_error));

struct quota_service {
  api::result<std::int64_t, quota_error> reserve(std::string user, std::int64_t n) {
    if (n > 10) return api::fail(quota_error{std::move(user)});
    return n;
  }
};

// The service of PROTOCOL.md's golden frame, plus a method with none and one with one argument.
OCCAMS_RPC_SERVICE(Calculator, (add, std::int64_t(std::int64_t, std::int64_t)), (zero, std::int64_t()),
                   (one, std::int64_t(std::string)));

api::router calculator_routes() {
  api::router routes;
  routes.add<CalService>(calculator{}).add<EchoService>(echo{});
  return routes;
}

/// Runs `body(stream)` against a calculator server, over TCP or a Unix socket.
template <class Body>
void with_calculator(bool use_unix, Body body, client_config cfg = {}) {
  asio::io_context io;
  server srv(io.get_executor(), calculator_routes());
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where, cfg);
    co_await body(stream);
  });
}

}  // namespace

TEST_CASE("typed calls return the method's value", "[api]") {
  bool use_unix = unix_transport();
  with_calculator(use_unix, [&](client_stream& stream) -> asio::awaitable<void> {
    api::stub<CalService> cal(stream);
    api::stub<EchoService> echo(stream);
    auto sum = co_await cal.add(1, 2);
    REQUIRE(sum.has_value());
    CHECK(*sum == 3);
    auto answer1 = co_await cal.inc(41);
    CHECK(answer1.value() == 42);
    auto answer2 = co_await cal.div(7, 2);
    CHECK(answer2.value() == 3);
    auto answer3 = co_await cal.add(-5, std::int64_t{1} << 40);
    CHECK(answer3.value() == (std::int64_t{1} << 40) - 5);
    auto answer4 = co_await echo.repeat("hello");
    CHECK(answer4.value() == "hello");
    auto answer5 = co_await echo.repeat(std::string(100'000, 'x'));
    CHECK(answer5.value() == std::string(100'000, 'x'));
  });
}

TEST_CASE("a method's own string error comes back as that error, and the connection goes on", "[api]") {
  bool use_unix = unix_transport();
  with_calculator(use_unix, [&](client_stream& stream) -> asio::awaitable<void> {
    api::stub<CalService> cal(stream);
    auto r = co_await cal.div(1, 0);
    REQUIRE(r.has_error());
    CHECK(r.error() == "divide by zero");
    CHECK_FALSE(r.has_framework_error());
    CHECK_THROWS_AS(r.value(), std::system_error);
    auto answer6 = co_await cal.div(9, 3);
    CHECK(answer6.value() == 3);
  });
}

TEST_CASE("a string error whose to_string returns a std::string arrives intact", "[api]") {
  asio::io_context io;
  api::router routes;
  routes.add<QuotaService>(quota_service{});
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where);
    api::stub<QuotaService> quota(stream);
    // Long enough that the text lives on the heap, where ASan sees a use after free.
    std::string user(40, 'u');
    auto r = co_await quota.reserve(user, 11);
    REQUIRE(r.has_error());
    CHECK(r.error().user == user);
    auto ok = co_await quota.reserve(user, 3);
    CHECK(ok.value() == 3);
  });
}

TEST_CASE("an errno-like method error comes back as the method's enum", "[api]") {
  with_calculator(false, [&](client_stream& stream) -> asio::awaitable<void> {
    api::stub<EchoService> echo(stream);
    auto r = co_await echo.io_error("x");
    REQUIRE(r.has_error());
    CHECK(r.error() == std::errc::io_error);
    CHECK(static_cast<int>(r.error()) == 5);
  });
}

TEST_CASE("struct arguments, results and errors travel as maps by field name", "[api]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  auto impl = std::make_shared<file_service>();
  api::router routes;
  routes.add<FileService>(impl);
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where);
    api::stub<FileService> fs(stream);
    auto attr = co_await fs.stat(7u);
    REQUIRE(attr.has_value());
    CHECK(*attr == file_attr{7, "f7", {'a', '\0', 'b'}});
    auto missing = co_await fs.stat(0u);
    REQUIRE(missing.has_error());
    CHECK(missing.error() == fs_error{2, "/no/such"});
    auto touched = co_await fs.touch();
    CHECK(touched.has_value());
    auto answer7 = co_await fs.rename("a", "b");
    CHECK(answer7.value());
    auto answer8 = co_await fs.rename("a", "a");
    CHECK_FALSE(answer8.value());
  });
  CHECK(impl->touched == 1);
}

TEST_CASE("bytes go through typed calls without copies: views on the server, owned results on the client", "[api]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  api::router routes;
  routes.add<BlobService>(blob_service{});
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where);
    api::stub<BlobService> blobs(stream);
    std::string big(100'000, 'x');
    big.back() = 'y';
    auto reversed = co_await blobs.reverse(big);
    REQUIRE(reversed.has_value());
    CHECK(reversed->owns());  // it holds the response buffer it views
    CHECK(reversed->size() == big.size());
    CHECK(reversed->view().front() == 'y');
    bytes kept = std::move(*reversed);  // moving keeps the memory and the view
    CHECK(kept.view().substr(1) == std::string(big.size() - 1, 'x'));
    auto tail = co_await blobs.later_tail(std::string_view("0123456789"), 7u);
    REQUIRE(tail.has_value());
    CHECK(tail->view() == "789");
    auto empty = co_await blobs.reverse(std::string_view());
    REQUIRE(empty.has_value());
    CHECK(empty->empty());
    auto record = co_await blobs.wrap(std::string_view("abc"));
    REQUIRE(record.has_value());
    CHECK(record->name == "wrapped");
    CHECK(record->data.view() == "abc");
    CHECK(record->data.owns());  // nested: a copy of its own
  });
}

TEST_CASE("the router answers unknown services, unknown methods and bad arguments with framework errors", "[api]") {
  with_calculator(false, [&](client_stream& stream) -> asio::awaitable<void> {
    auto call = [&](proto::action act, std::string_view msg) { return stream.async_call(act, text_bytes(msg), {}, {}, tok); };
    auto [e1, r1] = co_await call("NoService.add", "\x92\x01\x02");
    CHECK(e1 == make_error_code(errc::service_not_found));
    auto [e2, r2] = co_await call("CalService.mul", "\x92\x01\x02");
    CHECK(e2 == make_error_code(errc::method_not_found));
    auto [e3, r3] = co_await call("CalService.add", "\x93\x01\x02\x03");  // three arguments
    CHECK(e3 == make_error_code(errc::decode));
    auto [e4, r4] = co_await call("CalService.add", "\xa1x");  // a string
    CHECK(e4 == make_error_code(errc::decode));
    auto [e5, r5] = co_await call(7u, "\x92\x01\x02");  // a numeric action
    CHECK(e5 == make_error_code(errc::decode));
    auto [e6, r6] = co_await call("CalServiceadd", "\x92\x01\x02");  // no dot
    CHECK(e6 == make_error_code(errc::decode));
    auto [e7, r7] = co_await call("Cal\xff.add", "\x92\x01\x02");  // not UTF-8
    CHECK(e7 == make_error_code(errc::decode));
    auto [e8, r8] = co_await call(".add", "\x92\x01\x02");
    CHECK(e8 == make_error_code(errc::decode));
    // And the connection still serves good calls.
    auto [ok, r] = co_await call("CalService.add", "\x92\x01\x02");
    CHECK_FALSE(ok);
    CHECK(r.msg.view() == "\x03");
  });
}

TEST_CASE("an exception escaping an implementation fails that call only with rpc_internal_err", "[api]") {
  asio::io_context io;
  api::router routes;
  routes.add<FileService>(file_service{}).add<CalService>(calculator{});
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where);
    api::stub<FileService> fs(stream);
    api::stub<CalService> cal(stream);
    auto r1 = co_await fs.boom(1);
    CHECK(r1.framework_error() == make_error_code(errc::internal));
    auto r2 = co_await fs.slow_boom(1);
    CHECK(r2.framework_error() == make_error_code(errc::internal));
    auto answer9 = co_await fs.slow_boom(0);
    CHECK(answer9.value() == 0);
    auto answer10 = co_await cal.add(2, 2);
    CHECK(answer10.value() == 4);
    CHECK(stream.is_open());
  });
}

TEST_CASE("a stub sends the action and arguments the Rust side expects", "[api]") {
  // Golden frame from PROTOCOL.md: "Calculator.add" with msgpack [1,2] = 92 01 02.
  asio::io_context io;
  std::vector<std::pair<std::string, std::string>> seen;
  struct recorder {
    std::vector<std::pair<std::string, std::string>>* seen;
    void operator()(server_request req) {
      seen->emplace_back(std::string(req.action()), std::string(req.msg().data(), req.msg().size()));
      req.respond(std::string_view("\x03"));
    }
  };
  server srv(io.get_executor(), recorder{&seen});
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where);
    api::stub<Calculator> calc(stream);
    auto answer11 = co_await calc.add(1, 2);
    CHECK(answer11.value() == 3);
    auto answer12 = co_await calc.zero();
    CHECK(answer12.value() == 3);
    auto answer13 = co_await calc.one("ab");
    CHECK(answer13.value() == 3);
  });
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == std::pair<std::string, std::string>{"Calculator.add", "\x92\x01\x02"});
  CHECK(seen[1] == std::pair<std::string, std::string>{"Calculator.zero", "\xc0"});  // no argument: nil
  CHECK(seen[2] == std::pair<std::string, std::string>{"Calculator.one", "\xa2" "ab"});  // one: itself
}

TEST_CASE("an empty OK answer decodes as the default value", "[api]") {
  asio::io_context io;
  struct empty_answers {
    void operator()(server_request req) { req.respond(std::span<const char>{}); }
  };
  server srv(io.get_executor(), empty_answers{});
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await connect(where);
    api::stub<CalService> cal(stream);
    auto answer14 = co_await cal.add(1, 2);
    CHECK(answer14.value() == 0);
  });
}

TEST_CASE("many coroutines call concurrently through one stub", "[api]") {
  bool use_unix = unix_transport();
  with_calculator(use_unix, [&](client_stream& stream) -> asio::awaitable<void> {
    api::stub<CalService> cal(stream);
    constexpr int workers = 40, calls = 100;
    int done = 0, wrong = 0;
    for (int w = 0; w < workers; ++w)
      asio::co_spawn(stream.get_executor(), [&, w]() -> asio::awaitable<void> {
        for (int i = 0; i < calls; ++i) {
          auto r = co_await cal.add(w, i);
          if (!r || *r != w + i) ++wrong;
        }
        ++done;
      }, asio::detached);
    co_await wait_until([&] { return done == workers; });
    CHECK(wrong == 0);
    CHECK(stream.max_in_flight_seen() <= 16);
  }, {.window = 16});
}

TEST_CASE("a blocking caller gets the result through a future, and a callback works too", "[api]") {
  asio::io_context io;
  server srv(io.get_executor(), calculator_routes());
  auto where = srv.listen(listen_address(true));
  auto guard = asio::make_work_guard(io);
  std::thread t([&] { io.run(); });
  auto stream = client_stream::async_connect(io.get_executor(), where, {}, {}, asio::use_future).get();
  REQUIRE_FALSE(std::get<0>(stream));
  client_stream& s = std::get<1>(stream);
  api::stub<CalService> cal(s);
  CHECK(cal.add(20, 22)(asio::use_future).get().value() == 42);
  auto div = cal.div(1, 0)(asio::use_future).get();
  CHECK(div.error() == "divide by zero");
  std::promise<std::int64_t> p;
  cal.inc(1)([&](api::result<std::int64_t> r) { p.set_value(r.value_or(-1)); });
  CHECK(p.get_future().get() == 2);
  s.close();
  guard.reset();
  asio::post(io, [&] { srv.async_shutdown([&](std::error_code) { io.stop(); }); });
  t.join();
}

TEST_CASE("a stub over a closed stream fails calls with a framework error, never hangs", "[api]") {
  with_calculator(false, [&](client_stream& stream) -> asio::awaitable<void> {
    api::stub<CalService> cal(stream);
    auto answer15 = co_await cal.add(1, 1);
    CHECK(answer15.value() == 2);
    stream.abort();
    auto r = co_await cal.add(1, 1);
    CHECK(r.framework_error() == make_error_code(errc::closed));
    client_stream none;
    api::stub<CalService> nowhere(none);
    auto answer16 = co_await nowhere.inc(1);
    CHECK(answer16.framework_error() == make_error_code(errc::closed));
  });
}

TEST_CASE("adding the same service twice to a router is refused", "[api]") {
  api::router routes;
  routes.add<CalService>(calculator{});
  CHECK_THROWS_AS(routes.add<CalService>(calculator{}), std::invalid_argument);
}

TEST_CASE("the UTF-8 check accepts well-formed text and refuses the rest", "[api]") {
  using api::detail::is_valid_utf8;
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("CalService.add"));
  CHECK(is_valid_utf8("Gr\xc3\xbc\xc3\x9f" "e.\xe2\x82\xac" "x\xf0\x9f\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xff"));
  CHECK_FALSE(is_valid_utf8("\xc3"));              // truncated
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));      // a surrogate
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(is_valid_utf8("\x80"));              // a lone continuation byte
}
