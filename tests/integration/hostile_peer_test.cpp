// The server and the client against hostile or broken peers: fd exhaustion, lying length
// fields, trickled frames, memory hogs, failed allocations, odd responses. Each test drives a
// raw socket (or a raw server) against the library on loopback.
#include "test_support.hpp"
#include "unit/support/alloc_counter.hpp"

#include <occams_rpc/proto/header.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace occams_rpc;
using namespace ::test;

namespace {

struct echo {
  void operator()(server_request req) { req.respond(req.msg(), req.blob()); }
};

/// Log lines kept for the test to read (the server's executor is this thread).
struct captured_log {
  std::vector<std::string> lines;
  logger make(log_level level = log_level::debug) {
    return {level, [this](log_level, std::string_view m) { lines.emplace_back(m); }};
  }
  std::size_t count(std::string_view part) const {
    return static_cast<std::size_t>(
        std::count_if(lines.begin(), lines.end(), [&](auto& l) { return l.find(part) != std::string::npos; }));
  }
};

using generic_socket = asio::generic::stream_protocol::socket;


std::string request_header(std::uint64_t seq, std::uint32_t action, std::uint32_t msg_len, std::uint32_t blob_len) {
  std::string h(proto::request_header_size, '\0');
  proto::encode(proto::request_header{.action_word = action, .seq = seq, .msg_len = msg_len, .blob_len = blob_len},
                h.data());
  return h;
}
std::string response_header(std::uint64_t seq, proto::response_flag flag, std::uint32_t msg_len,
                            std::uint32_t blob_len) {
  std::string h(proto::response_header_size, '\0');
  proto::encode(proto::response_header{.flag = flag, .msg_len = msg_len, .seq = seq, .blob_len = blob_len}, h.data());
  return h;
}

/// The process's resident and virtual memory, from /proc/self/status, in bytes.
std::size_t proc_status_kib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1)) * 1024;
  return 0;
}
std::size_t rss() { return proc_status_kib("VmRSS"); }
std::size_t vm_size() { return proc_status_kib("VmSize"); }

/// Sanitizers keep freed memory in quarantine and add shadow memory: process memory figures
/// say nothing about the library's own use there, so the memory bounds are checked without them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool memory_figures_meaningful = false;
#else
constexpr bool memory_figures_meaningful = true;
#endif

/// UBSan's vptr check probes memory through a pipe of its own: with no fd left, it reports every
/// virtual call as one on an invalid object. Under ASan+UBSan the fd-exhaustion test therefore
/// does not run; it runs under TSan and in every other build.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool can_exhaust_fds = false;
#else
constexpr bool can_exhaust_fds = true;
#endif

/// The highest fd open in this process.
int highest_fd() {
  int top = -1;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.' && std::atoi(e->d_name) != ::dirfd(d)) top = std::max(top, std::atoi(e->d_name));
    ::closedir(d);
  }
  return top;
}

/// Leaves this process without a free fd for its lifetime, as a server out of fds is: the
/// soft limit comes down to the fds open now, and the free ones below it are taken (each
/// test runs in its own process).
struct out_of_fds {
  rlimit saved{};
  std::vector<int> fillers;
  out_of_fds() {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    rlimit lowered = saved;
    lowered.rlim_cur = static_cast<rlim_t>(highest_fd() + 1);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
  }
  void release() {
    for (int fd : fillers) ::close(fd);
    fillers.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved);
  }
  ~out_of_fds() { release(); }
};

/// A raw TCP server on 127.0.0.1 that answers the first request it reads with `answer`
/// (the request's seq patched in at its offset), then stays silent with the connection open.
struct scripted_server {
  asio::ip::tcp::acceptor acceptor;
  std::string answer;
  std::vector<std::shared_ptr<asio::ip::tcp::socket>> kept;
  scripted_server(asio::io_context& io, std::string a)
      : acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), answer(std::move(a)) {}
  std::string where() const { return "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()); }
  asio::awaitable<void> serve_one() {
    auto s = std::make_shared<asio::ip::tcp::socket>(co_await asio::this_coro::executor);
    co_await acceptor.async_accept(*s, asio::deferred);
    kept.push_back(s);
    char head[proto::request_header_size];
    co_await asio::async_read(*s, asio::buffer(head), asio::deferred);
    proto::request_header h;
    REQUIRE_FALSE(proto::decode(head, h));
    std::string rest(h.body_len(), '\0');
    co_await asio::async_read(*s, asio::buffer(rest), asio::deferred);
    std::string reply = answer;
    std::memcpy(reply.data() + 8, &h.seq, 8);  // little-endian seq at offset 8
    co_await asio::async_write(*s, asio::buffer(reply), asio::deferred);
  }
};

}  // namespace

TEST_CASE("accept backs off while the process is out of fds, serves open connections, and accepts again once fds free up",
          "[stream][hostile]") {
  if (!can_exhaust_fds) {
    WARN("not run under ASan+UBSan: its runtime needs fds of its own");
    return;
  }
  asio::io_context io;
  captured_log log;
  server srv(io.get_executor(), echo{}, {}, log.make());
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    // A socket made before the limit is lowered: connecting it needs no new fd in this
    // process, but accepting it does.
    asio::ip::tcp::socket late(co_await asio::this_coro::executor);
    late.open(asio::ip::tcp::v4());
    {
      out_of_fds exhausted;
      auto [ec] = co_await late.async_connect({asio::ip::make_address("127.0.0.1"), where.port}, tok);
      REQUIRE_FALSE(ec);
      // 300 ms of EMFILE: a loop that retried at once would fail (and log) thousands of times.
      co_await sleep_for(300ms);
      CHECK(log.count("Too many open files") >= 1);
      CHECK(log.count("Too many open files") <= 2);
      CHECK(srv.accepted_count() == 1);
      // The open connection is served meanwhile.
      auto [e, r] = co_await client.async_call(1, text_bytes("still served"), {}, {}, tok);
      CHECK_FALSE(e);
      CHECK(str(r.msg) == "still served");
    }
    // fds free again: the waiting connection is accepted and served.
    co_await wait_until([&] { return srv.accepted_count() == 2; });
    std::string ping = request_header(1, 0, 0, 0);
    co_await asio::async_write(late, asio::buffer(ping), asio::deferred);
    char pong[proto::response_header_size];
    co_await asio::async_read(late, asio::buffer(pong), asio::deferred);
    CHECK(log.count("accepting on") == 1);  // "accepting on ... again after N failed accepts"
  });
}

TEST_CASE("thousands of idle connections close in O(1) each: dropped at once, or at a graceful shutdown",
          "[stream][hostile]") {
  // Closing is O(1) per connection (an intrusive list): 15,000 drops once cost the server
  // seconds of CPU, quadratic in the number of connections.
  rlimit lim{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  const std::size_t n = std::min<std::size_t>(5000, (lim.rlim_cur - 100) / 2);
  const bool by_shutdown = GENERATE(false, true);
  INFO((by_shutdown ? "graceful shutdown" : "dropped by the peers"));
  asio::io_context io;
  server srv(io.get_executor(), echo{});
  auto where = srv.listen(listen_address(true));
  run(
      io,
      [&]() -> asio::awaitable<void> {
        std::vector<generic_socket> peers;
        peers.reserve(n);
        for (std::size_t i = 0; i < n; ++i) peers.push_back(co_await raw_connect(where));
        co_await wait_until([&] { return srv.connection_count() == n; });
        if (by_shutdown) {
          auto [ec] = co_await srv.async_shutdown(tok);
          CHECK_FALSE(ec);
          CHECK(srv.connection_count() == 0);
          co_return;
        }
        for (auto& p : peers) p.close();
        co_await wait_until([&] { return srv.connection_count() == 0; });
        auto client = co_await connect(where);
        auto [e, r] = co_await client.async_call(1, text_bytes("hello"), {}, {}, tok);
        CHECK_FALSE(e);
        CHECK(srv.accepted_count() == n + 1);
      },
      60s);
}

TEST_CASE("headers claiming huge bodies cost the server only the bytes really sent", "[stream][hostile]") {
  asio::io_context io;
  server srv(io.get_executor(), echo{});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    std::size_t before = vm_size();
    std::vector<generic_socket> liars;
    const std::uint32_t claimed = 60u << 20;
    for (int i = 0; i < 40; ++i) {
      auto s = co_await raw_connect(where);
      std::string h = request_header(1, 1, 0, claimed) + std::string(100, 'x');
      co_await asio::async_write(s, asio::buffer(h), asio::deferred);
      liars.push_back(std::move(s));
    }
    co_await wait_until([&] { return srv.connection_count() == 40; });
    co_await sleep_for(100ms);  // every header read
    // Reserving on the header's word took 40 x 60 MiB = 2.4 GB of virtual memory.
    std::size_t grown = vm_size() - std::min(before, vm_size());
    INFO("VmSize grew by " << grown / 1024 << " KiB");
    if (memory_figures_meaningful) CHECK(grown < (256u << 20));
    // An honest client is served meanwhile.
    auto client = co_await connect(where);
    auto [e, r] = co_await client.async_call(1, text_bytes("hi"), {}, {}, tok);
    CHECK_FALSE(e);
  });
}

TEST_CASE("the request memory budget bounds what stalled large senders hold, and the read timeout closes them",
          "[stream][hostile]") {
  // 16 hogs each claim a 20 MiB frame, send 12 MiB of it and stall. The budget (64 MiB)
  // lets three read at a time; the others wait unread. The read timeout closes those that
  // stall mid-frame, which lets the next ones in; small calls are served throughout.
  asio::io_context io;
  captured_log log;
  server_config cfg{.read_timeout = 400ms, .max_frame_size = 32u << 20, .max_buffered_bytes = 64u << 20,
                    .timer_tick = 50ms};
  server srv(io.get_executor(), echo{}, cfg, log.make(log_level::info));
  auto where = srv.listen(listen_address(true));
  run(
      io,
      [&]() -> asio::awaitable<void> {
        const std::string body(12u << 20, 'h');  // one buffer that every hog sends from
        const std::size_t hogs = 16;
        std::size_t before = rss();
        std::vector<generic_socket> sockets;
        sockets.reserve(hogs);  // the writes under way refer to their socket: it must not move
        std::size_t peak_budget = 0, peak_rss = 0;
        auto head = request_header(1, 1, 0, 20u << 20);
        for (std::size_t i = 0; i < hogs; ++i) {
          sockets.push_back(co_await raw_connect(where));
          std::array<asio::const_buffer, 2> frame{asio::buffer(head), asio::buffer(body)};
          asio::async_write(sockets.back(), frame, [](auto, auto) {});  // completes, or fails when closed
        }
        auto client = co_await connect(where);
        std::size_t closed = 0;
        for (int round = 0; round < 400 && closed < hogs; ++round) {
          co_await sleep_for(25ms);
          peak_budget = std::max(peak_budget, srv.buffered_bytes());
          peak_rss = std::max(peak_rss, rss());
          auto [e, r] = co_await client.async_call(1, text_bytes("small"), {}, {}, tok);
          CHECK_FALSE(e);
          closed = log.count("read timeout");
        }
        CHECK(closed == hogs);
        CHECK(peak_budget <= cfg.max_buffered_bytes);
        CHECK(peak_budget >= (40u << 20));  // two or three hogs read at once
        std::size_t grown = peak_rss - std::min(before, peak_rss);
        INFO("peak RSS grew by " << grown / (1 << 20) << " MiB");
        if (memory_figures_meaningful) CHECK(grown < (140u << 20));  // 16 hogs read at once: 192 MiB
        CHECK(srv.buffered_bytes() == 0);
        // A large call is served once the hogs are gone.
        const std::string large(5u << 20, 'L');
        auto [e, r] = co_await client.async_call(1, {}, text_bytes(large), {}, tok);
        CHECK_FALSE(e);
        CHECK(r.blob.size() == large.size());
        co_await wait_until([&] { return srv.buffered_bytes() == 0; });  // after the answer's write
      },
      60s);
}

TEST_CASE("after one large request, neither side keeps its memory", "[stream][hostile]") {
  asio::io_context io;
  server srv(io.get_executor(), echo{});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where);
    auto [e0, r0] = co_await client.async_call(1, text_bytes("warm up"), {}, {}, tok);
    CHECK_FALSE(e0);
    std::size_t before = rss();
    {
      std::string large(40u << 20, 'L');
      auto [e, r] = co_await client.async_call(1, {}, text_bytes(large), {}, tok);
      CHECK_FALSE(e);
      CHECK(r.blob.size() == large.size());
    }
    // A few small calls after it, as an idle connection's pings would be.
    for (int i = 0; i < 3; ++i) {
      auto [e, r] = co_await client.async_call(1, text_bytes("small"), {}, {}, tok);
      CHECK_FALSE(e);
    }
    std::size_t after = rss();
    std::size_t kept = after - std::min(before, after);
    INFO("RSS kept after the large call: " << kept / 1024 << " KiB");
    // Both read buffers once kept the 40 MiB frame (80 MiB together).
    if (memory_figures_meaningful) CHECK(kept < (16u << 20));
  });
}

TEST_CASE("a failed allocation in a connection's reader closes that connection with a logged reason",
          "[stream][hostile]") {
  asio::io_context io;
  captured_log log;
  server srv(io.get_executor(), echo{}, {}, log.make(log_level::warn));
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto victim = co_await connect(where, {.call_timeout = 3s});
    auto other = co_await connect(where);
    const std::string large(4u << 20, 'A');  // sent by reference: the client copies nothing
    std::error_code failed;
    {
      occams_rpc::test::failing_allocations no_large(1u << 20);  // as under a low RLIMIT_AS
      auto [e, r] = co_await victim.async_call(1, {}, text_bytes(large), {}, tok);
      failed = e;
    }
    CHECK(failed == make_error_code(errc::io_err));  // closed, not left to time out
    CHECK(log.count("reader failed: std::bad_alloc") == 1);
    auto [e, r] = co_await other.async_call(1, text_bytes("fine"), {}, {}, tok);
    CHECK_FALSE(e);
    CHECK(srv.connection_count() == 1);
  });
}

TEST_CASE("a failed allocation while a large request arrives gives its memory budget back", "[stream][hostile]") {
  asio::io_context io;
  server srv(io.get_executor(), echo{}, {.max_retained_buffers = 32u << 20});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await connect(where, {.call_timeout = 3s});
    // A first large request grows the read buffer, which is kept for reuse (the echo moves
    // the slot's request buffer into its answer) ...
    const std::string first(4u << 20, 'a');
    auto [e1, r1] = co_await client.async_call(1, {}, text_bytes(first), {}, tok);
    CHECK_FALSE(e1);
    co_await wait_until([&] { return srv.buffered_bytes() == 0; });
    // ... so that the second one arrives without a new read buffer and fails where it is
    // copied for its request: the connection closes and the budget is whole again.
    const std::string second(3u << 20, 'b');
    std::error_code failed;
    {
      occams_rpc::test::failing_allocations no_large(1u << 20);
      auto [e, r] = co_await client.async_call(1, {}, text_bytes(second), {}, tok);
      failed = e;
    }
    CHECK(failed == make_error_code(errc::io_err));
    co_await wait_until([&] { return srv.connection_count() == 0; });
    CHECK(srv.buffered_bytes() == 0);
  });
}

TEST_CASE("a connection that waits past the idle timeout for the memory budget is closed, and the one reading is not",
          "[stream][hostile]") {
  asio::io_context io;
  captured_log log;
  server_config cfg{.idle_timeout = 300ms, .read_timeout = 20s, .max_frame_size = 1u << 20,
                    .max_buffered_bytes = 1u << 20, .timer_tick = 50ms};
  server srv(io.get_executor(), echo{}, cfg, log.make(log_level::info));
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    // The reader: granted 900 KB of the 1 MiB budget, sends part of its frame and pauses.
    auto reading = co_await raw_connect(where);
    std::string part = request_header(1, 1, 0, 900'000) + std::string(100'000, 'r');
    co_await asio::async_write(reading, asio::buffer(part), asio::deferred);
    co_await wait_until([&] { return srv.buffered_bytes() > 0; });
    // The waiter: its 900 KB cannot be covered while the first holds the budget.
    auto waiting = co_await raw_connect(where);
    std::string head = request_header(1, 1, 0, 900'000);
    co_await asio::async_write(waiting, asio::buffer(head), asio::deferred);
    co_await wait_until([&] { return log.count("request memory budget") == 1; });
    CHECK(srv.connection_count() == 1);  // the waiter is gone
    // The reader, mid-frame and within its read timeout, is neither idle nor closed: it
    // finishes its frame and gets its answer.
    std::string rest(800'000, 'r');
    co_await asio::async_write(reading, asio::buffer(rest), asio::deferred);
    std::string answer(proto::response_header_size + 900'000, '\0');
    auto [ec, n] = co_await asio::async_read(reading, asio::buffer(answer), tok);
    CHECK_FALSE(ec);
    CHECK(log.count("idle timeout") == 0);
  });
}

TEST_CASE("a trickled request frame is closed by the server's read timeout", "[stream][hostile]") {
  asio::io_context io;
  captured_log log;
  server srv(io.get_executor(), echo{}, {.read_timeout = 300ms, .timer_tick = 50ms}, log.make(log_level::warn));
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto s = co_await raw_connect(where);
    std::string h = request_header(1, 1, 1000, 0);
    co_await asio::async_write(s, asio::buffer(h), asio::deferred);
    // One byte every 50 ms: always some traffic (the idle timeout never fires), never a frame.
    bool closed = false;
    for (int i = 0; i < 100 && !closed; ++i) {
      auto [ec, n] = co_await asio::async_write(s, asio::buffer("x", 1), tok);
      closed = static_cast<bool>(ec);
      co_await sleep_for(50ms);
      closed = closed || srv.connection_count() == 0;
    }
    CHECK(closed);
    CHECK(log.count("read timeout") == 1);
  });
}

TEST_CASE("a server stalled mid-frame fails the client connection after its read timeout", "[stream][hostile]") {
  asio::io_context io;
  // A response header promising 100 bytes of msg, then 10 of them, then nothing.
  scripted_server peer(io, response_header(0, proto::response_flag::ok, 100, 0) + std::string(10, 'm'));
  run(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, peer.serve_one(), asio::detached);
    auto client = co_await connect(parse_address(peer.where()),
                                   {.call_timeout = 30s, .read_timeout = 300ms, .timeout_tick = 50ms});
    auto [e, r] = co_await client.async_call(1, text_bytes("hi"), {}, {}, tok);
    CHECK(e == make_error_code(errc::io_err));
    CHECK_FALSE(client.is_open());
  }, 10s);
}

TEST_CASE("a pong with a body fails the ping with io_err", "[stream][hostile]") {
  asio::io_context io;
  scripted_server peer(io, response_header(0, proto::response_flag::ok, 3, 0) + "abc");
  run(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, peer.serve_one(), asio::detached);
    auto client = co_await connect(parse_address(peer.where()));
    auto [e] = co_await client.async_ping(tok);
    CHECK(e == make_error_code(errc::io_err));
  });
}

TEST_CASE("an error code outside 1..2^31-1 fails the call with errc::decode", "[stream][hostile]") {
  std::uint32_t code = GENERATE(0u, 0x80000000u, 0xffffffffu);
  INFO("code " << code);
  asio::io_context io;
  scripted_server peer(io, response_header(0, proto::response_flag::error_code, code, 0));
  run(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, peer.serve_one(), asio::detached);
    auto client = co_await connect(parse_address(peer.where()));
    auto [e, r] = co_await client.async_call(1, text_bytes("hi"), {}, {}, tok);
    CHECK(e == make_error_code(errc::decode));
    CHECK(client.is_open());  // one odd answer, not a broken stream
  });
}

TEST_CASE("an error code of 2^31-1 reaches the caller unchanged", "[stream][hostile]") {
  asio::io_context io;
  scripted_server peer(io, response_header(0, proto::response_flag::error_code, 0x7fffffffu, 0));
  run(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, peer.serve_one(), asio::detached);
    auto client = co_await connect(parse_address(peer.where()));
    auto [e, r] = co_await client.async_call(1, text_bytes("hi"), {}, {}, tok);
    CHECK(e == std::error_code(0x7fffffff, remote_category()));
  });
}
