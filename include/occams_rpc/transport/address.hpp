// Addresses: "host:port", "[v6]:port", "/abs/path" or "unix:/path" (a Unix-domain socket).
#pragma once

#include <occams_rpc/core/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace occams_rpc {

struct address {
  enum class kind { tcp, unix_socket };
  kind type = kind::tcp;
  std::string host;       ///< tcp: host name or IP literal (without brackets)
  std::uint16_t port = 0; ///< tcp: 0 asks the system for a free port when listening
  std::string path;       ///< unix_socket: file system path

  bool is_unix() const noexcept { return type == kind::unix_socket; }
  /// "127.0.0.1:80", "[::1]:80" or "unix:/tmp/x.sock".
  OCCAMS_RPC_DECL std::string to_string() const;

  static address tcp(std::string host, std::uint16_t port) { return {kind::tcp, std::move(host), port, {}}; }
  static address unix_socket(std::string path) { return {kind::unix_socket, {}, 0, std::move(path)}; }
  friend bool operator==(const address&, const address&) = default;
};

/// Parses an address; fails with errc::invalid_address.
OCCAMS_RPC_DECL std::error_code parse_address(std::string_view text, address& out);
/// Parses an address; throws std::system_error(errc::invalid_address) with the text.
OCCAMS_RPC_DECL address parse_address(std::string_view text);

}  // namespace occams_rpc

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/transport/impl/address.ipp>
#endif
