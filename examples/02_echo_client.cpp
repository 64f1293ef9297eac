// 02_echo_client: many concurrent calls on one client_stream.
//
// Shows async_connect, async_ping and async_call with the as_tuple(deferred) token (errors
// as values, no exceptions), several coroutines sharing one multiplexed connection, reuse of
// the response buffers so that steady-state calls allocate nothing, and a graceful
// async_close. It calls action 1 of 01_echo_server and checks every echo.
//
//   02_echo_client --connect ADDR [--calls N] [--inflight W] [--payload B]
//
// Makes N calls (default 10000), W at a time (default 64), each with a B-byte blob
// (default 64) whose content depends on the call, then prints one summary line and exits:
// status 0 if every call came back intact, 1 otherwise.

#include <occams_rpc.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
using namespace occams_rpc;

namespace {

constexpr auto tok = asio::as_tuple(asio::deferred);  // co_await gives (error_code, ...) tuples
constexpr std::uint32_t echo_action = 1;

struct options {
  std::string connect;
  std::uint64_t calls = 10000;
  std::uint64_t inflight = 64;
  std::uint64_t payload = 64;
};

/// What the workers share. They all run on the one io_context thread: no locks needed.
struct run_state {
  client_stream& client;
  const options& opt;
  std::uint64_t next_call = 0;  // the next call number to make
  std::uint64_t done = 0;       // calls that came back intact
  std::string first_error;      // set by the first failure; the other workers then stop
};

/// The content of call `n`: its msg is the number as text, its blob a pattern seeded by it,
/// so that a response given to the wrong caller or corrupted on the way is noticed.
void fill_request(std::uint64_t n, std::string& msg, std::string& blob) {
  msg = std::to_string(n);
  for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>((n * 131 + i * 7) & 0xff);
}

/// One of the W coroutines: takes call numbers until none is left.
asio::awaitable<void> worker(run_state& st) {
  std::string msg;
  std::string blob(st.opt.payload, '\0');
  call_response buffers;  // handed back to every call: its byte_buffers are reused
  while (st.first_error.empty() && st.next_call < st.opt.calls) {
    std::uint64_t n = st.next_call++;
    fill_request(n, msg, blob);
    // msg and blob must stay valid until the call completes: they live in this frame.
    auto [ec, resp] = co_await st.client.async_call(echo_action, {msg.data(), msg.size()},
                                                    {blob.data(), blob.size()}, std::move(buffers), tok);
    if (ec) {
      if (st.first_error.empty()) st.first_error = fmt::format("call {} failed: {}", n, ec.message());
      co_return;
    }
    if (resp.msg.view() != msg || resp.blob.view() != blob) {
      if (st.first_error.empty())
        st.first_error = fmt::format("call {}: the echo differs (msg {} bytes, blob {} bytes)", n,
                                     resp.msg.size(), resp.blob.size());
      co_return;
    }
    ++st.done;
    buffers = std::move(resp);
  }
}

asio::awaitable<int> run(options opt) {
  auto ex = co_await asio::this_coro::executor;
  address to;
  if (parse_address(opt.connect, to)) {
    fmt::print(stderr, "02_echo_client: invalid address '{}'\n", opt.connect);
    co_return 2;
  }

  auto [ec, client] = co_await client_stream::async_connect(ex, to, client_config{},
                                                            logger::to_stderr(log_level::warn), tok);
  if (ec) {
    fmt::print(stderr, "02_echo_client: cannot connect to {}: {}\n", to.to_string(), ec.message());
    co_return 1;
  }
  auto [pec] = co_await client.async_ping(tok);
  if (pec) {
    fmt::print(stderr, "02_echo_client: ping failed: {}\n", pec.message());
    co_return 1;
  }

  // W coroutines share the connection; the window (128 by default) bounds the requests on
  // the wire, and callers beyond it wait their turn in FIFO order.
  run_state st{client, opt};
  using spawn_op = decltype(asio::co_spawn(ex, worker(st), asio::deferred));
  std::vector<spawn_op> workers;
  auto count = std::max<std::uint64_t>(1, std::min(opt.inflight, opt.calls));
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < count; ++i) workers.push_back(asio::co_spawn(ex, worker(st), asio::deferred));
  auto [order, exceptions] = co_await asio::experimental::make_parallel_group(std::move(workers))
                                 .async_wait(asio::experimental::wait_for_all(), asio::deferred);
  std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;

  // Graceful close: nothing is in flight any more; completes once the socket is closed.
  co_await client.async_close(tok);

  for (auto& e : exceptions) {
    if (!e) continue;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      if (st.first_error.empty()) st.first_error = fmt::format("a worker threw: {}", x.what());
    }
  }
  if (!st.first_error.empty() || st.done != opt.calls) {
    fmt::print(stderr, "02_echo_client: {} ({} of {} calls succeeded)\n",
               st.first_error.empty() ? "not every call completed" : st.first_error, st.done, opt.calls);
    co_return 1;
  }
  fmt::print("{} calls in {:.3f} s: {:.0f} calls/s ({} in flight, {}-byte blobs)\n", st.done,
             seconds.count(), static_cast<double>(st.done) / std::max(seconds.count(), 1e-9), count,
             opt.payload);
  std::fflush(stdout);
  co_return 0;
}

void usage(std::FILE* to) {
  fmt::print(to, "usage: 02_echo_client --connect ADDR [--calls N] [--inflight W] [--payload B]\n"
                 "  ADDR: host:port, [v6]:port, /path or unix:/path\n"
                 "  N: calls to make (10000), W: calls in flight at once (64), B: blob bytes (64)\n");
}

std::optional<std::uint64_t> to_number(std::string_view s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      usage(stderr);
      return 2;
    }
    std::string_view value = argv[++i];
    std::optional<std::uint64_t> number;
    if (arg == "--connect") opt.connect = value;
    else if (arg == "--calls" && (number = to_number(value))) opt.calls = *number;
    else if (arg == "--inflight" && (number = to_number(value)) && *number > 0) opt.inflight = *number;
    else if (arg == "--payload" && (number = to_number(value)) && *number <= 0x7fff'ffffu) opt.payload = *number;
    else {
      usage(stderr);
      return 2;
    }
  }
  if (opt.connect.empty()) {
    usage(stderr);
    return 2;
  }

  try {
    // One thread runs the io_context: a client_stream's executor must be serial.
    asio::io_context io(1);
    int status = 1;
    asio::co_spawn(io, run(opt), [&](std::exception_ptr e, int s) {
      if (e) std::rethrow_exception(e);  // escapes io.run(), caught below
      status = s;
    });
    io.run();
    return status;
  } catch (const std::exception& e) {
    fmt::print(stderr, "02_echo_client: {}\n", e.what());
    return 1;
  }
}
