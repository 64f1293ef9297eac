// Error codes: the framework errors of the wire protocol and the library's local errors.
#pragma once

#include <occams_rpc/detail/config.hpp>

#include <optional>
#include <string_view>
#include <system_error>

namespace occams_rpc {

/// Framework errors. The first nine travel on the wire as the exact strings `rpc_*` (see
/// PROTOCOL.md, in this order); the rest are local and never sent.
enum class errc : int {
  // --- wire errors (values 1..9 in protocol order) ---
  unreachable = 1,     ///< rpc_unreachable (retriable): no connection to the peer
  io_err,              ///< rpc_io_err (retriable): the connection failed mid-call
  timeout,             ///< rpc_timeout (retriable): no response within the call timeout
  method_not_found,    ///< rpc_method_notfound
  service_not_found,   ///< rpc_service_notfound
  encode,              ///< rpc_encode: a value could not be encoded
  decode,              ///< rpc_decode: bytes could not be decoded
  internal,            ///< rpc_internal_err: a handler failed unexpectedly
  invalid_version,     ///< rpc_invalid_ver
  // --- local errors (never on the wire) ---
  frame_too_large = 100,  ///< a frame's lengths exceed the configured maximum
  bad_magic,              ///< a frame does not start with the protocol magic
  bad_version,            ///< a frame carries an unknown protocol version
  bad_frame,              ///< a frame is malformed in another way (bad flag, lengths)
  closed,                 ///< the connection or server is closed or closing
  overloaded,             ///< a bounded queue is full and the caller asked not to wait
  invalid_config,         ///< a configuration value is out of range
  invalid_address,        ///< an address could not be parsed
  cancelled,              ///< the operation was cancelled by its caller
  remote_error,           ///< the peer answered with a user error string (flag 2)
  too_many_redirects,     ///< a failover_pool call was redirected more than max_redirects times
  // --- TLS (docs/tls.md, "Errors"): a certificate or set-up problem, never retried ---
  tls_untrusted_certificate = 200,  ///< a certificate is not signed by a CA its verifier trusts
  tls_certificate_expired,          ///< a certificate has expired (or is not valid yet)
  tls_hostname_mismatch,            ///< the server's certificate is not for the name asked for
  tls_missing_client_certificate,   ///< mutual TLS: the client sent no certificate
  tls_plaintext_peer,               ///< a plaintext client on a TLS port (seen by the server)
  tls_not_tls_server,               ///< a TLS client on a plaintext port (seen by the client)
  tls_handshake_failed,  ///< any other handshake failure (no common version or cipher, a bad record...);
                         ///< the log line names OpenSSL's reason
  tls_certificate_refused,          ///< the peer refused this side's certificate (bad, unsupported, revoked)
};

/// The category of integer user errors sent by a peer (flag-1 responses, errno-like codes):
/// std::error_code(5, remote_category()) is the peer's EIO. Named "occams_rpc.remote".
OCCAMS_RPC_DECL const std::error_category& remote_category() noexcept;

/// The category of `errc`; its name is "occams_rpc".
OCCAMS_RPC_DECL const std::error_category& rpc_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), rpc_category()};
}

/// True for the errors a retry may cure: unreachable, io_err, timeout.
constexpr bool is_retriable(errc e) noexcept {
  return e == errc::unreachable || e == errc::io_err || e == errc::timeout;
}
/// True when `ec` is one of the retriable framework errors.
OCCAMS_RPC_DECL bool is_retriable(const std::error_code& ec) noexcept;

/// True for the TLS errors (tls_*): a certificate or configuration problem that a retry on
/// another connection would meet again.
constexpr bool is_tls_error(errc e) noexcept {
  return static_cast<int>(e) >= static_cast<int>(errc::tls_untrusted_certificate) &&
         static_cast<int>(e) <= static_cast<int>(errc::tls_certificate_refused);
}

/// True for the nine errors that have a wire name.
constexpr bool is_wire_error(errc e) noexcept {
  return static_cast<int>(e) >= 1 && static_cast<int>(e) <= 9;
}

/// The exact wire string of a wire error (`rpc_timeout`...), or "" for a local error.
OCCAMS_RPC_DECL std::string_view to_wire_string(errc e) noexcept;

/// The framework error a wire string names, or nothing if the string is a user error.
OCCAMS_RPC_DECL std::optional<errc> from_wire_string(std::string_view s) noexcept;

/// The wire error to answer with for any local error code (anything foreign maps to
/// `internal`).
OCCAMS_RPC_DECL errc to_wire_error(const std::error_code& ec) noexcept;

}  // namespace occams_rpc

template <>
struct std::is_error_code_enum<occams_rpc::errc> : std::true_type {};

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/core/impl/error.ipp>
#endif
