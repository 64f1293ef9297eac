// raw_bench's server: per connection, cut request frames and append the echo responses to
// one batch (PROTOCOL.md headers written with proto/header.hpp, nothing else of the library).
#pragma once

#include "raw_pipe.hpp"

#include <occams_rpc/proto/header.hpp>

#include <fmt/format.h>

#include <list>
#include <memory>
#include <string>
#include <string_view>

namespace bench {

namespace proto = occams_rpc::proto;

class raw_server_connection : public raw_pipe<raw_server_connection> {
 public:
  static constexpr std::size_t max_frame = 64u << 20;
  using raw_pipe::raw_pipe;

  std::size_t on_input(const char* p, std::size_t n, std::size_t& need) {
    std::size_t used = 0;
    need = 0;
    while (n - used >= proto::request_header_size) {
      const char* frame = p + used;
      proto::request_header h;
      if (auto ec = proto::decode(frame, h)) return refuse(ec.message());
      std::uint64_t total = proto::request_header_size + h.body_len();
      if (total > max_frame) return refuse("frame too large");
      if (n - used < total) {
        need = static_cast<std::size_t>(total);
        break;
      }
      answer(h, frame + proto::request_header_size + h.action_len());
      used += static_cast<std::size_t>(total);
    }
    return used;
  }

  void on_closed(const std::string&) {}

 private:
  /// Action 1: the msg and blob back. A ping: an empty answer. Else rpc_method_notfound.
  void answer(const proto::request_header& h, const char* msg) {
    auto& out = queue().bytes();
    bool ping = h.is_ping();
    bool echo = !ping && !h.has_string_action() && h.numeric_action() == 1;
    constexpr std::string_view not_found = "rpc_method_notfound";
    proto::response_header r{.seq = h.seq};
    if (ping) {
    } else if (echo) {
      r.msg_len = h.msg_len;
      r.blob_len = h.blob_len;
    } else {
      r.flag = proto::response_flag::error_string;
      r.blob_len = static_cast<std::uint32_t>(not_found.size());
    }
    proto::encode(r, out.prepare(proto::response_header_size));
    out.commit(proto::response_header_size);
    if (echo) out.append(msg, std::size_t{h.msg_len} + h.blob_len);  // the input buffer is reused: copy
    else if (!ping) out.append(not_found);
  }

  std::size_t refuse(const std::string& why) {
    fmt::print(stderr, "raw_bench server: closing a connection: {}\n", why);
    return bad_input;
  }
};

/// Accepts for ever; the connections live until the server exits.
class raw_server {
 public:
  void accept_on(raw_acceptor& a, bool tcp) {
    a.async_accept([this, &a, tcp](boost::system::error_code ec, raw_socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        configure(s, tcp);
        connections_.push_back(std::make_unique<raw_server_connection>(std::move(s)));
        connections_.back()->start();
      }
      accept_on(a, tcp);
    });
  }
  void close_all() {
    for (auto& c : connections_) c->close();
  }

 private:
  std::list<std::unique_ptr<raw_server_connection>> connections_;
};

}  // namespace bench
