// The TLS transport end to end: calls, pools and stubs over TLS, mutual TLS, each error a
// user can act on, the handshake timeout and close_notify. Certificates: tls_test_certs.hpp.
#include "test_support.hpp"
#include "tls_test_certs.hpp"

#include "calculator_services.hpp"

#include <occams_rpc/transport/tls_transport.hpp>

#include <boost/asio/ssl.hpp>

#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace occams_rpc;
using namespace test;

namespace {

using tls_stream = basic_client_stream<tls_transport>;
template <class Dispatch>
using tls_server = basic_server<Dispatch, tls_transport>;

/// Action 1 echoes the msg and blob.
struct echo_dispatch {
  void operator()(server_request req) {
    if (!req.has_string_action() && req.numeric_action() == 1) req.respond(req.msg(), req.blob());
    else req.respond_error(errc::method_not_found);
  }
};

/// The lines a logger was given, to check what a side logged.
struct captured_log {
  std::shared_ptr<std::vector<std::string>> lines = std::make_shared<std::vector<std::string>>();
  logger get(log_level level = log_level::info) const {
    return {level, [l = lines](log_level, std::string_view msg) { l->emplace_back(msg); }};
  }
  bool has(std::string_view text) const {
    return std::any_of(lines->begin(), lines->end(), [&](auto& l) { return l.find(text) != std::string::npos; });
  }
};

/// An echo server over TLS on its own io_context, logging into `log`.
struct tls_echo_server {
  asio::io_context io;
  captured_log log;
  tls_server<echo_dispatch> srv;
  address where;
  explicit tls_echo_server(const tls_server_options& options, const server_config& cfg = {},
                           const std::string& listen_on = "127.0.0.1:0", log_level level = log_level::info)
      : srv(io.get_executor(), echo_dispatch{}, cfg, log.get(level), tls_transport::server(options)),
        where(srv.listen(listen_on)) {}
};

asio::awaitable<std::tuple<std::error_code, tls_stream>> tls_connect(const tls_transport& t, const address& where,
                                                                    client_config cfg = {}, logger log = {}) {
  co_return co_await tls_stream::async_connect(t, co_await asio::this_coro::executor, where, cfg, std::move(log), tok);
}

/// Caps a client transport at TLS 1.2 (the server then agrees to 1.2).
tls_transport at_most_tls12(tls_transport t) {
  ::SSL_CTX_set_max_proto_version(t.context().native_handle(), TLS1_2_VERSION);
  return t;
}

/// TLS 1.3 (the default), then TLS 1.2 (one Catch2 run of the test each).
int tls_version_under_test() {
  int v = GENERATE(TLS1_3_VERSION, TLS1_2_VERSION);
  INFO((v == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2"));
  return v;
}
tls_transport client_at(int version, const tls_client_options& o) {
  auto t = tls_transport::client(o);
  return version == TLS1_2_VERSION ? at_most_tls12(t) : t;
}

/// The TLS version a client connection through `t` negotiates with `where`.
asio::awaitable<int> negotiated_version(const tls_transport& t, const address& where) {
  auto ex = co_await asio::this_coro::executor;
  tls_socket s(ex);
  auto cec = co_await t.connect(ex, where, 5s, s);
  REQUIRE_FALSE(cec);
  auto sec = co_await t.start(s, transport_role::client);
  REQUIRE_FALSE(sec);
  int v = ::SSL_version(s.stream().native_handle());
  t.shutdown_send(s);
  t.close(s);
  co_return v;
}

/// One echo call; the error it completed with.
template <class Client>
asio::awaitable<std::error_code> echo_call(Client& c, std::string_view text = "hello") {
  auto [ec, r] = co_await c.async_call(1, text_bytes(text), {}, {}, tok);
  if (!ec) CHECK(str(r.msg) == text);
  co_return ec;
}

/// Writes a ping frame on `s` and reads (the start of) its answer: the peer's connection runs,
/// and what TLS sends before the answer (TLS 1.3's session tickets) has been read.
template <class Stream>
asio::awaitable<void> ping_and_answer(Stream& s) {
  proto::frame_writer ping;
  ping.add_ping(1);
  auto frame = ping.buffers().front();
  auto [wec, wn] = co_await asio::async_write(s, asio::buffer(frame.data(), frame.size()), tok);
  REQUIRE_FALSE(wec);
  std::vector<char> answer(64);
  auto [aec, an] = co_await s.async_read_some(asio::buffer(answer), tok);
  REQUIRE_FALSE(aec);
}

/// A TLS client connecting to `server_cert`'s server fails with `expected`, which the server
/// survives: a good client is served after it.
void expect_refused(const std::string& server_cert, tls_client_options client, errc expected) {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server(server_cert));
  auto& [io, log, srv, where] = t;
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(tls_transport::client(client), where);
    CHECK(ec == make_error_code(expected));
    CHECK_FALSE(c);
  });
}

}  // namespace

TEST_CASE("a call over TLS returns its msg and a 1 MiB blob, over TCP and over a Unix socket", "[tls][integration]") {
  bool use_unix = unix_transport();
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server(), {}, listen_address(use_unix));
  auto& [io, log, srv, where] = t;
  auto opts = certs.client();
  if (use_unix) opts.server_name = "localhost";  // a Unix address names no host
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(tls_transport::client(opts), where);
    REQUIRE_FALSE(ec);
    std::string blob(1 << 20, 'b');
    for (std::size_t i = 0; i < blob.size(); i += 4093) blob[i] = static_cast<char>(i);
    auto [cec, r] = co_await c.async_call(1, text_bytes("hello"), text_bytes(blob), {}, tok);
    REQUIRE_FALSE(cec);
    CHECK(str(r.msg) == "hello");
    CHECK(str(r.blob) == blob);
    auto again = co_await echo_call(c, "again");
    CHECK_FALSE(again);
  });
}

TEST_CASE("typed stubs call a router over TLS", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  asio::io_context io;
  api::router routes;
  routes.add<CalService>(calculator{}).add<EchoService>(echo{});
  tls_server<api::router> srv(io.get_executor(), std::move(routes), {}, {}, tls_transport::server(certs.server()));
  auto where = srv.listen("127.0.0.1:0");
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(tls_transport::client(certs.client()), where);
    REQUIRE_FALSE(ec);
    api::stub<CalService, tls_stream> cal(c);
    auto sum = co_await cal.add(40, 2);
    CHECK(sum.value() == 42);
    auto quotient = co_await cal.div(1, 0);
    CHECK(quotient.error() == "divide by zero");
  });
}

TEST_CASE("mutual TLS refuses a client with no, an untrusted or an expired certificate at connect, under TLS 1.3 "
          "and 1.2, with its own error logged on both sides, and serves the next client", "[tls][integration]") {
  const int version = tls_version_under_test();
  const auto& certs = tls_certs::get();
  struct refusal {
    const char* cert;  // the client's certificate (none: no certificate)
    errc expected;
  };
  const auto r = GENERATE(refusal{nullptr, errc::tls_missing_client_certificate},
                          refusal{"rogue_server", errc::tls_untrusted_certificate},
                          refusal{"expired", errc::tls_certificate_expired});
  INFO("client certificate: " << (r.cert ? r.cert : "none"));
  tls_echo_server t(certs.server("server", true));
  auto& [io, log, srv, where] = t;
  auto opts = certs.client();
  if (r.cert) {
    opts.certificate_chain = certs.pem(std::string(r.cert) + ".pem");
    opts.private_key = certs.pem(std::string(r.cert) + ".key");
  }
  captured_log client_log;
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(client_at(version, opts), where, {}, client_log.get());
    CHECK(ec == make_error_code(r.expected));  // before any call: TLS 1.3 too
    CHECK_FALSE(c);
    CHECK(client_log.has("failed: " + make_error_code(r.expected).message()));
    co_await wait_until([&] { return log.has(make_error_code(r.expected).message()); });  // the server's reason
    co_await wait_until([&] { return srv.connection_count() == 0; });
    auto good = client_at(version, certs.client(true));
    auto v = co_await negotiated_version(good, where);
    CHECK(v == version);
    auto [gec, g] = co_await tls_connect(good, where);
    REQUIRE_FALSE(gec);
    auto call = co_await echo_call(g);
    CHECK_FALSE(call);
  });
}

TEST_CASE("without confirm_client_certificate a refused client certificate shows under TLS 1.3 only at the first "
          "call, as a lost connection", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server("server", true));
  auto& [io, log, srv, where] = t;
  auto opts = certs.client();
  opts.certificate_chain = certs.pem("rogue_server.pem");
  opts.private_key = certs.pem("rogue_server.key");
  opts.confirm_client_certificate = false;
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(tls_transport::client(opts), where);
    REQUIRE_FALSE(ec);  // what the confirmation is for
    auto call = co_await echo_call(c);
    CHECK(call);
    CHECK(call.category() == rpc_category());
    CHECK_FALSE(is_tls_error(static_cast<errc>(call.value())));
    co_await wait_until([&] { return log.has(make_error_code(errc::tls_untrusted_certificate).message()); });
  });
}

TEST_CASE("a failover_pool and a client_pool fail at once on a client certificate the server refused, and do not "
          "retry it on an address that would take it", "[tls][integration]") {
  const int version = tls_version_under_test();
  const auto& certs = tls_certs::get();
  asio::io_context io;
  tls_server<echo_dispatch> mutual(io.get_executor(), echo_dispatch{}, {}, {},
                                   tls_transport::server(certs.server("server", true)));
  // Asks no client certificate: a retry there would succeed.
  tls_server<echo_dispatch> open(io.get_executor(), echo_dispatch{}, {}, {}, tls_transport::server(certs.server()));
  std::vector<address> addresses{mutual.listen("127.0.0.1:0"), open.listen("127.0.0.1:0")};
  auto opts = certs.client();
  opts.certificate_chain = certs.pem("rogue_server.pem");
  opts.private_key = certs.pem("rogue_server.key");
  auto client = client_at(version, opts);
  // The connect timeout is long: a call that waited for it would fail with `unreachable`
  // after run()'s limit.
  const client_config patient{.connect_timeout = 60s};
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    basic_failover_pool<tls_transport> failover(ex, addresses, patient,
                                                failover_config{.order = failover_order::primary_backup}, {}, client);
    auto ec = co_await echo_call(failover);
    CHECK(ec == make_error_code(errc::tls_untrusted_certificate));
    basic_client_pool<tls_transport> pool(ex, addresses[0], patient, {}, {}, client);
    auto pec = co_await echo_call(pool);
    CHECK(pec == make_error_code(errc::tls_untrusted_certificate));
    co_await failover.async_close(tok);
    co_await pool.async_close(tok);
  });
}

TEST_CASE("a client refuses a server certificate signed by a CA it does not trust", "[tls][integration]") {
  expect_refused("rogue_server", tls_certs::get().client(), errc::tls_untrusted_certificate);
}

TEST_CASE("a client refuses an expired server certificate", "[tls][integration]") {
  expect_refused("expired", tls_certs::get().client(), errc::tls_certificate_expired);
}

TEST_CASE("a client refuses a server certificate for another name, unless hostname checks are off",
          "[tls][integration]") {
  expect_refused("other_name", tls_certs::get().client(), errc::tls_hostname_mismatch);
  auto named = tls_certs::get().client();
  named.server_name = "other.example";
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server("other_name"));
  auto& [io, log, srv, where] = t;
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(tls_transport::client(named), where);  // the name it is for
    CHECK_FALSE(ec);
    auto unchecked = certs.client();
    unchecked.verify_hostname = false;
    auto [uec, u] = co_await tls_connect(tls_transport::client(unchecked), where);
    CHECK_FALSE(uec);
  });
}

TEST_CASE("a plaintext client on a TLS port fails and the server logs a plaintext peer", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server());
  auto& [io, log, srv, where] = t;
  run(io, [&]() -> asio::awaitable<void> {
    auto plain = co_await connect(where);
    auto ec = co_await echo_call(plain);
    CHECK(ec);
    co_await wait_until([&] { return log.has(make_error_code(errc::tls_plaintext_peer).message()); });
  });
}

TEST_CASE("a handshake with no common TLS version fails with tls_handshake_failed on both sides, OpenSSL's reason "
          "logged", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  // The server wants TLS 1.3, the client offers 1.2 at most: no specific tls_* code covers it.
  auto server_transport = tls_transport::server(certs.server());
  ::SSL_CTX_set_min_proto_version(server_transport.context().native_handle(), TLS1_3_VERSION);
  asio::io_context io;
  captured_log server_log, client_log;
  tls_server<echo_dispatch> srv(io.get_executor(), echo_dispatch{}, {}, server_log.get(), server_transport);
  auto where = srv.listen("127.0.0.1:0");
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(at_most_tls12(tls_transport::client(certs.client())), where, {},
                                        client_log.get());
    CHECK(ec == make_error_code(errc::tls_handshake_failed));
    CHECK(is_tls_error(errc::tls_handshake_failed));
    CHECK_FALSE(is_retriable(ec));
    co_await wait_until([&] { return server_log.has("failed to start"); });
  });
  // Each side's line names the code and OpenSSL's reason: the client got the server's
  // protocol_version alert, the server saw an unsupported protocol.
  REQUIRE(client_log.lines->size() == 1);
  CHECK_THAT(client_log.lines->front(), Catch::Contains("TLS: handshake failed (") &&
                                            Catch::Contains("protocol version", Catch::CaseSensitive::No));
  REQUIRE(server_log.has("failed to start"));
  CHECK(server_log.has("TLS: handshake failed ("));
  CHECK(server_log.has("unsupported protocol"));
}

TEST_CASE("a TLS client on a plaintext port fails with tls_not_tls_server", "[tls][integration]") {
  asio::io_context io;
  server srv(io.get_executor(), echo_dispatch{});
  auto where = srv.listen("127.0.0.1:0");
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(tls_transport::client(tls_certs::get().client()), where);
    CHECK(ec == make_error_code(errc::tls_not_tls_server));
  });
}

TEST_CASE("a silent client is counted, closed after the handshake timeout, and delays no other client",
          "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server(), server_config{.handshake_timeout = 300ms});
  auto& [io, log, srv, where] = t;
  run(io, [&]() -> asio::awaitable<void> {
    auto silent = co_await raw_connect(where);  // never says hello
    co_await wait_until([&] { return srv.connection_count() == 1; });
    auto [ec, c] = co_await tls_connect(tls_transport::client(certs.client()), where);
    REQUIRE_FALSE(ec);
    auto call = co_await echo_call(c);
    CHECK_FALSE(call);
    char byte;
    auto [rec, n] = co_await silent.async_read_some(asio::buffer(&byte, 1), tok);
    CHECK(rec == asio::error::eof);  // the server closed it
    CHECK(log.has("did not finish within 300 ms"));
    CHECK(srv.connection_count() == 1);
  });
}

TEST_CASE("a server shutdown closes the connections still in their handshake", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server(), server_config{.handshake_timeout = 600s});
  auto& [io, log, srv, where] = t;
  run(io, [&]() -> asio::awaitable<void> {
    auto silent = co_await raw_connect(where);
    co_await wait_until([&] { return srv.connection_count() == 1; });
    auto [sec] = co_await srv.async_shutdown(tok);
    CHECK_FALSE(sec);
    CHECK(srv.connection_count() == 0);
    char byte;
    auto [rec, n] = co_await silent.async_read_some(asio::buffer(&byte, 1), tok);
    CHECK(rec == asio::error::eof);
  });
}

TEST_CASE("a graceful server shutdown ends a TLS connection with close_notify", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server());
  auto& [io, log, srv, where] = t;
  run(io, [&]() -> asio::awaitable<void> {
    // A client outside the library, to see the bytes that end the session.
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file(certs.path("ca.pem"));
    ctx.set_verify_mode(asio::ssl::verify_peer);
    asio::ssl::stream<asio::generic::stream_protocol::socket> raw(co_await raw_connect(where), ctx);
    auto [hec] = co_await raw.async_handshake(asio::ssl::stream_base::client, tok);
    REQUIRE_FALSE(hec);
    co_await ping_and_answer(raw);  // the server's handshake is over and the connection runs
    auto [sec] = co_await srv.async_shutdown(tok);
    CHECK_FALSE(sec);
    char byte;
    auto [rec, n] = co_await raw.async_read_some(asio::buffer(&byte, 1), tok);
    CHECK(rec == asio::error::eof);  // close_notify; a bare FIN would be ssl::error::stream_truncated
  });
}

TEST_CASE("a client_pool over TLS calls through every connection and fails at once on a refused certificate",
          "[tls][integration]") {
  const auto& certs = tls_certs::get();
  asio::io_context io;
  tls_server<echo_dispatch> good(io.get_executor(), echo_dispatch{}, {}, {}, tls_transport::server(certs.server()));
  tls_server<echo_dispatch> rogue(io.get_executor(), echo_dispatch{}, {}, {},
                                  tls_transport::server(certs.server("rogue_server")));
  auto good_at = good.listen("127.0.0.1:0");
  auto rogue_at = rogue.listen("127.0.0.1:0");
  auto client = tls_transport::client(certs.client());
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    basic_client_pool<tls_transport> pool(ex, good_at, {}, pool_config{.connections = 2}, {}, client);
    for (int i = 0; i < 4; ++i) {
      auto ec = co_await echo_call(pool);
      CHECK_FALSE(ec);
    }
    co_await wait_until([&] { return pool.healthy_connections() == 2; });
    CHECK(good.connection_count() == 2);
    // The connect timeout is long: a call that waited for it would fail with `unreachable`.
    basic_client_pool<tls_transport> refused(ex, rogue_at, client_config{.connect_timeout = 60s}, {}, {}, client);
    auto ec = co_await echo_call(refused);
    CHECK(ec == make_error_code(errc::tls_untrusted_certificate));
    co_await pool.async_close(tok);
    co_await refused.async_close(tok);
  });
}

TEST_CASE("a failover_pool does not retry a certificate error on the next address", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  asio::io_context io;
  tls_server<echo_dispatch> rogue(io.get_executor(), echo_dispatch{}, {}, {},
                                  tls_transport::server(certs.server("rogue_server")));
  tls_server<echo_dispatch> good(io.get_executor(), echo_dispatch{}, {}, {}, tls_transport::server(certs.server()));
  std::vector<address> addresses{rogue.listen("127.0.0.1:0"), good.listen("127.0.0.1:0")};
  run(io, [&]() -> asio::awaitable<void> {
    basic_failover_pool<tls_transport> pool(co_await asio::this_coro::executor, addresses, {},
                                            failover_config{.order = failover_order::primary_backup},
                                            {}, tls_transport::client(certs.client()));
    // Neither address is up yet: the call goes to the first, whose certificate is refused. A
    // retry would have gone to the second and succeeded.
    auto ec = co_await echo_call(pool);
    CHECK(ec == make_error_code(errc::tls_untrusted_certificate));
    co_await pool.async_close(tok);
  });
}

TEST_CASE("a TLS transport refuses a missing or mismatched key with invalid_config", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  CHECK_THROWS_AS(tls_transport::server(tls_server_options{}), std::system_error);
  auto mismatched = certs.server();
  mismatched.private_key = certs.pem("client.key");
  try {
    tls_transport::server(mismatched);
    FAIL("a key that does not match its certificate was accepted");
  } catch (const std::system_error& e) {
    CHECK(e.code() == make_error_code(errc::invalid_config));
  }
  auto bad_ca = certs.client();
  bad_ca.ca = tls_pem::from_memory("not a certificate");
  CHECK_THROWS_AS(tls_transport::client(bad_ca), std::system_error);
}

TEST_CASE("a client's second connection to a server resumes the first one's TLS session", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server());
  auto& [io, log, srv, where] = t;
  auto client = tls_transport::client(certs.client());
  std::vector<int> reused;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < 2; ++i) {
      // The transport as the stream layer drives it: connect, start, a ping and its answer
      // (after TLS 1.3's session tickets), a graceful close.
      tls_socket s(ex);
      auto cec = co_await client.connect(ex, where, 5s, s);
      REQUIRE_FALSE(cec);
      auto sec = co_await client.start(s, transport_role::client);
      REQUIRE_FALSE(sec);
      reused.push_back(::SSL_session_reused(s.stream().native_handle()));
      co_await ping_and_answer(s);
      client.shutdown_send(s);
      client.close(s);
    }
  });
  CHECK(reused == std::vector<int>{0, 1});
}

TEST_CASE("a TLS client gives up on a server that never answers its hello within the connect timeout",
          "[tls][integration]") {
  asio::io_context io;
  // Accepts and stays silent: the TCP connect succeeds, the handshake never does.
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket accepted(io);
  silent.async_accept(accepted, [](boost::system::error_code) {});
  auto where = address::tcp("127.0.0.1", silent.local_endpoint().port());
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(tls_transport::client(tls_certs::get().client()), where,
                                        client_config{.connect_timeout = 300ms});
    CHECK(ec == make_error_code(errc::unreachable));
  });
}

namespace {

/// A TLS client outside the library and outside Asio: blocking OpenSSL on a thread of its
/// own, so that it can end its side (close_notify, or a bare TCP FIN) and go on reading, as a
/// peer in another language may. Every blocking call is bounded by the socket's timeouts.
struct half_closing_client {
  bool close_notify;  // end with close_notify, else a TCP FIN only
  std::string ca_file;
  std::uint16_t port;
  std::string requests;
  // Results, read by the test once the thread is joined.
  std::atomic<bool> sent_and_ended{false}, done{false};
  std::string error;
  std::string answers;
  bool clean_end = false;  // the server's close_notify ended the stream

  void operator()() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval limit{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SSL_CTX* ctx = ::SSL_CTX_new(::TLS_client_method());
    ::SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
    ::SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL* ssl = ::SSL_new(ctx);
    ::SSL_set_fd(ssl, fd);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) error = "connect failed";
    else if (::SSL_connect(ssl) != 1) error = "handshake failed";
    else if (::SSL_write(ssl, requests.data(), static_cast<int>(requests.size())) != static_cast<int>(requests.size()))
      error = "write failed";
    else if (close_notify ? ::SSL_shutdown(ssl) < 0 : ::shutdown(fd, SHUT_WR) != 0)
      error = "could not end the sending side";
    sent_and_ended = true;
    char buf[256];
    while (error.empty()) {
      int n = ::SSL_read(ssl, buf, sizeof buf);
      if (n > 0) {
        answers.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      clean_end = ::SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN;
      break;
    }
    ::SSL_free(ssl);
    ::SSL_CTX_free(ctx);
    ::close(fd);
    done = true;
  }
};

}  // namespace

TEST_CASE("a TLS client that ends its side with close_notify, or with a bare FIN, still gets the answers to what "
          "it sent, then the server's close_notify", "[tls][integration]") {
  const bool close_notify = GENERATE(true, false);
  INFO((close_notify ? "close_notify" : "TCP FIN without close_notify"));
  const auto& certs = tls_certs::get();
  asio::io_context io;
  std::vector<server_request> held;
  tls_server<holding_dispatch> srv(io.get_executor(), holding_dispatch{&held}, {}, {},
                                   tls_transport::server(certs.server()));
  auto where = srv.listen("127.0.0.1:0");
  proto::frame_writer w;
  for (std::uint64_t seq = 1; seq <= 3; ++seq) w.add_request(seq, 1, text_bytes("hi"), {});
  half_closing_client client{close_notify, certs.path("ca.pem"), where.port, {}};
  for (auto b : w.buffers()) client.requests.append(b.data(), b.size());
  std::jthread thread(std::ref(client));  // joined before the checks, or as the test unwinds
  run(io, [&]() -> asio::awaitable<void> {
    // The answers wait until the client has ended its side: they can only arrive after it.
    co_await wait_until([&] { return held.size() == 3 && client.sent_and_ended.load(); });
    for (auto& req : held) req.respond(req.msg(), req.blob());
    held.clear();
    co_await wait_until([&] { return client.done.load(); });
    co_await wait_until([&] { return srv.connection_count() == 0; });
  });
  thread.join();
  CHECK(client.error.empty());
  CHECK(client.answers.size() == 3 * (proto::response_header_size + 2));
  CHECK(client.clean_end);
}

// Not a test: what confirm_client_certificate costs per connect (docs/tls.md). Run by hand:
//   occams_rpc_integration_tests "[tls-connect-cost]"
TEST_CASE("measure: a mutual TLS 1.3 connect with and without the certificate confirmation", "[.][tls-connect-cost]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server("server", true));
  auto& [io, log, srv, where] = t;
  constexpr int rounds = 200;
  std::vector<double> confirmed, unconfirmed, resumed;
  auto with = certs.client(true), without = with;
  without.confirm_client_certificate = false;
  auto reused = tls_transport::client(with);  // its second and later connects resume the session
  run(
      io,
      [&]() -> asio::awaitable<void> {
        auto connect_ms = [&](const tls_transport& tr) -> asio::awaitable<double> {
          auto start = std::chrono::steady_clock::now();
          auto [ec, c] = co_await tls_connect(tr, where);
          REQUIRE_FALSE(ec);
          double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
          co_await c.async_close(tok);
          co_return ms;
        };
        co_await connect_ms(reused);
        for (int i = 0; i < rounds; ++i) {  // interleaved; a fresh transport each time: no resumption
          confirmed.push_back(co_await connect_ms(tls_transport::client(with)));
          unconfirmed.push_back(co_await connect_ms(tls_transport::client(without)));
          resumed.push_back(co_await connect_ms(reused));
        }
      },
      120s);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("mutual TLS 1.3 connect, client and server on one thread, median of %d (ms): "
              "confirmed %.3f, not confirmed %.3f, ratio %.3f; resumed session (no confirmation needed) %.3f\n",
              rounds, median(confirmed), median(unconfirmed), median(confirmed) / median(unconfirmed), median(resumed));
}

TEST_CASE("a client_stream's graceful close ends its TLS session with close_notify, an abort does not",
          "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server(), {}, "127.0.0.1:0", log_level::debug);
  auto& [io, log, srv, where] = t;
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(tls_transport::client(certs.client()), where);
    REQUIRE_FALSE(ec);
    auto call = co_await echo_call(c);
    CHECK_FALSE(call);
    co_await c.async_close(tok);
    co_await wait_until([&] { return srv.connection_count() == 0; });
    INFO(fmt::format("{}", fmt::join(*log.lines, "\n")));
    CHECK_FALSE(log.has("read ended"));  // a clean end of stream is not logged
    auto [aec, a] = co_await tls_connect(tls_transport::client(certs.client()), where);
    REQUIRE_FALSE(aec);
    auto acall = co_await echo_call(a);
    CHECK_FALSE(acall);
    a.abort();
    co_await wait_until([&] { return log.has("read ended: stream truncated"); });  // no close_notify
  });
}

TEST_CASE("over TLS a frame above max_frame_size closes only its connection with the reason logged, and large "
          "requests draw on the memory budget and give it back", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server(), server_config{.max_frame_size = 64 * 1024, .max_buffered_bytes = 128 * 1024});
  auto& [io, log, srv, where] = t;
  auto client = tls_transport::client(certs.client());
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, big] = co_await tls_connect(client, where);
    REQUIRE_FALSE(ec);
    auto [gec, good] = co_await tls_connect(client, where);
    REQUIRE_FALSE(gec);
    const std::string too_large(100 * 1024, 'x'), large(40 * 1024, 'y');
    auto [bec, br] = co_await big.async_call(1, text_bytes("m"), text_bytes(too_large), {}, tok);
    CHECK(bec == make_error_code(errc::io_err));
    co_await wait_until([&] { return log.has(make_error_code(errc::frame_too_large).message()); });
    for (int i = 0; i < 8; ++i) {  // above buffer_size: each reserves from the budget
      auto [lec, lr] = co_await good.async_call(1, text_bytes("m"), text_bytes(large), {}, tok);
      CHECK_FALSE(lec);
      CHECK(lr.blob.size() == large.size());
    }
    CHECK(srv.buffered_bytes() == 0);
    CHECK(srv.connection_count() == 1);
  });
}

TEST_CASE("a client_pool over TLS reconnects with a new handshake when its server restarts, and a failover_pool "
          "over TLS moves to the other address", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  asio::io_context io;
  auto server_options = tls_transport::server(certs.server());
  auto first = std::make_unique<tls_server<echo_dispatch>>(io.get_executor(), echo_dispatch{}, server_config{},
                                                           logger{}, server_options);
  auto where = first->listen("127.0.0.1:0");
  tls_server<echo_dispatch> other(io.get_executor(), echo_dispatch{}, server_config{}, logger{}, server_options);
  auto other_at = other.listen("127.0.0.1:0");
  auto client = tls_transport::client(certs.client());
  const pool_config quick{.health_check_period = 50ms, .reconnect_backoff = 20ms, .reconnect_backoff_max = 100ms};
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    basic_client_pool<tls_transport> pool(ex, where, {}, quick, {}, client);
    basic_failover_pool<tls_transport> failover(ex, {where, other_at}, {},
                                                failover_config{.order = failover_order::primary_backup}, {}, client);
    auto before = co_await echo_call(pool);
    CHECK_FALSE(before);
    auto via_first = co_await echo_call(failover);
    CHECK_FALSE(via_first);
    co_await first->async_shutdown(tok);
    first.reset();
    // The failover pool's calls go to the other address meanwhile.
    for (int i = 0; i < 3; ++i) {
      auto moved = co_await echo_call(failover);
      CHECK_FALSE(moved);
    }
    tls_server<echo_dispatch> second(ex, echo_dispatch{}, server_config{}, logger{}, server_options);
    second.listen(where);  // the same port
    co_await wait_until([&] { return second.connection_count() >= 1 && pool.healthy_connections() == 1; });
    auto after = co_await echo_call(pool);
    CHECK_FALSE(after);
    CHECK(second.accepted_count() >= 1);  // new connections, each with its own handshake
    co_await pool.async_close(tok);
    co_await failover.async_close(tok);
    co_await second.async_shutdown(tok);
  });
}
