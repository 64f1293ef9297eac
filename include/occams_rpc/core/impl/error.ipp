#pragma once

#include <occams_rpc/core/error.hpp>

#include <array>
#include <string>

namespace occams_rpc {
namespace detail {

inline constexpr std::array<std::string_view, 9> wire_error_names = {
    "rpc_unreachable",    "rpc_io_err",       "rpc_timeout",
    "rpc_method_notfound", "rpc_service_notfound", "rpc_encode",
    "rpc_decode",         "rpc_internal_err", "rpc_invalid_ver"};

class rpc_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "occams_rpc"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unreachable: return "peer unreachable (rpc_unreachable)";
      case errc::io_err: return "connection I/O error (rpc_io_err)";
      case errc::timeout: return "call timed out (rpc_timeout)";
      case errc::method_not_found: return "method not found (rpc_method_notfound)";
      case errc::service_not_found: return "service not found (rpc_service_notfound)";
      case errc::encode: return "encode failed (rpc_encode)";
      case errc::decode: return "decode failed (rpc_decode)";
      case errc::internal: return "internal error in the handler (rpc_internal_err)";
      case errc::invalid_version: return "invalid protocol version (rpc_invalid_ver)";
      case errc::frame_too_large: return "frame exceeds the maximum frame size";
      case errc::bad_magic: return "frame has a bad magic number";
      case errc::bad_version: return "frame has an unknown protocol version";
      case errc::bad_frame: return "malformed frame";
      case errc::closed: return "connection closed";
      case errc::overloaded: return "queue full";
      case errc::invalid_config: return "invalid configuration";
      case errc::invalid_address: return "invalid address";
      case errc::cancelled: return "operation cancelled";
      case errc::remote_error: return "the peer answered with a user error string";
      case errc::too_many_redirects: return "too many redirects (failover_config::max_redirects)";
      case errc::tls_untrusted_certificate:
        return "TLS: a certificate was refused: it is not signed by a CA the verifying side trusts";
      case errc::tls_certificate_expired: return "TLS: a certificate was refused: it has expired or is not valid yet";
      case errc::tls_hostname_mismatch: return "TLS: the server's certificate does not match the server name";
      case errc::tls_missing_client_certificate:
        return "TLS: the server requires a client certificate (mutual TLS) and none was sent";
      case errc::tls_plaintext_peer: return "TLS: the peer sent plaintext to a TLS port";
      case errc::tls_not_tls_server: return "TLS: the server did not answer the TLS handshake (a plaintext port?)";
      case errc::tls_handshake_failed: return "TLS: handshake failed";
      case errc::tls_certificate_refused:
        return "TLS: the peer refused this side's certificate (bad, unsupported, revoked or unknown)";
    }
    return "unknown occams_rpc error " + std::to_string(ev);
  }
};

class remote_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "occams_rpc.remote"; }
  std::string message(int ev) const override {
    return "remote error " + std::to_string(ev) + " (" + std::generic_category().message(ev) + ")";
  }
};

}  // namespace detail

OCCAMS_RPC_DECL const std::error_category& remote_category() noexcept {
  static const detail::remote_category_impl instance;
  return instance;
}

OCCAMS_RPC_DECL const std::error_category& rpc_category() noexcept {
  static const detail::rpc_category_impl instance;
  return instance;
}

OCCAMS_RPC_DECL bool is_retriable(const std::error_code& ec) noexcept {
  return ec.category() == rpc_category() && is_retriable(static_cast<errc>(ec.value()));
}

OCCAMS_RPC_DECL std::string_view to_wire_string(errc e) noexcept {
  return is_wire_error(e) ? detail::wire_error_names[static_cast<int>(e) - 1] : std::string_view{};
}

OCCAMS_RPC_DECL std::optional<errc> from_wire_string(std::string_view s) noexcept {
  if (!s.starts_with("rpc_")) return std::nullopt;
  for (std::size_t i = 0; i < detail::wire_error_names.size(); ++i)
    if (detail::wire_error_names[i] == s) return static_cast<errc>(i + 1);
  return std::nullopt;
}

OCCAMS_RPC_DECL errc to_wire_error(const std::error_code& ec) noexcept {
  if (ec.category() != rpc_category()) return errc::internal;
  auto e = static_cast<errc>(ec.value());
  if (is_wire_error(e)) return e;
  switch (e) {
    case errc::frame_too_large:
    case errc::bad_magic:
    case errc::bad_frame: return errc::decode;
    case errc::bad_version: return errc::invalid_version;
    case errc::closed: return errc::io_err;
    default: return errc::internal;
  }
}

}  // namespace occams_rpc
