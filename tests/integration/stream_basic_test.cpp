#include "test_support.hpp"

#include <random>

using namespace occams_rpc;
using namespace test;

namespace {

/// action 1 echoes; action 2 answers error code 13; "slow" waits; others: method not found.
struct echo_dispatch {
  int* calls = nullptr;
  void operator()(server_request req) {
    if (calls) ++*calls;
    if (!req.has_string_action() && req.numeric_action() == 1) req.respond(req.msg(), req.blob());
    else if (!req.has_string_action() && req.numeric_action() == 2) req.respond_error_code(13);
    else if (req.action() == "user.string") req.respond_error_string("divide by zero");
    else req.respond_error(errc::method_not_found);
  }
};

}  // namespace

TEST_CASE("a msg and a 1 KiB blob travel to the server and back unchanged", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  int calls = 0;
  server srv(io.get_executor(), echo_dispatch{&calls});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    std::string msg = "hello";
    std::string blob(1024, '\0');
    std::mt19937 rng(42);
    for (auto& c : blob) c = static_cast<char>(rng());
    auto [cec, resp] = co_await client.async_call(1, bytes(msg), bytes(blob), {}, tok);
    REQUIRE_FALSE(cec);
    CHECK(str(resp.msg) == msg);
    CHECK(str(resp.blob) == blob);
  });
  CHECK(calls == 1);
}

TEST_CASE("a user error code is returned and the next call on the connection works", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  server srv(io.get_executor(), echo_dispatch{});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    auto [e1, r1] = co_await client.async_call(2, bytes("x"), {}, {}, tok);
    CHECK(e1 == std::error_code(13, remote_category()));
    CHECK(r1.flag == proto::response_flag::error_code);
    auto [e2, r2] = co_await client.async_call("user.string", bytes("x"), {}, {}, tok);
    CHECK(e2 == make_error_code(errc::remote_error));
    CHECK(r2.error_string() == "divide by zero");
    auto [e3, r3] = co_await client.async_call("nope", bytes("x"), {}, {}, tok);
    CHECK(e3 == make_error_code(errc::method_not_found));
    auto [e4, r4] = co_await client.async_call(1, bytes("again"), {}, {}, tok);
    CHECK_FALSE(e4);
    CHECK(str(r4.msg) == "again");
  });
}

TEST_CASE("pings are answered by the server and never reach the dispatch", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  int calls = 0;
  server srv(io.get_executor(), echo_dispatch{&calls});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    for (int i = 0; i < 3; ++i) {
      auto [pec] = co_await client.async_ping(tok);
      CHECK_FALSE(pec);
    }
  });
  CHECK(calls == 0);
}
