// What a TLS transport is built from: certificates, keys and trust, for a server or a client
// (docs/tls.md). Aggregates: use designated initializers.
#pragma once

#include <chrono>
#include <string>

namespace occams_rpc {

/// PEM data, from a file or in memory (set one of the two).
struct tls_pem {
  std::string file;  ///< path of a PEM file
  std::string pem;   ///< or the PEM text itself

  bool empty() const noexcept { return file.empty() && pem.empty(); }
  static tls_pem from_file(std::string path) { return {std::move(path), {}}; }
  static tls_pem from_memory(std::string text) { return {{}, std::move(text)}; }
};

/// A TLS server: its certificate and key, and, for mutual TLS, the CA its clients' certificates
/// must be signed by. TLS 1.2 is the oldest version accepted.
struct tls_server_options {
  tls_pem certificate_chain;  ///< the server's certificate, then any intermediates (required)
  tls_pem private_key;        ///< the certificate's private key, unencrypted (required)
  /// When set, every client must present a certificate signed by this CA (mutual TLS); a client
  /// without one fails its handshake (errc::tls_missing_client_certificate on both sides).
  tls_pem client_ca;
  /// A graceful close sends close_notify and waits this long for the peer's (default 1 s),
  /// then closes the socket either way: a silent peer never holds a close up for longer.
  std::chrono::milliseconds close_notify_timeout = std::chrono::seconds{1};

  /// From PEM files, as command lines name them; mutual TLS when `client_ca_file` is set.
  static tls_server_options from_files(std::string cert_file, std::string key_file, std::string client_ca_file = {}) {
    tls_server_options o{tls_pem::from_file(std::move(cert_file)), tls_pem::from_file(std::move(key_file))};
    if (!client_ca_file.empty()) o.client_ca = tls_pem::from_file(std::move(client_ca_file));
    return o;
  }
};

/// A TLS client: whom it trusts, which name it expects, and optionally its own certificate.
struct tls_client_options {
  /// The CA the server's certificate must be signed by; empty: the system's store
  /// (/etc/ssl/certs on Debian).
  tls_pem ca;
  /// The name sent as SNI and checked against the server's certificate (a DNS name or an IP
  /// address, matched against its subjectAltName). Empty: the host of the address connected to.
  std::string server_name;
  /// Check the server's certificate against server_name (on by default). Turning it off
  /// accepts any certificate the CA signed, for any name.
  bool verify_hostname = true;
  tls_pem certificate_chain;  ///< the client's certificate, for mutual TLS (optional)
  tls_pem private_key;        ///< its private key (with certificate_chain)
  /// TLS 1.3, when the server asked for the certificate (mutual TLS, full handshake): the
  /// server checks it only after the client's handshake is over, so the connect sends a ping
  /// and waits for its answer (within the connect timeout); a certificate the server refuses
  /// then fails the connect with its tls_* error. One round trip more per such connect
  /// (docs/tls.md). Off: the connect succeeds and the refusal shows at the first call, as
  /// errc::io_err, which failover_pool retries.
  bool confirm_client_certificate = true;
  /// As tls_server_options::close_notify_timeout.
  std::chrono::milliseconds close_notify_timeout = std::chrono::seconds{1};

  /// From PEM files, as command lines name them: the CA to trust (empty: the system's store),
  /// a client certificate and key when `cert_file` is set, the server name (empty: the host).
  static tls_client_options from_files(std::string ca_file, std::string cert_file = {}, std::string key_file = {},
                                       std::string server_name = {}) {
    tls_client_options o;
    if (!ca_file.empty()) o.ca = tls_pem::from_file(std::move(ca_file));
    o.server_name = std::move(server_name);
    if (!cert_file.empty()) {
      o.certificate_chain = tls_pem::from_file(std::move(cert_file));
      o.private_key = tls_pem::from_file(std::move(key_file));
    }
    return o;
  }
};

}  // namespace occams_rpc
