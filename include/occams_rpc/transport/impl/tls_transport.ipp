#pragma once

#include <occams_rpc/transport/tls_transport.hpp>

#include <occams_rpc/proto/header.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <mutex>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace occams_rpc {
namespace detail {

[[noreturn]] inline void tls_config_failed(const char* what, const boost::system::error_code& ec) {
  throw std::system_error(make_error_code(errc::invalid_config), std::string("TLS: ") + what + ": " + ec.message());
}

inline void use_certificate(asio::ssl::context& ctx, const tls_pem& chain, const tls_pem& key) {
  boost::system::error_code ec;
  if (!chain.file.empty()) ctx.use_certificate_chain_file(chain.file, ec);
  else ctx.use_certificate_chain(asio::buffer(chain.pem), ec);
  if (ec) tls_config_failed("cannot load the certificate chain", ec);
  if (!key.file.empty()) ctx.use_private_key_file(key.file, asio::ssl::context::pem, ec);
  else ctx.use_private_key(asio::buffer(key.pem), asio::ssl::context::pem, ec);
  if (ec) tls_config_failed("cannot load the private key", ec);
  if (::SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    tls_config_failed("the private key does not match the certificate",
                      boost::system::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()));
}

inline void trust(asio::ssl::context& ctx, const tls_pem& ca) {
  boost::system::error_code ec;
  if (!ca.file.empty()) ctx.load_verify_file(ca.file, ec);
  else ctx.add_certificate_authority(asio::buffer(ca.pem), ec);
  if (ec) tls_config_failed("cannot load the CA certificate", ec);
}

/// The context both sides start from: TLS 1.2 at least, no compression.
inline std::shared_ptr<asio::ssl::context> make_tls_context(asio::ssl::context::method m) {
  auto ctx = std::make_shared<asio::ssl::context>(m);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  ::SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  return ctx;
}

/// What a client's handshake noted about the server's certificate request (ex data bits).
enum : std::uintptr_t { tls_certificate_asked = 1, tls_certificate_missing = 2 };
inline int tls_certificate_request_index() {
  static const int index = ::SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
inline std::uintptr_t certificate_request_notes(SSL* ssl) {
  return reinterpret_cast<std::uintptr_t>(::SSL_get_ex_data(ssl, tls_certificate_request_index()));
}
inline void note_certificate_request(SSL* ssl, std::uintptr_t bits) {
  ::SSL_set_ex_data(ssl, tls_certificate_request_index(), reinterpret_cast<void*>(certificate_request_notes(ssl) | bits));
}
/// OpenSSL calls it on a client when the server asks for a certificate (with or without one).
inline int on_certificate_request(SSL* ssl, void*) {
  note_certificate_request(ssl, tls_certificate_asked);
  return 1;
}
/// ... and this one after it, when the client has no certificate to send.
inline int on_certificate_missing(SSL* ssl, X509**, EVP_PKEY**) {
  note_certificate_request(ssl, tls_certificate_missing);
  return 0;  // no certificate to send
}

/// A client's sessions for resumption: the last one each address gave (one per address the
/// transport connects to; shared by the threads its connections run on).
struct tls_session_cache {
  std::mutex mutex;
  std::map<std::string, SSL_SESSION*> by_peer;

  tls_session_cache() = default;
  tls_session_cache(const tls_session_cache&) = delete;
  ~tls_session_cache() {
    for (auto& entry : by_peer) ::SSL_SESSION_free(entry.second);
  }
  void put(const std::string& peer, SSL_SESSION* s) {
    std::lock_guard lock(mutex);
    SSL_SESSION*& slot = by_peer[peer];
    if (slot) ::SSL_SESSION_free(slot);
    slot = s;
  }
  void offer(const std::string& peer, SSL* ssl) {
    std::lock_guard lock(mutex);
    if (auto it = by_peer.find(peer); it != by_peer.end()) ::SSL_set_session(ssl, it->second);
  }
};

inline void free_peer_key(void*, void* key, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(key); }
/// Which address (and name) a client connection is for: the cache's key.
inline int tls_peer_key_index() {
  static const int index = ::SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_peer_key);
  return index;
}
inline void free_session_cache(void*, void* cache, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<tls_session_cache*>(cache);
}
/// The client context's cache, freed with the context: a connection still closing may
/// outlive the transport, and OpenSSL keeps the context alive for it.
inline int tls_cache_index() {
  static const int index = ::SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_session_cache);
  return index;
}
inline tls_session_cache* session_cache(SSL_CTX* ctx) {
  return static_cast<tls_session_cache*>(::SSL_CTX_get_ex_data(ctx, tls_cache_index()));
}

/// OpenSSL's new-session callback: keeps the session (TLS 1.3: a ticket read after the
/// handshake) for the next connection to the same address.
inline int keep_session(SSL* ssl, SSL_SESSION* s) {
  auto* cache = session_cache(::SSL_get_SSL_CTX(ssl));
  auto* key = static_cast<std::string*>(::SSL_get_ex_data(ssl, tls_peer_key_index()));
  if (!cache || !key) return 0;
  cache->put(*key, s);
  return 1;  // the cache holds the reference now
}

/// A failed handshake's error, as a tls_* code: a specific one when the user can act on it,
/// else tls_handshake_failed with OpenSSL's reason put in `reason` (for the log line).
inline std::error_code map_handshake_error(const boost::system::error_code& ec, SSL* ssl, transport_role role,
                                           std::string& reason) {
  if (ec == asio::error::operation_aborted) return ec;
  bool client = role == transport_role::client;
  if (client && (certificate_request_notes(ssl) & tls_certificate_missing))
    return make_error_code(errc::tls_missing_client_certificate);
  if (ec.category() != asio::error::get_ssl_category()) {
    // The server closed or reset the connection without a word of TLS: it reads the client's
    // hello as a malformed frame (a plaintext port). A TLS server always answers with an alert.
    bool closed = ec == asio::ssl::error::stream_truncated || ec == asio::error::eof ||
                  ec == asio::error::connection_reset;
    if (client && closed) return make_error_code(errc::tls_not_tls_server);
    return ec;
  }
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      switch (::SSL_get_verify_result(ssl)) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID: return make_error_code(errc::tls_certificate_expired);
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH: return make_error_code(errc::tls_hostname_mismatch);
        default: return make_error_code(errc::tls_untrusted_certificate);
      }
    // The peer's alerts about our certificate.
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA: return make_error_code(errc::tls_untrusted_certificate);
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED: return make_error_code(errc::tls_certificate_expired);
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED: return make_error_code(errc::tls_missing_client_certificate);
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN: return make_error_code(errc::tls_certificate_refused);
    // Bytes that are no TLS record.
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
      return make_error_code(client ? errc::tls_not_tls_server : errc::tls_plaintext_peer);
    default:  // no common version or cipher, a bad record...: OpenSSL's message says which
      try {
        reason = ec.message();
      } catch (...) {  // std::bad_alloc: the code alone
      }
      return make_error_code(errc::tls_handshake_failed);
  }
}

/// TLS 1.3 with a client certificate: the server checks it after the client's handshake is
/// over, and says so only by what it sends next: an alert (refused) or, accepted, its session
/// tickets and whatever else it writes. A ping makes it write: its pong (seq 0, which a
/// session never uses) proves the certificate was accepted; an alert maps as the handshake's
/// errors do. A close without an alert is a lost connection (unreachable, retriable).
inline asio::awaitable<std::error_code> await_certificate_verdict(tls_socket::stream_type& s, std::string& reason) {
  std::array<char, proto::request_header_size> ping;
  proto::encode(proto::request_header{.action_word = proto::ping_action, .seq = 0}, ping.data());
  // A write that fails (the server already closed) still leaves its alert to read.
  co_await asio::async_write(s, asio::buffer(ping), asio::as_tuple(asio::use_awaitable));
  std::array<char, proto::response_header_size> pong;
  auto [ec, n] = co_await asio::async_read(s, asio::buffer(pong), asio::as_tuple(asio::use_awaitable));
  if (ec == asio::error::operation_aborted) co_return ec;
  if (ec) {
    if (ec.category() == asio::error::get_ssl_category() && ec != asio::ssl::error::stream_truncated)
      co_return map_handshake_error(ec, s.native_handle(), transport_role::client, reason);
    co_return make_error_code(errc::unreachable);
  }
  proto::response_header h;
  if (proto::decode(pong.data(), h) || h.flag != proto::response_flag::ok || h.seq != 0 || h.body_len() != 0)
    co_return make_error_code(errc::bad_frame);  // not the answer of an occams-rpc server
  co_return std::error_code{};
}

/// Sends close_notify, waits for the peer's at most `limit`, then closes the socket.
inline asio::awaitable<void> send_close_notify(std::shared_ptr<tls_socket::stream_type> s,
                                               std::chrono::milliseconds limit) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(s->get_executor(), limit);
  co_await (s->async_shutdown(asio::as_tuple(asio::use_awaitable)) ||
            timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  boost::system::error_code ignored;
  s->next_layer().close(ignored);
}

}  // namespace detail

OCCAMS_RPC_DECL asio::awaitable<std::error_code> tls_transport::listener::accept(socket_type& out) {
  socket_transport::socket_type plain(out.get_executor());
  std::error_code ec = co_await plain_.accept(plain);
  if (ec) co_return ec;
  out.stream_ = std::make_shared<tls_socket::stream_type>(std::move(plain), *ctx_);
  out.established_ = out.send_close_notify_ = false;
  co_return std::error_code{};
}

OCCAMS_RPC_DECL tls_transport tls_transport::server(const tls_server_options& options) {
  if (options.certificate_chain.empty() || options.private_key.empty())
    throw std::system_error(make_error_code(errc::invalid_config), "TLS server: a certificate and a key are required");
  auto ctx = detail::make_tls_context(asio::ssl::context::tls_server);
  detail::use_certificate(*ctx, options.certificate_chain, options.private_key);
  if (!options.client_ca.empty()) {
    detail::trust(*ctx, options.client_ca);
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  }
  // Session resumption with client certificates needs a session id context.
  static constexpr unsigned char sid[] = "occams_rpc";
  ::SSL_CTX_set_session_id_context(ctx->native_handle(), sid, sizeof sid - 1);
  return tls_transport(std::make_shared<const shared>(
      shared{std::move(ctx), transport_role::server, {}, options.close_notify_timeout}));
}

OCCAMS_RPC_DECL tls_transport tls_transport::client(const tls_client_options& options) {
  auto ctx = detail::make_tls_context(asio::ssl::context::tls_client);
  if (options.ca.empty()) ctx->set_default_verify_paths();
  else detail::trust(*ctx, options.ca);
  ctx->set_verify_mode(asio::ssl::verify_peer);
  if (!options.certificate_chain.empty() || !options.private_key.empty()) {
    if (options.certificate_chain.empty() || options.private_key.empty())
      throw std::system_error(make_error_code(errc::invalid_config), "TLS client: a certificate needs its key");
    detail::use_certificate(*ctx, options.certificate_chain, options.private_key);
  } else {
    ::SSL_CTX_set_client_cert_cb(ctx->native_handle(), &detail::on_certificate_missing);
  }
  ::SSL_CTX_set_cert_cb(ctx->native_handle(), &detail::on_certificate_request, nullptr);
  auto sessions = std::make_unique<detail::tls_session_cache>();
  if (::SSL_CTX_set_ex_data(ctx->native_handle(), detail::tls_cache_index(), sessions.get()) == 1) {
    sessions.release();  // freed with the context
    ::SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    ::SSL_CTX_sess_set_new_cb(ctx->native_handle(), &detail::keep_session);
  }
  return tls_transport(std::make_shared<const shared>(
      shared{std::move(ctx), transport_role::client, options, options.close_notify_timeout}));
}

OCCAMS_RPC_DECL asio::awaitable<std::error_code> tls_transport::connect(asio::any_io_executor ex, const address& to,
                                                                        std::chrono::milliseconds timeout,
                                                                        socket_type& out) const {
  if (st_->role != transport_role::client) co_return make_error_code(errc::invalid_config);
  const std::string& name = st_->client.server_name.empty() ? to.host : st_->client.server_name;
  if (st_->client.verify_hostname && name.empty()) co_return make_error_code(errc::invalid_config);
  socket_transport::socket_type plain(ex);
  std::error_code ec = co_await socket_transport{}.connect(ex, to, timeout, plain);
  if (ec) co_return ec;
  auto s = std::make_shared<tls_socket::stream_type>(std::move(plain), *st_->ctx);
  SSL* ssl = s->native_handle();
  boost::system::error_code not_ip;
  asio::ip::make_address(name, not_ip);
  if (not_ip && !name.empty()) ::SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI takes names only
  if (st_->client.verify_hostname) {
    // OpenSSL's own check, so that a mismatch has its own verify result.
    X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl);
    int ok = not_ip ? ::X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size())
                    : ::X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    if (ok != 1) co_return make_error_code(errc::invalid_config);
  }
  auto key = std::make_unique<std::string>(to.to_string() + " " + name);
  if (auto* cache = detail::session_cache(st_->ctx->native_handle())) cache->offer(*key, ssl);
  if (::SSL_set_ex_data(ssl, detail::tls_peer_key_index(), key.get()) == 1) key.release();  // freed with the SSL
  out.stream_ = std::move(s);
  out.established_ = out.send_close_notify_ = false;
  co_return std::error_code{};
}

OCCAMS_RPC_DECL asio::awaitable<std::error_code> tls_transport::start(socket_type& s, transport_role role) const {
  if (!s.stream_ || role != st_->role) co_return make_error_code(errc::invalid_config);
  auto type = role == transport_role::client ? asio::ssl::stream_base::client : asio::ssl::stream_base::server;
  auto [ec] = co_await s.stream_->async_handshake(type, asio::as_tuple(asio::use_awaitable));
  SSL* ssl = s.stream_->native_handle();
  if (ec) co_return detail::map_handshake_error(ec, ssl, role, s.failure_);
  if (role == transport_role::client) {
    std::uintptr_t notes = detail::certificate_request_notes(ssl);
    // TLS 1.3 finishes the client's handshake before the server has checked its certificate:
    // a client that could not send one knows now; one that sent one asks for the verdict.
    if (notes & detail::tls_certificate_missing) co_return make_error_code(errc::tls_missing_client_certificate);
    if ((notes & detail::tls_certificate_asked) && ::SSL_version(ssl) == TLS1_3_VERSION &&
        st_->client.confirm_client_certificate) {
      if (auto refused = co_await detail::await_certificate_verdict(*s.stream_, s.failure_)) co_return refused;
    }
  }
  s.established_ = true;
  co_return std::error_code{};
}

OCCAMS_RPC_DECL std::string tls_transport::describe_failure(const socket_type& s, std::error_code ec) const {
  if (ec != errc::tls_handshake_failed || s.failure_.empty()) return ec.message();
  return ec.message() + " (" + s.failure_ + ")";
}

OCCAMS_RPC_DECL std::string tls_transport::describe_peer(const socket_type& s) const {
  return s.stream_ ? socket_transport{}.describe_peer(s.next_layer()) : "?";
}

OCCAMS_RPC_DECL void tls_transport::close(socket_type& s) const noexcept {
  if (!s.stream_) return;
  boost::system::error_code ignored;
  if (s.send_close_notify_ && s.established_ && s.next_layer().is_open()) {
    s.send_close_notify_ = false;
    // The connection's pending read ends as a close would end it; the shutdown then owns the
    // stream (shared) until the peer answers or the limit passes.
    s.next_layer().cancel(ignored);
    try {
      asio::co_spawn(s.get_executor(), detail::send_close_notify(s.stream_, st_->close_notify_timeout), asio::detached);
      s.stream_.reset();  // a later close() leaves the close_notify alone
      return;
    } catch (...) {  // out of memory: close without close_notify
    }
  }
  s.next_layer().close(ignored);
}

OCCAMS_RPC_DECL void tls_transport::shutdown_send(socket_type& s) const noexcept { s.send_close_notify_ = true; }

OCCAMS_RPC_DECL std::size_t tls_transport::available(socket_type& s) const noexcept {
  if (!s.stream_) return 0;
  SSL* ssl = s.stream_->native_handle();
  std::size_t n = socket_transport{}.available(s.next_layer());
  n += static_cast<std::size_t>(std::max(::SSL_pending(ssl), 0));
  if (BIO* in = ::SSL_get_rbio(ssl)) n += BIO_ctrl_pending(in);
  return n;
}

}  // namespace occams_rpc
