// Deadlines and cancellation across the wire (docs/protocol.md, "v1 extensions"): a client
// that never negotiates sends v1's bytes; one that offers the extensions falls back to v1
// against a server that refuses them; a cancelled or expired call stops its handler on the
// server, on the stream layer and through typed stubs; a handler passes its deadline on.
#include "test_support.hpp"

#include <occams_rpc/api/router.hpp>
#include <occams_rpc/api/service.hpp>
#include <occams_rpc/api/stub.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <optional>

using namespace occams_rpc;
using namespace test;
using namespace asio::experimental::awaitable_operators;
using ext_state = session::client_session::extensions_state;

namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size();) {
    if (hex[i] == ' ') { ++i; continue; }
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    i += 2;
  }
  return out;
}

constexpr auto await_tok = asio::as_tuple(asio::use_awaitable);

/// What a slow handler saw.
struct observed {
  bool done = false;
  bool aborted = false;  // its wait ended by cancellation, not by its 10 s timer
  session::cancel_reason reason = session::cancel_reason::none;
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

/// Stream layer: action 1 waits 10 s (or until cancelled), then answers; others echo.
struct slow_dispatch {
  observed* seen;
  asio::awaitable<void> operator()(server_request req) {
    if (req.numeric_action() != 1) {
      req.respond(req.msg());
      co_return;
    }
    seen->deadline = req.deadline();
    asio::steady_timer t(req.get_executor(), 10s);
    auto [ec] = co_await t.async_wait(asio::as_tuple(asio::deferred));
    seen->aborted = ec == asio::error::operation_aborted;
    seen->reason = req.cancel_reason();
    seen->done = true;
    req.respond(std::string_view("late"));  // dropped: nobody waits for it
  }
};

struct log_lines {
  std::shared_ptr<std::vector<std::string>> lines = std::make_shared<std::vector<std::string>>();
  logger make() const {
    return logger(log_level::debug, [l = lines](log_level, std::string_view m) { l->emplace_back(m); });
  }
  std::size_t count(std::string_view part) const {
    return std::count_if(lines->begin(), lines->end(), [&](const std::string& s) { return s.find(part) != std::string::npos; });
  }
};

asio::awaitable<client_stream> connect_with_extensions(const address& where, client_config cfg = {}, logger log = {}) {
  cfg.extensions = true;
  auto [ec, c] = co_await client_stream::async_connect(co_await asio::this_coro::executor, where, cfg, log, tok);
  REQUIRE_FALSE(ec);
  // The pong comes after the hello's answer: the extensions are settled by then.
  auto pec = co_await c.async_ping(tok);
  REQUIRE_FALSE(std::get<0>(pec));
  co_return std::move(c);
}

}  // namespace

OCCAMS_RPC_SERVICE(SlowCalc, (add, std::int64_t(std::int64_t, std::int64_t)));
OCCAMS_RPC_SERVICE(FrontCalc, (add, std::int64_t(std::int64_t, std::int64_t)));

namespace {

/// A coroutine method that takes its call_context: it records its deadline and waits 10 s
/// unless its call is cancelled.
struct slow_calc {
  observed* seen;
  asio::awaitable<std::int64_t> add(api::call_context ctx, std::int64_t a, std::int64_t b) {
    seen->deadline = ctx.deadline;
    asio::steady_timer t(co_await asio::this_coro::executor, 10s);
    auto [ec] = co_await t.async_wait(asio::as_tuple(asio::deferred));
    seen->aborted = ec == asio::error::operation_aborted;
    seen->done = true;
    co_return a + b;
  }
};

// docs/api.md, "Deadlines and cancellation": a handler that calls another service passes its
// caller's deadline on in one line.
struct front_calc {
  api::stub<SlowCalc> back;
  asio::awaitable<std::int64_t> add(api::call_context ctx, std::int64_t a, std::int64_t b) {
    auto sum = co_await api::with_deadline(back, ctx.deadline).add(a, b);
    co_return sum.value_or(-1);
  }
};

}  // namespace

TEST_CASE("a client that does not negotiate sends exactly v1's bytes", "[stream][extensions]") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto where = parse_address("127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);  // client_config{}: extensions off
    asio::ip::tcp::socket peer = co_await acceptor.async_accept(asio::deferred);
    auto args = from_hex("92 01 02");
    auto call = client.async_call("Calculator.add", text_bytes(args), {}, {}, await_tok);
    auto serve = [&]() -> asio::awaitable<std::string> {
      std::string got(49 + 32, '\0');
      co_await asio::async_read(peer, asio::buffer(got.data(), 49), asio::deferred);
      auto ok = from_hex("25 4d 01 00 01 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 03");
      co_await asio::async_write(peer, asio::buffer(ok), asio::deferred);
      co_return got.substr(0, 49);
    };
    auto [request, result] = co_await (serve() && std::move(call));
    CHECK(request == from_hex("25 4d 01 00 0e 00 00 80 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03 00 00 00 "
                              "00 00 00 00 43 61 6c 63 75 6c 61 74 6f 72 2e 61 64 64 92 01 02"));
    CHECK_FALSE(std::get<0>(result));
    CHECK(str(std::get<1>(result).msg) == "\x03");
    // Then a ping: v1's golden ping, seq 2. Nothing else was written before it (no hello).
    auto ping = client.async_ping(await_tok);
    auto serve_ping = [&]() -> asio::awaitable<std::string> {
      std::string got(32, '\0');
      co_await asio::async_read(peer, asio::buffer(got), asio::deferred);
      auto pong = from_hex("25 4d 01 00 00 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00");
      co_await asio::async_write(peer, asio::buffer(pong), asio::deferred);
      co_return got;
    };
    auto [ping_bytes, pong] = co_await (serve_ping() && std::move(ping));
    CHECK(ping_bytes == from_hex("25 4d 01 00 00 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
                                 "00 00 00 00 00"));
    CHECK_FALSE(std::get<0>(pong));
    CHECK(client.extensions() == ext_state::off);
  });
}

TEST_CASE("a client offering the extensions stays on plain v1 with a server that refuses the hello",
          "[stream][extensions]") {
  asio::io_context io;
  observed seen;
  // extensions off: the hello reaches the dispatch, which echoes it, as a v1 echo server would.
  server srv(io.get_executor(), slow_dispatch{&seen}, server_config{.extensions = false});
  auto where = srv.listen(listen_address(unix_transport()));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect_with_extensions(where);
    CHECK(client.extensions() == ext_state::refused);
    auto [ec, r] = co_await client.async_call(2u, text_bytes("hi"), {}, {}, tok);
    CHECK_FALSE(ec);
    CHECK(str(r.msg) == "hi");  // no deadline prefix: plain v1
  });
}

TEST_CASE("a slow handler observes the client's cancellation at once, and its answer is not written",
          "[stream][extensions]") {
  asio::io_context io;
  observed seen;
  server srv(io.get_executor(), slow_dispatch{&seen});
  auto where = srv.listen(listen_address(unix_transport()));
  log_lines client_log;
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect_with_extensions(where, {}, client_log.make());
    REQUIRE(client.extensions() == ext_state::on);
    asio::steady_timer timer(co_await asio::this_coro::executor, 50ms);  // what cancel_after does
    auto r = co_await (client.async_call(1u, text_bytes("x"), {}, {}, await_tok) || timer.async_wait(await_tok));
    CHECK(r.index() == 1);  // the timer won; the call was cancelled
    co_await wait_until([&] { return seen.done; });  // well before the handler's 10 s
    CHECK(seen.aborted);
    CHECK(seen.reason == session::cancel_reason::cancelled);
    CHECK(seen.deadline.has_value());  // call_timeout travels with every call once negotiated
    // The handler answered after it was cancelled: that answer was dropped by the server, so
    // the pong is the next thing the client reads.
    auto pec = co_await client.async_ping(tok);
    CHECK_FALSE(std::get<0>(pec));
    CHECK(client_log.count("dropping a response") == 0);
  });
}

TEST_CASE("an aborted client stream stops its calls' handlers on the server", "[stream][extensions]") {
  asio::io_context io;
  observed seen;
  server srv(io.get_executor(), slow_dispatch{&seen});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect_with_extensions(where);
    client.async_call(1u, text_bytes("x"), {}, {}, [](std::error_code, call_response) {});
    co_await wait_until([&] { return srv.connection_count() == 1 && seen.deadline.has_value(); });
    client.abort();
    co_await wait_until([&] { return seen.done; });
    CHECK(seen.aborted);
    CHECK(seen.reason == session::cancel_reason::closed);
  });
}

TEST_CASE("a typed call cancelled on the client is cancelled in the router's coroutine method", "[api][extensions]") {
  asio::io_context io;
  observed seen;
  api::router routes;
  routes.add<SlowCalc>(slow_calc{&seen});
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(unix_transport()));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect_with_extensions(where);
    api::stub<SlowCalc> cal(client);
    asio::steady_timer timer(co_await asio::this_coro::executor, 50ms);  // cancel_after(50ms)
    auto r = co_await (cal.add(1, 2)(asio::use_awaitable) || timer.async_wait(await_tok));
    CHECK(r.index() == 1);
    co_await wait_until([&] { return seen.done; });
    CHECK(seen.aborted);
  });
}

TEST_CASE("a deadline passes from a typed call to the server, which stops the handler within one tick",
          "[api][extensions]") {
  asio::io_context io;
  observed seen;
  api::router routes;
  routes.add<SlowCalc>(slow_calc{&seen});
  server srv(io.get_executor(), std::move(routes), server_config{.timer_tick = 20ms});
  auto where = srv.listen(listen_address(unix_transport()));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect_with_extensions(where, client_config{.timeout_tick = 20ms});
    api::stub<SlowCalc> cal(client);
    auto before = std::chrono::steady_clock::now();
    auto sum = co_await api::with_deadline(cal, before + 200ms).add(1, 2);
    CHECK(sum.framework_error() == errc::timeout);
    co_await wait_until([&] { return seen.done; });
    CHECK(seen.aborted);  // expired on the server: its 10 s wait was cut short
    REQUIRE(seen.deadline.has_value());
    // The server's deadline is its arrival time plus the 200 ms sent (rounded up to whole ms).
    CHECK(*seen.deadline > before);
    CHECK(*seen.deadline <= std::chrono::steady_clock::now() + 201ms);
  });
}

TEST_CASE("a handler that calls another service passes its caller's deadline on", "[api][extensions]") {
  asio::io_context io;
  observed seen;
  api::router back_routes;
  back_routes.add<SlowCalc>(slow_calc{&seen});
  server back(io.get_executor(), std::move(back_routes), server_config{.timer_tick = 20ms});
  auto back_where = back.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto to_back = co_await connect_with_extensions(back_where, client_config{.timeout_tick = 20ms});
    api::router front_routes;
    front_routes.add<FrontCalc>(front_calc{api::stub<SlowCalc>(to_back)});
    server front(io.get_executor(), std::move(front_routes));
    auto front_where = front.listen(listen_address(true));
    auto client = co_await connect_with_extensions(front_where, client_config{.call_timeout = 300ms,
                                                                               .timeout_tick = 20ms});
    api::stub<FrontCalc> cal(client);
    auto before = std::chrono::steady_clock::now();
    co_await cal.add(1, 2);  // times out: the back end waits 10 s
    co_await wait_until([&] { return seen.deadline.has_value(); });
    // The back end got the front's caller's deadline (call_timeout, 300 ms), not its own 20 s.
    CHECK(*seen.deadline <= before + 400ms);
    co_await wait_until([&] { return seen.done; });
    CHECK(seen.aborted);
  });
}
