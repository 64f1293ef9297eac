// Drives the calculator_server program with raw bytes, as a client in another language would,
// and checks its answers byte for byte (PROTOCOL.md). The program's path comes in the
// environment variable CALCULATOR_SERVER.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include "child_process.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace asio = boost::asio;

namespace {

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_le(std::string_view in, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

/// A request with a string action (32-byte header, then action, msg).
std::string request(std::uint64_t seq, std::string_view action, std::string_view msg) {
  std::string f = "\x25\x4d\x01";
  f.push_back('\0');
  put_le(f, action.empty() ? 0 : (0x8000'0000u | action.size()), 4);
  put_le(f, seq, 8);
  put_le(f, 0, 8);  // client id
  put_le(f, msg.size(), 4);
  put_le(f, 0, 4);  // blob
  return f.append(action).append(msg);
}

/// A response (20-byte header, then the body). Flag 0: OK, the body is the msg. Flag 1: an
/// error code, in the msg length's place, no body. Flag 2: an error string, in the blob's place.
std::string response(std::uint64_t seq, int flag, std::string_view body, std::uint32_t code = 0) {
  std::string f = "\x25\x4d\x01";
  f.push_back(static_cast<char>(flag));
  put_le(f, flag == 0 ? body.size() : flag == 1 ? code : 0, 4);
  put_le(f, seq, 8);
  put_le(f, flag == 2 ? body.size() : 0, 4);
  return f.append(flag == 1 ? std::string_view{} : body);
}

}  // namespace

TEST_CASE("calculator_server answers raw frames byte for byte, framework errors included", "[examples][api]") {
  const char* exe = std::getenv("CALCULATOR_SERVER");
  REQUIRE(exe);
  server_process server({exe, "--listen", "127.0.0.1:0"});
  auto colon = server.address.rfind(':');
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect({asio::ip::make_address(server.address.substr(0, colon)),
                static_cast<unsigned short>(std::stoi(server.address.substr(colon + 1)))});

  // seq -> (request, the exact answer expected)
  std::map<std::uint64_t, std::pair<std::string, std::string>> calls = {
      {1, {request(1, "CalService.add", "\x92\x01\x02"), response(1, 0, "\x03")}},
      {2, {request(2, "CalService.inc", "\x29"), response(2, 0, "\x2a")}},
      {3, {request(3, "CalService.div", std::string("\x92\x01\x00", 3)), response(3, 2, "divide by zero")}},
      {4, {request(4, "EchoService.repeat", "\xa2hi"), response(4, 0, "\xa2hi")}},
      {5, {request(5, "EchoService.io_error", "\xa1x"), response(5, 1, "", 5)}},
      {6, {request(6, "NoService.add", "\x92\x01\x02"), response(6, 2, "rpc_service_notfound")}},
      {7, {request(7, "CalService.mul", "\x92\x01\x02"), response(7, 2, "rpc_method_notfound")}},
      {8, {request(8, "CalService.add", "\xa1x"), response(8, 2, "rpc_decode")}},
      {9, {request(9, "", ""), response(9, 0, "")}},  // ping
  };
  std::string all;
  for (auto& [seq, c] : calls) all += c.first;
  asio::write(sock, asio::buffer(all));

  // Answers may come in any order (repeat is a coroutine): match them by seq.
  for (std::size_t n = 0; n < calls.size(); ++n) {
    std::string head(20, '\0');
    asio::read(sock, asio::buffer(head));
    int flag = head[3];
    std::size_t body = (flag == 1 ? 0 : get_le(std::string_view(head).substr(4), 4)) + get_le(std::string_view(head).substr(16), 4);
    std::string rest(body, '\0');
    if (body) asio::read(sock, asio::buffer(rest));
    std::uint64_t seq = get_le(std::string_view(head).substr(8), 8);
    INFO("seq " << seq);
    REQUIRE(calls.count(seq) == 1);
    CHECK(head + rest == calls[seq].second);
    calls.erase(seq);
  }
  sock.close();
  int status = server.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
