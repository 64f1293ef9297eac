// A server on several threads (a runtime::context_pool): connections spread over the
// contexts, each wholly on its own; load from many connections; a graceful shutdown and a
// destruction while every thread is busy; the memory budget shared across threads. The
// clients run on the test's thread. Run under the tsan preset too.
#include "test_support.hpp"

#include <occams_rpc/proto/header.hpp>
#include <occams_rpc/runtime/context_pool.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace occams_rpc;
using namespace ::test;

namespace {

/// What the server's threads saw: for each client connection (named by the request's msg),
/// the threads its requests were dispatched on.
struct thread_record {
  std::mutex m;
  std::map<std::string, std::set<std::thread::id>> by_connection;
  void add(std::string conn) {
    std::lock_guard lock(m);
    by_connection[std::move(conn)].insert(std::this_thread::get_id());
  }
  /// A copy, under the lock (the server's threads wrote it).
  std::map<std::string, std::set<std::thread::id>> connections() {
    std::lock_guard lock(m);
    return by_connection;
  }
  std::set<std::thread::id> all_threads() {
    std::lock_guard lock(m);
    std::set<std::thread::id> all;
    for (auto& [conn, ids] : by_connection) all.insert(ids.begin(), ids.end());
    return all;
  }
};

/// Echoes, noting the thread.
struct recording_echo {
  thread_record* record;
  void operator()(server_request req) const {
    record->add(std::string(req.msg().begin(), req.msg().end()));
    req.respond(req.msg(), req.blob());
  }
};

/// Log lines kept for the test, from any thread.
struct shared_log {
  std::mutex m;
  std::vector<std::string> lines;
  logger make(log_level level) {
    return {level, [this](log_level, std::string_view s) {
              std::lock_guard lock(m);
              lines.emplace_back(s);
            }};
  }
  std::size_t count(std::string_view part) {
    std::lock_guard lock(m);
    return static_cast<std::size_t>(
        std::count_if(lines.begin(), lines.end(), [&](auto& l) { return l.find(part) != std::string::npos; }));
  }
};

std::string request_header(std::uint64_t seq, std::uint32_t msg_len, std::uint32_t blob_len) {
  std::string h(proto::request_header_size, '\0');
  proto::encode(proto::request_header{.action_word = 1, .seq = seq, .msg_len = msg_len, .blob_len = blob_len}, h.data());
  return h;
}

/// Makes `calls` echo calls, one after another, on `c`; counts the good answers.
asio::awaitable<void> call_loop(client_stream& c, std::string name, int calls, std::atomic<int>& good) {
  std::string blob(200, 'b');
  for (int i = 0; i < calls; ++i) {
    blob[i % blob.size()] = static_cast<char>('a' + i % 26);
    auto [ec, r] = co_await c.async_call(1, text_bytes(name), text_bytes(blob), {}, tok);
    if (!ec && str(r.msg) == name && str(r.blob) == blob) ++good;
  }
}

}  // namespace

TEST_CASE("a server on three threads spreads 12 connections over them and serves each wholly on one",
          "[stream][threads]") {
  runtime::context_pool pool(3);
  thread_record record;
  server srv(pool.executors(), recording_echo{&record});
  auto where = srv.listen("127.0.0.1:0");
  pool.start();
  asio::io_context io;
  constexpr int connections = 12, loops = 4, calls = 30;
  std::atomic<int> good{0};
  run(io, [&]() -> asio::awaitable<void> {
    std::vector<client_stream> clients;
    for (int i = 0; i < connections; ++i) clients.push_back(co_await connect(where));
    int done = 0;
    for (int i = 0; i < connections; ++i)
      for (int l = 0; l < loops; ++l)
        asio::co_spawn(io, call_loop(clients[i], "conn" + std::to_string(i), calls, good), [&](auto) { ++done; });
    co_await wait_until([&] { return done == connections * loops; });
    CHECK(srv.connection_count() == connections);
    CHECK(srv.accepted_count() == connections);
  });
  CHECK(good == connections * loops * calls);
  auto seen = record.connections();
  REQUIRE(seen.size() == connections);
  for (auto& [conn, ids] : seen) {
    INFO(conn);
    CHECK(ids.size() == 1);  // every request of a connection on its one thread
  }
  auto threads = record.all_threads();
  CHECK(threads.size() == 3);  // in turn: every context got connections
  CHECK_FALSE(threads.count(std::this_thread::get_id()));
}

TEST_CASE("a graceful shutdown while every thread is busy answers each request read and closes every connection",
          "[stream][threads]") {
  runtime::context_pool pool(2);
  std::atomic<int> dispatched{0};
  // Each request waits 50 ms on its connection's executor before its answer.
  auto slow = [&](server_request req) -> asio::awaitable<void> {
    ++dispatched;
    co_await sleep_for(50ms);
    req.respond(req.msg(), req.blob());
  };
  server srv(pool.executors(), slow, server_config{.close_wait = 10s});
  auto where = srv.listen("127.0.0.1:0");
  pool.start();
  asio::io_context io;
  constexpr int connections = 8, in_flight = 4;
  run(io, [&]() -> asio::awaitable<void> {
    std::vector<client_stream> clients;
    for (int i = 0; i < connections; ++i) clients.push_back(co_await connect(where));
    int answered = 0, failed = 0;
    for (auto& c : clients)
      for (int k = 0; k < in_flight; ++k)
        c.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code ec, call_response) { ++(ec ? failed : answered); });
    co_await wait_until([&] { return dispatched == connections * in_flight; });
    auto [ec] = co_await srv.async_shutdown(tok);
    CHECK_FALSE(ec);
    CHECK(srv.connection_count() == 0);
    co_await wait_until([&] { return answered + failed == connections * in_flight; });
    CHECK(answered == connections * in_flight);  // drained on both threads, nothing lost
    // Nobody listens any more.
    asio::generic::stream_protocol::socket s(io);
    auto cec = co_await socket_transport{}.connect(io.get_executor(), where, 2s, s);
    CHECK(cec);
  });
}

TEST_CASE("a server destroyed while its threads are busy fails the calls in flight and closes every connection",
          "[stream][threads]") {
  runtime::context_pool pool(2);
  std::atomic<int> dispatched{0};
  std::vector<server_request> held;  // on no thread but the ones that push: guarded
  std::mutex held_m;
  auto holding = [&](server_request req) {
    std::lock_guard lock(held_m);
    held.push_back(std::move(req));
    ++dispatched;
  };
  auto srv = std::make_unique<server<decltype(holding)>>(pool.executors(), holding);
  auto where = srv->listen("127.0.0.1:0");
  pool.start();
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    std::vector<client_stream> clients;
    for (int i = 0; i < 6; ++i) clients.push_back(co_await connect(where));
    int failed = 0;
    for (auto& c : clients)
      c.async_call(1, text_bytes("x"), {}, {}, [&](std::error_code ec, call_response) { failed += ec ? 1 : 0; });
    co_await wait_until([&] { return dispatched == 6; });
    srv.reset();
    co_await wait_until([&] { return failed == 6; });
    for (auto& c : clients) CHECK_FALSE(c.is_open());
  });
  std::lock_guard lock(held_m);
  held.clear();  // answering a closed connection drops the answer
}

TEST_CASE("the memory budget holds across threads: a connection waiting on one thread is woken by an answer on another",
          "[stream][threads][budget]") {
  runtime::context_pool pool(2);
  shared_log log;
  thread_record record;
  server_config cfg{.max_frame_size = 1u << 20, .max_buffered_bytes = 1u << 20};
  server srv(pool.executors(), recording_echo{&record}, cfg, log.make(log_level::debug));
  auto where = srv.listen("127.0.0.1:0");  // connections alternate between the two threads
  pool.start();
  asio::io_context io;
  constexpr std::uint32_t big = 900'000;
  run(io, [&]() -> asio::awaitable<void> {
    // The first: its 900 KB frame reserved, part of it sent.
    auto first = co_await raw_connect(where);
    std::string part = request_header(1, 1, big) + "1" + std::string(100'000, 'r');
    co_await asio::async_write(first, asio::buffer(part), asio::deferred);
    co_await wait_until([&] { return srv.buffered_bytes() > 0; });
    // The second (on the other thread): its 900 KB cannot be covered; it waits.
    auto second = co_await raw_connect(where);
    std::string head = request_header(1, 1, big) + "2";
    co_await asio::async_write(second, asio::buffer(head), asio::deferred);
    co_await wait_until([&] { return log.count("waiting for") == 1; });
    // The first finishes; its answer gives the budget back on its thread, which wakes the
    // second on the other.
    std::string rest(big - 100'000, 'r');
    co_await asio::async_write(first, asio::buffer(rest), asio::deferred);
    std::string answer(proto::response_header_size + 1 + big, '\0');
    auto [e1, n1] = co_await asio::async_read(first, asio::buffer(answer), tok);
    CHECK_FALSE(e1);
    std::string body(big, 's');
    co_await asio::async_write(second, asio::buffer(body), asio::deferred);
    auto [e2, n2] = co_await asio::async_read(second, asio::buffer(answer), tok);
    CHECK_FALSE(e2);
    co_await wait_until([&] { return srv.buffered_bytes() == 0; });
  });
  CHECK(log.count("waiting for") == 1);
  REQUIRE(record.connections().size() == 2);
  CHECK(record.all_threads().size() == 2);  // the two connections were on different threads
}
