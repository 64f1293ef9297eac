// raw_bench's server: per connection, cut request frames in the receive buffer and answer
// them there (PROTOCOL.md headers written with proto/header.hpp, nothing else of the library).
// An answer is never larger than its request (a 20-byte header for a 32-byte one), so:
//   - a small echo (or a pong) is moved forward to the end of the previous answer, so that
//     the answers to a read's run of small frames form one contiguous iovec;
//   - a large echo (4 KiB or more) is answered where it lies: its response header is written
//     over the last 20 bytes before its msg, and the write references it (no copy at all).
// The rare answer that does not fit (rpc_method_notfound) is copied into the output queue.
#pragma once

#include "raw_pipe.hpp"

#include <occams_rpc/proto/header.hpp>

#include <fmt/format.h>

#include <cstring>
#include <list>
#include <memory>
#include <string>
#include <string_view>

namespace bench {

namespace proto = occams_rpc::proto;

class raw_server_connection : public raw_pipe<raw_server_connection> {
 public:
  static constexpr bool output_refers_to_input = true;
  static constexpr std::size_t max_frame = 64u << 20;
  static constexpr std::size_t in_place = 4096;  // echoes this large are written where they lie
  using raw_pipe::raw_pipe;

  std::size_t on_input(char* p, std::size_t n, std::size_t& need) {
    std::size_t used = 0;
    need = 0;
    char* run_end = nullptr;  // where the next moved answer goes (null: at its own frame)
    while (n - used >= proto::request_header_size) {
      char* frame = p + used;
      proto::request_header h;
      if (auto ec = proto::decode(frame, h)) return refuse(ec.message());
      std::uint64_t total = proto::request_header_size + h.body_len();
      if (total > max_frame) return refuse("frame too large");
      if (n - used < total) {
        need = static_cast<std::size_t>(total);
        break;
      }
      answer(h, frame, run_end);
      used += static_cast<std::size_t>(total);
    }
    return used;
  }

  void on_closed(const std::string&) {}

 private:
  /// Action 1: the msg and blob back. A ping: an empty answer. Else rpc_method_notfound.
  void answer(const proto::request_header& h, char* frame, char*& run_end) {
    bool ping = h.is_ping();
    bool echo = !ping && !h.has_string_action() && h.numeric_action() == 1;
    proto::response_header r{.seq = h.seq};
    if (!ping && !echo) {
      constexpr std::string_view not_found = "rpc_method_notfound";
      r.flag = proto::response_flag::error_string;
      r.blob_len = static_cast<std::uint32_t>(not_found.size());
      char head[proto::response_header_size];
      proto::encode(r, head);
      out().copy(head, sizeof head);
      out().copy(not_found.data(), not_found.size());
      run_end = nullptr;
      return;
    }
    std::size_t body = echo ? std::size_t{h.msg_len} + h.blob_len : 0;
    char* msg = frame + proto::request_header_size + h.action_len();
    r.msg_len = echo ? h.msg_len : 0;
    r.blob_len = echo ? h.blob_len : 0;
    if (body >= in_place) {  // the header goes just before the msg: the answer is the frame's tail
      proto::encode(r, msg - proto::response_header_size);
      out().add(msg - proto::response_header_size, proto::response_header_size + body);
      run_end = nullptr;
      return;
    }
    // Forward, after the previous answer: dest + 20 <= frame + 20 < msg, so the header
    // written at dest never meets the body still to be read.
    char* dest = run_end ? run_end : frame;
    std::memmove(dest + proto::response_header_size, msg, body);
    proto::encode(r, dest);
    out().add(dest, proto::response_header_size + body);
    run_end = dest + proto::response_header_size + body;
  }

  std::size_t refuse(const std::string& why) {
    fmt::print(stderr, "raw_bench server: closing a connection: {}\n", why);
    return bad_input;
  }
};

/// Accepts for ever; the connections live until the server exits.
class raw_server {
 public:
  explicit raw_server(raw_loop& loop) : loop_(loop) {}

  void listen(raw_fd l, bool tcp) {
    listeners_.emplace_back(std::move(l), tcp, this);
    loop_.add(listeners_.back().fd.get(), &listeners_.back(), EPOLLIN);
  }
  void close_all() {
    for (auto& l : listeners_) l.fd.reset();
    for (auto& c : connections_) c->close();
  }

 private:
  struct listener : raw_loop::handler {
    raw_fd fd;
    bool tcp;
    raw_server* srv;
    listener(raw_fd f, bool t, raw_server* s) : fd(std::move(f)), tcp(t), srv(s) {}
    void on_event(std::uint32_t) final { srv->accept(*this); }
  };

  void accept(listener& l) {
    for (;;) {
      int fd = ::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) fmt::print(stderr, "raw_bench server: accept: {}\n", std::strerror(errno));
        return;
      }
      raw_fd s(fd);
      configure(s.get(), l.tcp);
      connections_.push_back(std::make_unique<raw_server_connection>(loop_, std::move(s)));
      connections_.back()->start();
    }
  }

  raw_loop& loop_;
  std::list<listener> listeners_;
  std::list<std::unique_ptr<raw_server_connection>> connections_;
};

}  // namespace bench
