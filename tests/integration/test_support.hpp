// Helpers for tests that run a real client and server in one process on loopback.
#pragma once

#include <occams_rpc.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <string>
#include <vector>
#include <algorithm>
#include <unistd.h>

namespace test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Never write co_await inside CHECK/REQUIRE: Catch2 repeats the expression in an unevaluated
// branch, and GCC 12 still runs a co_await there (the call would be made three times).

/// Runs `body` (a coroutine) on `io` and fails the test unless it finishes within `limit`.
template <class Body>
void run(asio::io_context& io, Body body, std::chrono::milliseconds limit = 20s) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) {
    done = true;
    error = e;
    io.stop();  // leave background coroutines behind: the io_context goes with the test
  });
  io.run_for(limit);
  if (error) std::rethrow_exception(error);
  REQUIRE(done);
}

/// A fresh listening address: TCP on an ephemeral port, or a Unix socket path.
inline std::string listen_address(bool unix_socket) {
  static std::atomic<int> n{0};
  if (!unix_socket) return "127.0.0.1:0";
  return "unix:/tmp/occams-rpc-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".sock";
}

/// Picks TCP, then a Unix socket (one Catch2 run of the test each).
inline bool unix_transport() {
  bool u = GENERATE(false, true);
  INFO((u ? "over a Unix socket" : "over TCP"));
  return u;
}

/// Suspends for `d` on the current coroutine's executor.
inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::deferred);
}

/// Polls `done()` every `step` until it holds; bounded by run()'s time limit.
template <class Pred>
asio::awaitable<void> wait_until(Pred done, std::chrono::milliseconds step = 2ms) {
  while (!done()) co_await sleep_for(step);
}

/// Holds every request until the test answers it.
struct holding_dispatch {
  std::vector<occams_rpc::server_request>* held;
  std::size_t* max_held = nullptr;
  void operator()(occams_rpc::server_request req) {
    held->push_back(std::move(req));
    if (max_held) *max_held = std::max(*max_held, held->size());
  }
};

inline std::span<const char> text_bytes(std::string_view s) { return {s.data(), s.size()}; }
/// co_await op(..., tok) gives a tuple (error first) instead of throwing.
inline constexpr auto tok = asio::as_tuple(asio::deferred);
inline std::string str(const occams_rpc::byte_buffer& b) { return std::string(b.view()); }

/// Connects a client_stream on the current coroutine's executor; the test fails if it cannot.
inline asio::awaitable<occams_rpc::client_stream> connect(const occams_rpc::address& where,
                                                          occams_rpc::client_config cfg = {}) {
  auto [ec, c] = co_await occams_rpc::client_stream::async_connect(co_await asio::this_coro::executor, where, cfg,
                                                                   {}, tok);
  REQUIRE_FALSE(ec);
  co_return std::move(c);
}

/// A raw socket connected to `where` (TCP or Unix), for tests that speak bytes.
inline asio::awaitable<asio::generic::stream_protocol::socket> raw_connect(const occams_rpc::address& where) {
  asio::generic::stream_protocol::socket s(co_await asio::this_coro::executor);
  auto ec = co_await occams_rpc::socket_transport{}.connect(co_await asio::this_coro::executor, where, 2s, s);
  REQUIRE_FALSE(ec);
  co_return std::move(s);
}

}  // namespace test
