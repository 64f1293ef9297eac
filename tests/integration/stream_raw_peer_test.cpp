// The server against raw sockets: golden frames, malformed input, a client that never reads.
#include "test_support.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <sstream>

using namespace occams_rpc;
using namespace test;

namespace {

std::string hex_to_bytes(std::string_view hex) {
  std::string out;
  std::istringstream in{std::string(hex)};
  std::string byte;
  while (in >> byte) out.push_back(static_cast<char>(std::stoi(byte, nullptr, 16)));
  return out;
}

/// Answers the golden requests of PROTOCOL.md with the golden responses.
struct golden_dispatch {
  void operator()(server_request req) {
    if (req.action() == "Calculator.add") {
      req.respond(text_bytes("\x03"));  // msgpack 3
    } else if (!req.has_string_action() && req.numeric_action() == 3) {
      req.respond(text_bytes("\x81\xa8ret_size\x03"), req.blob());
    } else if (!req.has_string_action() && req.numeric_action() == 9) {
      req.respond_error_code(13);
    } else if (!req.has_string_action() && req.numeric_action() == 11) {
      req.respond_error_string("divide by zero");
    } else {
      req.respond_error(errc::method_not_found);
    }
  }
};

using generic_socket = asio::generic::stream_protocol::socket;


/// Sends `request` and reads exactly expected.size() bytes back.
asio::awaitable<std::string> exchange(generic_socket& s, const std::string& request, std::size_t expect) {
  co_await asio::async_write(s, asio::buffer(request), asio::deferred);
  std::string reply(expect, '\0');
  co_await asio::async_read(s, asio::buffer(reply), asio::deferred);
  co_return reply;
}

/// Reads until the peer closes; returns how many bytes came first.
asio::awaitable<std::size_t> read_until_closed(generic_socket& s) {
  std::size_t total = 0;
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(asio::deferred));
    total += n;
    if (ec) co_return total;
  }
}

}  // namespace

TEST_CASE("golden request frames sent as raw bytes get byte-exact golden answers", "[stream][protocol]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  server srv(io.get_executor(), golden_dispatch{});
  auto where = srv.listen(listen_address(use_unix));
  struct golden { const char* request; const char* response; };
  const golden cases[] = {
      // ping seq 1 -> pong seq 1
      {"25 4d 01 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
       "25 4d 01 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00"},
      // numeric action 3, seq 2, {"inode":5} + "abc" -> {"ret_size":3} + "abc"
      {"25 4d 01 00 03 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 08 00 00 00 03 00 00 00 81 a5 69 6e 6f 64 65 05 61 62 63",
       "25 4d 01 00 0b 00 00 00 02 00 00 00 00 00 00 00 03 00 00 00 81 a8 72 65 74 5f 73 69 7a 65 03 61 62 63"},
      // "Calculator.add" seq 7 [1,2] -> OK 3
      {"25 4d 01 00 0e 00 00 80 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00 43 61 6c 63 75 6c 61 74 6f 72 2e 61 64 64 92 01 02",
       "25 4d 01 00 01 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 03"},
      // numeric action 9, seq 9 -> error code 13
      {"25 4d 01 00 09 00 00 00 09 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 c0",
       "25 4d 01 01 0d 00 00 00 09 00 00 00 00 00 00 00 00 00 00 00"},
      // numeric action 5 (unknown), seq 10 -> rpc_method_notfound
      {"25 4d 01 00 05 00 00 00 0a 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 c0",
       "25 4d 01 02 00 00 00 00 0a 00 00 00 00 00 00 00 13 00 00 00 72 70 63 5f 6d 65 74 68 6f 64 5f 6e 6f 74 66 6f 75 6e 64"},
      // numeric action 11, seq 11 -> "divide by zero"
      {"25 4d 01 00 0b 00 00 00 0b 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 c0",
       "25 4d 01 02 00 00 00 00 0b 00 00 00 00 00 00 00 0e 00 00 00 64 69 76 69 64 65 20 62 79 20 7a 65 72 6f"},
  };
  run(io, [&]() -> asio::awaitable<void> {
    auto s = co_await raw_connect(where);
    for (const auto& g : cases) {
      auto expected = hex_to_bytes(g.response);
      auto reply = co_await exchange(s, hex_to_bytes(g.request), expected.size());
      CHECK(reply == expected);
    }
  });
}

TEST_CASE("a peer sending bad magic or an oversized length is disconnected while another client carries on",
          "[stream][protocol]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  server srv(io.get_executor(), golden_dispatch{}, {.max_frame_size = 4096});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto good = co_await connect(where);
    const char* bad_frames[] = {
        // bad magic
        "26 4d 01 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        // bad version
        "25 4d 02 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        // msg_len 1 GiB > max frame size: rejected on the header alone
        "25 4d 01 00 03 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 40 00 00 00 00",
    };
    for (const char* bad : bad_frames) {
      auto s = co_await raw_connect(where);
      co_await asio::async_write(s, asio::buffer(hex_to_bytes(bad)), asio::deferred);
      auto got = co_await read_until_closed(s);
      CHECK(got == 0);  // no reply, just closed
      auto [cec, r] = co_await good.async_call("Calculator.add", text_bytes("\x92\x01\x02"), {}, {}, tok);
      CHECK_FALSE(cec);
      CHECK(str(r.msg) == "\x03");
    }
  });
}

TEST_CASE("a client that half-closes still gets the answers to what it sent", "[stream][protocol]") {
  asio::io_context io;
  server srv(io.get_executor(), golden_dispatch{});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto s = co_await raw_connect(where);
    auto req = hex_to_bytes("25 4d 01 00 0e 00 00 80 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00 43 61 6c 63 75 6c 61 74 6f 72 2e 61 64 64 92 01 02");
    std::string three = req + req + req;
    co_await asio::async_write(s, asio::buffer(three), asio::deferred);
    s.shutdown(asio::socket_base::shutdown_send);
    auto got = co_await read_until_closed(s);
    CHECK(got == 3 * 21);
  });
}

TEST_CASE("a client that never reads its answers does not grow the server's memory without bound",
          "[stream][protocol]") {
  asio::io_context io;
  int dispatched = 0;
  struct counting_echo {
    int* n;
    void operator()(server_request req) {
      ++*n;
      req.respond(req.msg(), req.blob());
    }
  };
  server_config cfg{.max_pending_write = 256 * 1024};
  server srv(io.get_executor(), counting_echo{&dispatched}, cfg);
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto s = co_await raw_connect(where);
    // 16,384 requests of 4 KiB each (64 MiB): far more than socket buffers and the limit hold.
    proto::frame_writer w;
    std::string blob(4096, 'x');
    constexpr int n = 16384;
    for (int i = 1; i <= n; ++i) w.add_request(i, 1, {}, text_bytes(blob));
    std::vector<asio::const_buffer> bufs;
    for (auto b : w.buffers()) bufs.emplace_back(b.data(), b.size());
    bool write_done = false;
    asio::async_write(s, bufs, [&](auto, std::size_t) { write_done = true; });
    asio::steady_timer t(io, 1500ms);
    co_await t.async_wait(asio::deferred);
    CHECK_FALSE(write_done);  // the server stopped reading: back-pressure
    CHECK(dispatched < n);
    // What the server holds is bounded by the limit plus the socket buffers, not by what was sent.
    INFO("dispatched " << dispatched << " of " << n);
    CHECK(dispatched * 4096 < 32 * 1024 * 1024);
    s.close();
  });
}
