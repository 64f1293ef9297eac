// The TLS transport end to end: calls, pools and stubs over TLS, mutual TLS, each error a
// user can act on, the handshake timeout and close_notify. Certificates: tls_test_certs.hpp.
#include "test_support.hpp"
#include "tls_test_certs.hpp"

#include "calculator_services.hpp"

#include <occams_rpc/transport/tls_transport.hpp>

#include <boost/asio/ssl.hpp>

#include <algorithm>
#include <memory>
#include <string>
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
  logger get() const {
    return {log_level::info, [l = lines](log_level, std::string_view msg) { l->emplace_back(msg); }};
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
                           const std::string& listen_on = "127.0.0.1:0")
      : srv(io.get_executor(), echo_dispatch{}, cfg, log.get(), tls_transport::server(options)),
        where(srv.listen(listen_on)) {}
};

asio::awaitable<std::tuple<std::error_code, tls_stream>> tls_connect(const tls_transport& t, const address& where,
                                                                    client_config cfg = {}) {
  co_return co_await tls_stream::async_connect(t, co_await asio::this_coro::executor, where, cfg, {}, tok);
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

TEST_CASE("mutual TLS refuses a client without a certificate, both sides say why, and serves one with a "
          "certificate the client CA signed", "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server("server", true));
  auto& [io, log, srv, where] = t;
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, c] = co_await tls_connect(tls_transport::client(certs.client(false)), where);
    CHECK(ec == make_error_code(errc::tls_missing_client_certificate));
    co_await wait_until([&] { return log.has(make_error_code(errc::tls_missing_client_certificate).message()); });
    auto [gec, good] = co_await tls_connect(tls_transport::client(certs.client(true)), where);
    REQUIRE_FALSE(gec);
    auto call = co_await echo_call(good);
    CHECK_FALSE(call);
  });
}

TEST_CASE("mutual TLS refuses a client certificate from an untrusted CA and the server logs why",
          "[tls][integration]") {
  const auto& certs = tls_certs::get();
  tls_echo_server t(certs.server("server", true));
  auto& [io, log, srv, where] = t;
  auto opts = certs.client();
  opts.certificate_chain = certs.pem("rogue_server.pem");
  opts.private_key = certs.pem("rogue_server.key");
  run(io, [&]() -> asio::awaitable<void> {
    // TLS 1.3 ends the client's handshake before the server has checked the client's
    // certificate: the client learns of the refusal when the connection fails (docs/tls.md).
    auto [ec, c] = co_await tls_connect(tls_transport::client(opts), where);
    if (!ec) {
      auto call = co_await echo_call(c);
      CHECK(call);
    }
    co_await wait_until([&] { return log.has(make_error_code(errc::tls_untrusted_certificate).message()); });
    CHECK(srv.connection_count() == 0);
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
