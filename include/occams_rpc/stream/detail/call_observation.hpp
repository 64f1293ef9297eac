// What the I/O shells tell a call_observer (metrics/call_observer.hpp): the pieces of a call
// they measure, kept per call only while an observer is set.
#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/metrics/call_observer.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/proto/header.hpp>
#include <occams_rpc/session/server_session.hpp>
#include <occams_rpc/stream/call_response.hpp>

#include <chrono>
#include <span>
#include <system_error>

namespace occams_rpc::detail {

/// A request as an observer sees it (server side).
inline call_info observed_request(const session::request_slot& s) noexcept {
  call_info c;
  c.side = call_side::server;
  if (s.header.has_string_action()) c.action = s.action.view();
  else c.numeric_action = s.header.numeric_action();
  c.seq = s.header.seq;
  c.request_bytes = proto::request_header_size + s.action.size() + s.msg.size() + s.blob.size();
  return c;
}

/// The outcome of an answer set in a slot (flag, error code, string).
inline std::error_code observed_outcome(const session::request_slot& s) noexcept {
  switch (s.flag) {
    case proto::response_flag::ok: return {};
    case proto::response_flag::error_code: return {static_cast<int>(s.error_code), remote_category()};
    case proto::response_flag::error_string: break;
  }
  if (auto e = from_wire_string(s.resp_msg.view())) return make_error_code(*e);
  return make_error_code(errc::remote_error);
}

/// The response frame's size for an answer set in a slot.
inline std::size_t observed_answer_bytes(const session::request_slot& s) noexcept {
  switch (s.flag) {
    case proto::response_flag::ok: return proto::response_header_size + s.resp_msg.size() + s.resp_blob.size();
    case proto::response_flag::error_code: return proto::response_header_size;
    case proto::response_flag::error_string: break;
  }
  return proto::response_header_size + s.resp_msg.size();
}

/// A client call's start, kept with its handler while an observer is set.
struct client_observation {
  proto::action act{0u};
  std::chrono::steady_clock::time_point started{};
  std::size_t request_bytes = 0;

  void start(proto::action a, std::span<const char> msg, std::span<const char> blob) noexcept {
    act = a;
    started = std::chrono::steady_clock::now();
    request_bytes = proto::request_header_size + (a.is_name() ? a.name().size() : 0) + msg.size() + blob.size();
  }
  call_info info(std::uint64_t seq) const noexcept {
    call_info c;
    c.side = call_side::client;
    if (act.is_name()) c.action = act.name();
    else c.numeric_action = act.number();
    c.seq = seq;
    c.request_bytes = request_bytes;
    return c;
  }
  /// The end of the call `seq` with `ec`, after a response frame of `response_bytes` (0: none
  /// came: a timeout, a cancel, a lost connection).
  void end(call_observer& o, std::uint64_t seq, std::error_code ec, std::size_t response_bytes) const noexcept {
    call_info c = info(seq);
    c.duration = std::chrono::steady_clock::now() - started;
    c.outcome = ec;
    c.response_bytes = response_bytes;
    o.on_call_end(c);
  }
};

}  // namespace occams_rpc::detail
