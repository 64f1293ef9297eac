// The stream layer over the in-memory transport: no socket, and bytes shaped as a test wants
// (split into tiny reads, held back, cut).
#include "test_support.hpp"

#include <occams_rpc/transport/memory_transport.hpp>

using namespace occams_rpc;
using namespace test;

namespace {

using memory_client = basic_client_stream<memory_transport>;

struct echo_numeric {
  void operator()(server_request req) { req.respond(req.msg(), req.blob()); }
};

/// A fresh in-memory address.
address memory_address() { return address::tcp("memory-test", 0); }

/// Connects over memory and gives the stream and the connection's hooks.
asio::awaitable<std::pair<memory_client, memory_stream::link>> connect_memory(const address& where,
                                                                               client_config cfg = {}) {
  auto ex = co_await asio::this_coro::executor;
  memory_stream s(ex);
  auto ec = co_await memory_transport{}.connect(ex, where, 1s, s);
  REQUIRE_FALSE(ec);
  auto hooks = s.hooks();
  co_return std::pair{memory_client(std::move(s), cfg), hooks};
}

}  // namespace

TEST_CASE("calls complete over the in-memory transport with every read cut into 3-byte pieces",
          "[stream][memory]") {
  asio::io_context io;
  basic_server<echo_numeric, memory_transport> srv(io.get_executor(), echo_numeric{});
  auto where = srv.listen(memory_address());
  run(io, [&]() -> asio::awaitable<void> {
    auto [client, hooks] = co_await connect_memory(where);
    hooks.split_reads(3);         // the client reads responses 3 bytes at a time
    hooks.peer().split_reads(3);  // the server reads requests 3 bytes at a time
    std::vector<std::string> sent;
    for (int i = 0; i < 20; ++i) {
      std::string msg = "message " + std::to_string(i);
      std::string blob(static_cast<std::size_t>(i * 37), static_cast<char>('a' + i));
      auto [ec, r] = co_await client.async_call(1, text_bytes(msg), text_bytes(blob), {}, tok);
      REQUIRE_FALSE(ec);
      CHECK(str(r.msg) == msg);
      CHECK(str(r.blob) == blob);
    }
  });
}

TEST_CASE("a connection cut under a call in flight fails the call with io_err; the server serves the next one",
          "[stream][memory]") {
  asio::io_context io;
  std::vector<server_request> held;
  basic_server<holding_dispatch, memory_transport> srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(memory_address());
  run(io, [&]() -> asio::awaitable<void> {
    auto [client, hooks] = co_await connect_memory(where);
    std::error_code result;
    bool done = false;
    client.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code ec, call_response) {
      result = ec;
      done = true;
    });
    co_await wait_until([&] { return held.size() == 1; });
    hooks.cut();
    co_await wait_until([&] { return done; });
    CHECK(result == errc::io_err);
    CHECK_FALSE(client.is_open());
    held.clear();  // answering a request of a dead connection is harmless
    auto [other, other_hooks] = co_await connect_memory(where);
    bool second = false;
    other.async_call(1, text_bytes("y"), {}, {}, [&](std::error_code ec, call_response) { second = !ec; });
    co_await wait_until([&] { return held.size() == 1; });
    held.front().respond(text_bytes("ok"));
    co_await wait_until([&] { return second; });
  });
}

TEST_CASE("a server that stalls mid-response fails the client's calls after read_timeout",
          "[stream][memory]") {
  asio::io_context io;
  memory_transport::listener raw(io.get_executor(), memory_address());
  run(io, [&]() -> asio::awaitable<void> {
    client_config cfg;
    cfg.read_timeout = 200ms;
    cfg.timeout_tick = 50ms;
    auto [client, hooks] = co_await connect_memory(raw.local_address(), cfg);
    memory_stream peer(co_await asio::this_coro::executor);
    auto aec = co_await raw.accept(peer);
    REQUIRE_FALSE(aec);
    std::error_code result;
    bool done = false;
    client.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code ec, call_response) {
      result = ec;
      done = true;
    });
    co_await wait_until([&] { return !hooks.peer().bytes_received().empty(); });
    // The first 10 bytes of the response: the frame starts and never ends.
    proto::frame_writer w;
    w.add_response(1, text_bytes("hello"));
    std::string half;
    for (auto seg : w.buffers()) half.append(seg.data(), seg.size());
    half.resize(10);
    co_await asio::async_write(peer, asio::buffer(half), asio::deferred);
    co_await wait_until([&] { return done; });
    CHECK(result == errc::io_err);
  });
}

TEST_CASE("a client's bytes on the wire are exactly the v1 request frame", "[stream][memory]") {
  asio::io_context io;
  basic_server<echo_numeric, memory_transport> srv(io.get_executor(), echo_numeric{});
  auto where = srv.listen(memory_address());
  run(io, [&]() -> asio::awaitable<void> {
    auto [client, hooks] = co_await connect_memory(where);
    auto [ec, r] = co_await client.async_call(7, text_bytes("hi"), {}, {}, tok);
    REQUIRE_FALSE(ec);
    proto::frame_writer expected;
    expected.add_request(1, 7u, text_bytes("hi"));
    std::string want;
    for (auto seg : expected.buffers()) want.append(seg.data(), seg.size());
    CHECK(hooks.peer().bytes_received() == want);
  });
}

TEST_CASE("a graceful shutdown over the in-memory transport answers the call in flight, then closes",
          "[stream][memory]") {
  asio::io_context io;
  std::vector<server_request> held;
  basic_server<holding_dispatch, memory_transport> srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(memory_address());
  run(io, [&]() -> asio::awaitable<void> {
    auto [client, hooks] = co_await connect_memory(where);
    std::error_code result{make_error_code(errc::internal)};
    std::string answer;
    client.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code ec, call_response r) {
      result = ec;
      answer = str(r.msg);
    });
    co_await wait_until([&] { return held.size() == 1; });
    bool shut = false;
    srv.async_shutdown([&](std::error_code) { shut = true; });
    co_await sleep_for(20ms);
    CHECK_FALSE(shut);  // the call in flight is still to be answered
    held.front().respond(text_bytes("late but answered"));
    held.clear();
    co_await wait_until([&] { return shut; });
    CHECK_FALSE(result);
    CHECK(answer == "late but answered");
  });
}

TEST_CASE("during a graceful shutdown over the in-memory transport a client may still write; its call in flight "
          "is answered",
          "[stream][memory]") {
  // As over a socket: the server's shutdown_receive ends its reads, and the client's later
  // writes do not fail (they are never read).
  asio::io_context io;
  std::vector<server_request> held;
  basic_server<holding_dispatch, memory_transport> srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(memory_address());
  run(io, [&]() -> asio::awaitable<void> {
    auto [client, hooks] = co_await connect_memory(where);
    std::error_code result{make_error_code(errc::internal)};
    std::string answer;
    client.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code ec, call_response r) {
      result = ec;
      answer = str(r.msg);
    });
    co_await wait_until([&] { return held.size() == 1; });
    bool shut = false;
    srv.async_shutdown([&](std::error_code) { shut = true; });
    co_await sleep_for(20ms);
    client.async_call(1, text_bytes("y"), {}, {}, [](std::error_code, call_response) {});
    co_await sleep_for(20ms);
    held.front().respond(text_bytes("answered"));
    held.clear();
    co_await wait_until([&] { return shut; });
    co_await wait_until([&] { return result != errc::internal; });
    CHECK_FALSE(result);
    CHECK(answer == "answered");
  });
}
