// Views of one decoded frame. They point into the reader's buffer and stay valid until the
// reader is next asked for room to read into.
#pragma once

#include <occams_rpc/proto/header.hpp>

#include <span>
#include <string_view>

namespace occams_rpc::proto {

struct request_frame {
  request_header header;
  std::string_view action;       ///< the action string; empty for a numeric action
  std::span<const char> msg;
  std::span<const char> blob;

  bool is_ping() const noexcept { return header.is_ping(); }
};

struct response_frame {
  response_header header;
  std::span<const char> msg;   ///< flag ok
  std::span<const char> blob;  ///< flag ok: the blob; flag error_string: the error string

  bool ok() const noexcept { return header.flag == response_flag::ok; }
  std::string_view error_string() const noexcept { return {blob.data(), blob.size()}; }
};

}  // namespace occams_rpc::proto
