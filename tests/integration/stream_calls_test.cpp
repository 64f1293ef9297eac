// client_stream and server together: timeouts, windows, ordering, close, cancellation.
#include "test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <thread>
#include <vector>

using namespace occams_rpc;
using namespace test;

namespace {

/// Makes `n` echo calls numbered 0..n-1 (the number is the msg) and counts how many completed,
/// and how many came back with their own number.
struct numbered_calls {
  std::vector<std::string> msgs;
  int ok = 0, done = 0;
  numbered_calls(const numbered_calls&) = delete;  // the callbacks point at this object
  numbered_calls(client_stream& client, int n) {
    for (int i = 0; i < n; ++i) msgs.push_back(std::to_string(i));
    for (int i = 0; i < n; ++i)
      client.async_call(1, text_bytes(msgs[i]), {}, {}, [this, i](std::error_code ec, call_response r) {
        ++done;
        ok += !ec && str(r.msg) == msgs[i];
      });
  }
};

/// Echoes msg; odd-numbered requests (by the number in msg) after `delay`.
struct delayed_echo {
  std::chrono::milliseconds delay;
  // msg is a decimal number
  asio::awaitable<void> operator()(server_request req) {
    std::string msg(req.msg().begin(), req.msg().end());
    if (std::stoi(msg) % 2 == 1) {
      asio::steady_timer t(req.get_executor(), delay);
      co_await t.async_wait(asio::deferred);
    }
    req.respond(req.msg());
  }
};

}  // namespace

TEST_CASE("a call the server never answers fails with timeout after the configured time", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  std::vector<server_request> held;
  server srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.call_timeout = 100ms, .timeout_tick = 20ms});
    auto start = std::chrono::steady_clock::now();
    auto [ec, r] = co_await client.async_call(1, text_bytes("x"), {}, {}, tok);
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(ec == make_error_code(errc::timeout));
    CHECK(took >= 100ms);
    CHECK(client.in_flight() == 0);
    // The late answer is dropped and the connection still works.
    REQUIRE(held.size() == 1);
    held[0].respond(text_bytes("late"));
    held.clear();
    std::error_code ec2 = errc::internal;
    std::string answer;
    client.async_call(1, text_bytes("y"), {}, {}, [&](std::error_code ec, call_response r) {
      ec2 = ec;
      answer = str(r.msg);
    });
    co_await wait_until([&] { return !held.empty(); });
    held[0].respond(text_bytes("on time"));
    co_await wait_until([&] { return !(answer.empty() && ec2 == errc::internal); });
    CHECK_FALSE(ec2);
    CHECK(answer == "on time");
  });
}

TEST_CASE("responses that come back out of order complete the right calls", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  std::vector<server_request> held;
  server srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    constexpr int n = 10;
    int done = 0, right = 0;
    std::vector<std::string> msgs;
    for (int i = 0; i < n; ++i) msgs.push_back("m" + std::to_string(i));
    for (int i = 0; i < n; ++i)
      client.async_call(1, text_bytes(msgs[i]), {}, {}, [&, i](std::error_code ec, call_response r) {
        ++done;
        if (!ec && str(r.msg) == "answer to m" + std::to_string(i)) ++right;
      });
    while (held.size() < n) {
      asio::steady_timer t(io, 5ms);
      co_await t.async_wait(asio::deferred);
    }
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      std::string answer = "answer to " + std::string(it->msg().begin(), it->msg().end());
      it->respond(text_bytes(answer));
    }
    while (done < n) {
      asio::steady_timer t(io, 5ms);
      co_await t.async_wait(asio::deferred);
    }
    CHECK(right == n);
  });
}

TEST_CASE("the server never sees more requests in flight than the client's window", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  std::vector<server_request> held;
  std::size_t max_held = 0;
  server srv(io.get_executor(), holding_dispatch{&held, &max_held});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.window = 4});
    constexpr int n = 50;
    int ok = 0, done = 0;
    for (int i = 0; i < n; ++i)
      client.async_call(1, text_bytes("w"), {}, {}, [&](std::error_code ec, call_response) { ++done; ok += !ec; });
    // Answer whatever arrives, a little at a time, until every call is done.
    while (done < n) {
      asio::steady_timer t(io, 2ms);
      co_await t.async_wait(asio::deferred);
      for (auto& r : held) r.respond(r.msg());
      held.clear();
    }
    CHECK(ok == n);
    CHECK(max_held <= 4);
    CHECK(max_held >= 1);
    CHECK(client.max_in_flight_seen() == 4);
  });
}

TEST_CASE("40 calls in flight when the client closes all complete, 20 of them after a delay", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  server srv(io.get_executor(), delayed_echo{200ms});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    constexpr int n = 40;
    numbered_calls calls(client, n);
    auto [cec] = co_await client.async_close(tok);
    CHECK_FALSE(cec);
    CHECK(calls.done == n);
    CHECK(calls.ok == n);
    // After close, new calls are refused.
    auto [ec, r] = co_await client.async_call(1, text_bytes("1"), {}, {}, tok);
    CHECK(ec == make_error_code(errc::closed));
  });
}

TEST_CASE("destroying the server fails every pending call promptly with io_err", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  std::vector<server_request> held;
  auto srv = std::make_unique<server<holding_dispatch>>(io.get_executor(), holding_dispatch{&held});
  auto where = srv->listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    constexpr int n = 20;
    int done = 0, io_errors = 0;
    for (int i = 0; i < n; ++i)
      client.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code ec, call_response) {
        ++done;
        io_errors += ec == make_error_code(errc::io_err);
      });
    co_await wait_until([&] { return held.size() >= n; });
    auto start = std::chrono::steady_clock::now();
    held.clear();  // the server's answers to these (rpc_internal_err) may or may not get out
    srv.reset();
    co_await wait_until([&] { return done >= n; });
    CHECK(std::chrono::steady_clock::now() - start < 5s);  // the call timeout is 20 s
    CHECK(io_errors + 0 <= n);
    CHECK_FALSE(client.is_open());
  });
}

TEST_CASE("a call cancelled through its cancellation slot frees its window slot", "[stream]") {
  asio::io_context io;
  std::vector<server_request> held;
  server srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.window = 1});
    asio::cancellation_signal sig;
    std::error_code first;
    bool first_done = false;
    client.async_call(1, text_bytes("a"), {}, {},
                      asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, call_response) {
                        first = ec;
                        first_done = true;
                      }));
    co_await wait_until([&] { return held.size() >= 1; });
    sig.emit(asio::cancellation_type::terminal);
    CHECK(first_done);
    CHECK(first == make_error_code(errc::cancelled));
    // The window (of 1) is free again: the next call goes out and completes.
    std::error_code second = errc::internal;
    std::string answer;
    client.async_call(1, text_bytes("b"), {}, {}, [&](std::error_code ec, call_response r) {
      second = ec;
      answer = str(r.msg);
    });
    held[0].respond(text_bytes("late"));  // dropped: nobody waits for seq 1 any more
    co_await wait_until([&] { return held.size() >= 2; });
    held[1].respond(text_bytes("b-answer"));
    co_await wait_until([&] { return !answer.empty(); });
    CHECK_FALSE(second);
    CHECK(answer == "b-answer");
  });
}

TEST_CASE("a waiting call cancelled by the handler of the call whose slot it just got completes with cancelled",
          "[stream]") {
  // The shape of `co_await (call() || call())` with a full window: the first call's completion
  // cancels the second, which has just been handed the window slot the first left.
  asio::cancellation_signal sig;  // outlives the connection, whatever the outcome
  asio::io_context io;
  std::vector<server_request> held;
  server srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.window = 1});
    bool b_done = false;
    std::error_code b_ec;
    client.async_call(1, text_bytes("a"), {}, {},
                      [&](std::error_code, call_response) { sig.emit(asio::cancellation_type::terminal); });
    client.async_call(1, text_bytes("b"), {}, {},
                      asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, call_response) {
                        b_ec = ec;
                        b_done = true;
                      }));
    co_await wait_until([&] { return held.size() >= 1; });
    held[0].respond(text_bytes("A"));
    co_await wait_until([&] { return b_done || held.size() >= 2; });
    co_await sleep_for(20ms);
    CHECK(b_done);
    CHECK(b_ec == make_error_code(errc::cancelled));
    held.clear();
  });
}

TEST_CASE("a second cancellation of a waiting call already cancelled touches no other call", "[stream]") {
  asio::cancellation_signal sig;  // outlives the connection, whatever the outcome
  asio::io_context io;
  std::vector<server_request> held;
  server srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.window = 1});
    client.async_call(1, text_bytes("a"), {}, {}, [](std::error_code, call_response) {});
    std::error_code b_ec, c_ec = errc::internal;
    client.async_call(1, text_bytes("b"), {}, {},
                      asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, call_response) { b_ec = ec; }));
    sig.emit(asio::cancellation_type::terminal);
    // c waits for the window too, in the memory the cancelled b's wait has just given back.
    client.async_call(1, text_bytes("c"), {}, {}, [&](std::error_code ec, call_response) { c_ec = ec; });
    sig.emit(asio::cancellation_type::terminal);  // b is gone: nothing to cancel
    co_await wait_until([&] { return held.size() >= 1; });
    held[0].respond(text_bytes("A"));
    co_await wait_until([&] { return held.size() >= 2 || c_ec != errc::internal; });
    if (held.size() >= 2) held[1].respond(text_bytes("C"));
    co_await wait_until([&] { return c_ec != errc::internal; });
    CHECK(b_ec == make_error_code(errc::cancelled));
    CHECK_FALSE(c_ec);
    held.clear();
  });
}

TEST_CASE("calls from another thread with use_future reach the connection's executor", "[stream]") {
  asio::io_context io;
  server srv(io.get_executor(), delayed_echo{1ms});
  auto where = srv.listen(listen_address(true));
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run_for(20s); });
  auto client_f = client_stream::async_connect(io.get_executor(), where, {}, {}, asio::use_future);
  // (in a thread other than the io_context's)
  // std::error_code is not an Asio error type, so futures hold (error, value) tuples.
  auto [cec, client] = client_f.get();
  REQUIRE_FALSE(cec);
  std::vector<std::string> msgs;
  for (int i = 0; i < 100; ++i) msgs.push_back(std::to_string(i));
  std::vector<std::future<std::tuple<std::error_code, call_response>>> futures;
  for (auto& m : msgs) futures.push_back(client.async_call(1, text_bytes(m), {}, {}, asio::use_future));
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    auto [ec, r] = futures[i].get();
    CHECK_FALSE(ec);
    CHECK(str(r.msg) == msgs[i]);
  }
  auto [sec, sr] = client.async_call("by.name", text_bytes("7"), {}, {}, asio::use_future).get();
  CHECK_FALSE(sec);
  CHECK(str(sr.msg) == "7");
  client.abort();
  work.reset();
  io.stop();
  runner.join();
}

TEST_CASE("graceful shutdown answers the calls in flight, then closes", "[stream]") {
  bool use_unix = unix_transport();
  asio::io_context io;
  server srv(io.get_executor(), delayed_echo{100ms});
  auto where = srv.listen(listen_address(use_unix));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    constexpr int n = 10;
    numbered_calls calls(client, n);
    co_await sleep_for(30ms);  // let the requests reach the server
    auto [sec] = co_await srv.async_shutdown(tok);
    CHECK_FALSE(sec);
    CHECK(calls.ok == n);
    CHECK(calls.done == n);
    CHECK(srv.connection_count() == 0);
    // Nobody accepts any more.
    auto [cec, c2] = co_await client_stream::async_connect(io.get_executor(), where, {.connect_timeout = 500ms}, {}, tok);
    CHECK(cec);
  });
}
