#pragma once

#include <occams_rpc/naming/detail/etcd_http.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace occams_rpc::naming::detail {

OCCAMS_RPC_DECL boost::asio::awaitable<bool> etcd_post(boost::beast::tcp_stream& stream, const etcd_target& where,
                                                       std::string_view target, std::string body,
                                                       const post_options& opt,
                                                       const std::function<bool(std::string_view)>& on_message,
                                                       std::string& why, bool* idle_expired) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  using asio::ip::tcp;
  constexpr auto tok = asio::as_tuple(asio::use_awaitable);
  auto fail = [&](std::string_view step, const boost::system::error_code& ec) {
    why = std::string(step) + ": " + ec.message();
    return false;
  };

  stream.expires_after(opt.timeout);
  // An IP literal needs no resolver (which has no timeout of its own).
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(where.host, ec);
  if (!ec) {
    auto [cec] = co_await stream.async_connect(tcp::endpoint(ip, where.port), tok);
    if (cec) co_return fail("connect to etcd", cec);
  } else {
    tcp::resolver resolver(stream.get_executor());
    auto [rec, results] = co_await resolver.async_resolve(where.host, std::to_string(where.port), tok);
    if (rec) co_return fail("resolve " + where.host, rec);
    auto [cec, ep] = co_await stream.async_connect(results, tok);
    if (cec) co_return fail("connect to etcd", cec);
  }

  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, where.host + ":" + std::to_string(where.port));
  req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  if (auto [wec, n] = co_await http::async_write(stream, req, tok); wec) co_return fail("send to etcd", wec);

  beast::flat_buffer buf(opt.max_header + 64 * 1024);  // bounded: a longer header fails
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(opt.max_header));
  parser.body_limit(boost::none);  // bounded per message below; a watch's body has no end
  if (auto [hec, n] = co_await http::async_read_header(stream, buf, parser, tok); hec)
    co_return fail("read etcd's response header", hec);
  const unsigned status = parser.get().result_int();

  std::string pending;
  char chunk[8192];
  bool stopped_early = false;
  auto take_messages = [&](bool at_end) {
    for (;;) {
      auto nl = pending.find('\n');
      if (nl == std::string::npos && !at_end) return true;
      std::string_view msg(pending.data(), nl == std::string::npos ? pending.size() : nl);
      while (!msg.empty() && (msg.back() == '\r' || msg.back() == ' ')) msg.remove_suffix(1);
      bool go_on = msg.empty() || status != 200 || on_message(msg);
      if (status != 200 && !msg.empty()) why = std::string(msg.substr(0, 300));
      pending.erase(0, nl == std::string::npos ? pending.size() : nl + 1);
      if (!go_on) return stopped_early = true, false;
      if (nl == std::string::npos) return true;
    }
  };
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    if (opt.idle) stream.expires_after(*opt.idle);
    auto [rec, n] = co_await http::async_read_some(stream, buf, parser, tok);
    if (rec == http::error::need_buffer) rec = {};
    if (rec) {
      if (rec == beast::error::timeout && opt.idle && idle_expired) *idle_expired = true;
      co_return fail("read etcd's response", rec);
    }
    pending.append(chunk, sizeof chunk - parser.get().body().size);
    if (!take_messages(false)) break;
    if (pending.size() > opt.max_message) {
      why = "a message from etcd is longer than " + std::to_string(opt.max_message) + " bytes";
      co_return false;
    }
  }
  if (!stopped_early) take_messages(true);
  stream.expires_never();
  if (status != 200) {
    why = "etcd answered HTTP " + std::to_string(status) + (why.empty() ? "" : ": " + why);
    co_return false;
  }
  co_return true;
}

OCCAMS_RPC_DECL boost::asio::awaitable<bool> etcd_call(boost::asio::any_io_executor ex, const etcd_target& where,
                                                       std::string_view target, std::string body,
                                                       const naming_config& cfg, std::function<void()>& abort_io,
                                                       std::string& out, std::string& why) {
  auto stream = std::make_shared<boost::beast::tcp_stream>(ex);
  abort_io = [stream] { stream->close(); };
  out.clear();
  bool got = false;
  post_options opt{cfg.request_timeout, std::nullopt, cfg.max_header_bytes, cfg.max_response_bytes};
  bool ok = co_await etcd_post(*stream, where, target, std::move(body), opt,
                               [&](std::string_view m) {
                                 out = std::string(m);
                                 got = true;
                                 return false;  // one message (a keep-alive stream says no more)
                               },
                               why);
  abort_io = nullptr;
  if (ok && !got) why = "empty response from etcd", ok = false;
  co_return ok;
}

}  // namespace occams_rpc::naming::detail
