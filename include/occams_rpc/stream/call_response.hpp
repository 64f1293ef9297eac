// What a call completes with: the response's msg and blob, in buffers the caller may hand
// back to the next call so that steady-state calls allocate nothing.
#pragma once

#include <occams_rpc/core/buffer.hpp>
#include <occams_rpc/proto/header.hpp>

#include <string_view>

namespace occams_rpc {

struct call_response {
  byte_buffer msg;   ///< OK: the msg. errc::remote_error: the peer's error string.
  byte_buffer blob;  ///< OK: the blob.
  proto::response_flag flag = proto::response_flag::ok;

  /// The peer's error string when the call failed with errc::remote_error (flag 2).
  std::string_view error_string() const noexcept {
    return flag == proto::response_flag::error_string ? msg.view() : std::string_view{};
  }
};

}  // namespace occams_rpc
