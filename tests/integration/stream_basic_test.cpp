#include "test_support.hpp"

#include <future>
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
    auto [cec, resp] = co_await client.async_call(1, text_bytes(msg), text_bytes(blob), {}, tok);
    REQUIRE_FALSE(cec);
    CHECK(str(resp.msg) == msg);
    CHECK(str(resp.blob) == blob);
  });
  CHECK(calls == 1);
}

TEST_CASE("batches larger than the socket takes in one write arrive whole and in order", "[stream]") {
  // Each side's reader writes its event's batch itself with a non-blocking write; what the
  // socket does not take, the writer finishes. 24 calls of 512 KiB in flight, interleaved
  // with small ones, overflow every socket buffer on the way out and on the way back.
  bool use_unix = unix_transport();
  asio::io_context io;
  server srv(io.get_executor(), echo_dispatch{});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    constexpr int n = 24;
    std::vector<std::string> blobs(n, std::string(512 * 1024, '\0'));
    std::mt19937 rng(7);
    for (auto& b : blobs)
      for (auto& c : b) c = static_cast<char>(rng());
    std::vector<std::string> msgs;
    for (int i = 0; i < 2 * n; ++i) msgs.push_back("call " + std::to_string(i));
    int done = 0, intact = 0;
    for (int i = 0; i < 2 * n; ++i) {
      // Even calls carry a large blob, odd ones only their msg.
      std::span<const char> blob = i % 2 == 0 ? text_bytes(blobs[i / 2]) : std::span<const char>{};
      client.async_call(1, text_bytes(msgs[i]), blob, {}, [&, i, blob](std::error_code ec, call_response r) {
        ++done;
        intact += !ec && str(r.msg) == msgs[i] && r.blob.view() == std::string_view(blob.data(), blob.size());
      });
    }
    co_await wait_until([&] { return done == 2 * n; });
    CHECK(intact == 2 * n);
  });
}

TEST_CASE("a user error code is returned and the next call on the connection works", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  server srv(io.get_executor(), echo_dispatch{});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    auto [e1, r1] = co_await client.async_call(2, text_bytes("x"), {}, {}, tok);
    CHECK(e1 == std::error_code(13, remote_category()));
    CHECK(r1.flag == proto::response_flag::error_code);
    auto [e2, r2] = co_await client.async_call("user.string", text_bytes("x"), {}, {}, tok);
    CHECK(e2 == make_error_code(errc::remote_error));
    CHECK(r2.error_string() == "divide by zero");
    auto [e3, r3] = co_await client.async_call("nope", text_bytes("x"), {}, {}, tok);
    CHECK(e3 == make_error_code(errc::method_not_found));
    auto [e4, r4] = co_await client.async_call(1, text_bytes("again"), {}, {}, tok);
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

TEST_CASE("async_call_into completes with the error alone and leaves an error string in the caller's storage",
          "[stream]") {
  asio::io_context io;
  server srv(io.get_executor(), echo_dispatch{});
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    call_response response;
    auto [e1] = co_await client.async_call_into(2, text_bytes("x"), {}, response, tok);
    CHECK(e1 == std::error_code(13, remote_category()));
    auto [e2] = co_await client.async_call_into("user.string", {}, {}, response, tok);
    CHECK(e2 == make_error_code(errc::remote_error));
    CHECK(response.error_string() == "divide by zero");
    auto [e3] = co_await client.async_call_into("no.such", {}, {}, response, tok);
    CHECK(e3 == make_error_code(errc::method_not_found));
    // A large request msg goes out by reference and must survive until the call completes.
    std::string big(100'000, 'q');
    auto [e4] = co_await client.async_call_into(1, text_bytes(big), {}, response, tok);
    CHECK_FALSE(e4);
    CHECK(str(response.msg) == big);
    client.abort();
    auto [e5] = co_await client.async_call_into(1, text_bytes("after"), {}, response, tok);
    CHECK(e5 == make_error_code(errc::closed));
  });
  // A stream with no connection fails at once (on the system executor: another thread).
  client_stream none;
  call_response r;
  std::promise<std::error_code> got;
  none.async_call_into(1, {}, {}, r, [&](std::error_code ec) { got.set_value(ec); });
  auto f = got.get_future();
  REQUIRE(f.wait_for(5s) == std::future_status::ready);
  CHECK(f.get() == make_error_code(errc::closed));
}

TEST_CASE("respond_with writes the answer's msg, and a failed writer answers rpc_encode, inline or later", "[stream]") {
  // Answered inside the dispatch call, the msg is written straight into the write batch;
  // answered later (a coroutine), through the request's own buffers. Both must agree.
  struct writer_dispatch {
    asio::awaitable<void> later(server_request req) {
      asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
      co_await t.async_wait(asio::deferred);
      answer(req);
    }
    static void answer(server_request& req) {
      std::string what(req.msg().begin(), req.msg().end());
      if (what.starts_with("fail")) {
        req.respond_with([](byte_buffer& out) {
          out.append(std::string_view("half-written"));
          return make_error_code(errc::encode);
        });
      } else {
        req.respond_with([&](byte_buffer& out) { out.append(std::string_view("written: " + what)); },
                         text_bytes("tail"));
      }
    }
    void operator()(server_request req) {
      if (req.numeric_action() == 2) asio::co_spawn(req.get_executor(), later(std::move(req)), asio::detached);
      else answer(req);
    }
  };
  asio::io_context io;
  server srv(io.get_executor(), writer_dispatch{});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    for (std::uint32_t act : {1u, 2u}) {
      INFO("action " << act << (act == 1 ? " (inline)" : " (later)"));
      auto [e1, r1] = co_await client.async_call(act, text_bytes("abc"), {}, {}, tok);
      CHECK_FALSE(e1);
      CHECK(str(r1.msg) == "written: abc");
      CHECK(str(r1.blob) == "tail");
      auto [e2, r2] = co_await client.async_call(act, text_bytes("fail"), {}, {}, tok);
      CHECK(e2 == make_error_code(errc::encode));
      // The connection goes on after the failed answer.
      auto [e3, r3] = co_await client.async_call(act, text_bytes("again"), {}, {}, tok);
      CHECK_FALSE(e3);
      CHECK(str(r3.msg) == "written: again");
    }
  });
}
