// client_session driven event by event: no socket, no executor, no sleep. A test plays the
// server: it takes the batches the session would write, parses them, and feeds responses back
// as bytes, with time passed in.
#include "unit/support/frames.hpp"

#include <occams_rpc/session/client_session.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace occams_rpc;
using namespace std::chrono_literals;
using session::client_call;
using session::client_session;

namespace {

struct completion {
  std::uint64_t seq;
  std::error_code ec;
  std::string msg;
  std::string blob;
};

std::span<const char> bytes_of(const std::string& s) { return {s.data(), s.size()}; }

struct harness {
  explicit harness(client_config c = small_config()) : cfg(c), s(cfg, {}) {}

  static client_config small_config() {
    client_config c;
    c.window = 4;
    c.call_timeout = 2s;
    c.timeout_tick = 1s;
    c.read_timeout = 5s;
    c.write_timeout = 5s;
    return c;
  }

  std::uint64_t call(const std::string& msg, const std::string& blob = {}) {
    client_call* c = s.start_call(1u, bytes_of(msg), bytes_of(blob), nullptr, call_response{});
    REQUIRE(c != nullptr);
    return c->seq;
  }

  /// Takes the pending batch (the session's write); the write completes at once unless told.
  std::string write(bool complete = true, std::error_code ec = {}) {
    if (!s.has_write()) return {};
    std::string out;
    for (auto seg : s.begin_write(now)) out.append(seg.data(), seg.size());
    if (complete) s.on_write_done(ec, now);
    return out;
  }

  /// The requests in a batch, as the server reads them.
  static std::vector<std::uint64_t> request_seqs(const std::string& bytes) {
    proto::request_reader r;
    r.feed(test::as_span(bytes));
    std::vector<std::uint64_t> seqs;
    proto::request_frame f;
    std::error_code ec;
    while (r.next(f, ec) == proto::read_status::frame) seqs.push_back(f.header.seq);
    CHECK_FALSE(ec);
    return seqs;
  }

  /// The server's bytes arrive, `chunk` at a time.
  void deliver(const std::string& bytes, std::size_t chunk = 1u << 30) {
    for (std::size_t off = 0; off < bytes.size();) {
      auto room = s.read_buffer();
      std::size_t n = std::min({chunk, room.size(), bytes.size() - off});
      std::copy_n(bytes.data() + off, n, room.data());
      s.on_read(n, now);
      off += n;
    }
  }

  void respond(std::uint64_t seq, const std::string& msg, const std::string& blob = {}) {
    proto::frame_writer w;
    w.add_response(seq, bytes_of(msg), bytes_of(blob));
    deliver(test::wire(w));
  }

  void tick(std::size_t bytes_in_socket = 0) {
    now += cfg.timeout_tick;
    s.on_tick(now, bytes_in_socket);
  }

  /// What the shell would do after an event: take every completion and release it.
  std::vector<completion> drain() {
    std::vector<completion> out;
    for (;;) {
      if (auto* w = s.next_granted()) {
        granted.push_back(w);
        continue;
      }
      client_call* c = s.next_done();
      if (!c) break;
      completion d{c->seq, c->result, {}, {}};
      if (c->into) {
        d.msg = std::string(c->into->msg.view());
        d.blob = std::string(c->into->blob.view());
      }
      s.release(*c);
      out.push_back(std::move(d));
    }
    return out;
  }

  client_config cfg;
  client_session s;
  session::clock::time_point now{};
  std::vector<session::waiting_call*> granted;
};

std::vector<std::uint64_t> seqs_of(const std::vector<completion>& v) {
  std::vector<std::uint64_t> out;
  for (auto& d : v) out.push_back(d.seq);
  return out;
}

}  // namespace

TEST_CASE("calls made in one turn go out in one batch, in order", "[session]") {
  harness h;
  auto a = h.call("a");
  auto b = h.call("b");
  auto c = h.call("c");
  CHECK(h.s.has_write());
  auto batch = h.write();
  CHECK(harness::request_seqs(batch) == std::vector<std::uint64_t>{a, b, c});
  CHECK_FALSE(h.s.has_write());
  CHECK(h.s.in_flight() == 3);
}

TEST_CASE("responses complete their calls out of order, matched by seq", "[session]") {
  harness h;
  auto a = h.call("a");
  auto b = h.call("b");
  h.write();
  h.respond(b, "B");
  h.respond(a, "A", "blob");
  auto done = h.drain();
  REQUIRE(done.size() == 2);
  CHECK(done[0].seq == b);
  CHECK(done[0].msg == "B");
  CHECK(done[1].seq == a);
  CHECK(done[1].msg == "A");
  CHECK(done[1].blob == "blob");
  CHECK_FALSE(done[0].ec);
  CHECK(h.s.in_flight() == 0);
}

TEST_CASE("a response cut across many reads completes once its last byte arrives", "[session]") {
  harness h;
  auto a = h.call("a");
  h.write();
  proto::frame_writer w;
  w.add_response(a, bytes_of(std::string(300, 'x')));
  auto bytes = test::wire(w);
  h.deliver(bytes.substr(0, bytes.size() - 1), 7);
  CHECK(h.drain().empty());
  h.deliver(bytes.substr(bytes.size() - 1));
  auto done = h.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].msg == std::string(300, 'x'));
}

TEST_CASE("a full window makes callers wait in FIFO order; each release starts the next", "[session]") {
  harness h;  // window 4
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 4; ++i) seqs.push_back(h.call("x"));
  std::string msg = "w";
  CHECK(h.s.start_call(1u, bytes_of(msg), {}, nullptr, call_response{}) == nullptr);
  session::waiting_call w1, w2;
  w1.msg = w2.msg = bytes_of(msg);
  h.s.wait(w1);
  h.s.wait(w2);
  CHECK(h.s.waiting() == 2);
  // A newcomer does not overtake the waiters.
  CHECK(h.s.start_call(1u, bytes_of(msg), {}, nullptr, call_response{}) == nullptr);
  h.write();
  h.respond(seqs[2], "r");
  auto done = h.drain();
  CHECK(seqs_of(done) == std::vector<std::uint64_t>{seqs[2]});
  REQUIRE(h.granted.size() == 1);
  CHECK(h.granted[0] == &w1);
  CHECK(w1.seq != 0);
  CHECK_FALSE(w1.refused);
  CHECK(h.s.waiting() == 1);
  CHECK(harness::request_seqs(h.write()) == std::vector<std::uint64_t>{w1.seq});
  h.respond(seqs[0], "r");
  h.drain();
  REQUIRE(h.granted.size() == 2);
  CHECK(h.granted[1] == &w2);
  CHECK(h.s.in_flight() == 4);
}

TEST_CASE("a cancelled call completes with cancelled and its late response is dropped", "[session]") {
  harness h;
  auto a = h.call("a");
  h.write();
  CHECK(h.s.cancel(a));
  auto done = h.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].ec == errc::cancelled);
  CHECK_FALSE(h.s.cancel(a));  // already done
  h.respond(a, "late");
  CHECK(h.drain().empty());
  CHECK(h.s.current_state() == client_session::state::open);
}

TEST_CASE("a waiting call can be cancelled and leaves the queue", "[session]") {
  harness h;
  for (int i = 0; i < 4; ++i) h.call("x");
  session::waiting_call w;
  h.s.wait(w);
  CHECK(h.s.cancel_waiting(w));
  CHECK(h.s.waiting() == 0);
  CHECK_FALSE(h.s.cancel_waiting(w));  // not queued any more
}

TEST_CASE("calls time out between their timeout and one tick later, never early", "[session]") {
  harness h;  // timeout 2 s, tick 1 s
  auto a = h.call("a");
  h.write();
  h.tick();
  h.tick();
  CHECK(h.drain().empty());  // 2 ticks: not yet (a call made just after a tick gets its full time)
  h.tick();
  auto done = h.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].seq == a);
  CHECK(done[0].ec == errc::timeout);
  CHECK(h.s.current_state() == client_session::state::open);
}

TEST_CASE("a call whose large msg is referenced by an unwritten batch completes only once it is written",
          "[session]") {
  harness h;
  std::string big(64 * 1024, 'b');  // above the reference threshold: the batch points at it
  auto a = h.call(big);
  CHECK(h.s.cancel(a));
  CHECK(h.drain().empty());  // abandoned until the batch that references `big` is written
  h.write(false);            // the write is under way
  CHECK(h.drain().empty());
  h.s.on_write_done({}, h.now);
  auto done = h.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].ec == errc::cancelled);
}

TEST_CASE("error responses map to error codes: errno-like codes, known strings, other strings", "[session]") {
  harness h;
  auto a = h.call("a");
  auto b = h.call("b");
  auto c = h.call("c");
  auto d = h.call("d");
  h.write();
  proto::frame_writer w;
  w.add_error_code(a, 110);
  w.add_error_string(b, "rpc_timeout");
  w.add_error_string(c, "something broke");
  w.add_error_code(d, 0);
  h.deliver(test::wire(w));
  auto done = h.drain();
  REQUIRE(done.size() == 4);
  CHECK(done[0].ec == std::error_code(110, remote_category()));
  CHECK(done[1].ec == errc::timeout);
  CHECK(done[2].ec == errc::remote_error);
  CHECK(done[2].msg == "something broke");
  CHECK(done[3].ec == errc::decode);  // code 0 cannot be reported as an error
  CHECK(h.s.current_state() == client_session::state::open);
}

TEST_CASE("an error code of 2^31 or above fails the call with decode", "[session]") {
  harness h;
  auto a = h.call("a");
  h.write();
  proto::frame_writer w;
  w.add_error_code(a, 0x80000000u);
  h.deliver(test::wire(w));
  auto done = h.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].ec == errc::decode);
}

TEST_CASE("a pong completes its ping; a pong with a body fails it with io_err", "[session]") {
  harness h;
  client_call* p1 = h.s.start_ping();
  REQUIRE(p1);
  auto s1 = p1->seq;
  client_call* p2 = h.s.start_ping();
  REQUIRE(p2);
  auto s2 = p2->seq;
  h.write();
  h.respond(s1, "");
  h.respond(s2, "body");
  auto done = h.drain();
  REQUIRE(done.size() == 2);
  CHECK_FALSE(done[0].ec);
  CHECK(done[1].ec == errc::io_err);
}

TEST_CASE("pings beyond max_pings in flight are refused", "[session]") {
  harness h;
  for (std::size_t i = 0; i < h.cfg.window; ++i) h.call("x");
  for (std::size_t i = 0; i < client_session::max_pings; ++i) REQUIRE(h.s.start_ping());
  CHECK(h.s.start_ping() == nullptr);
}

TEST_CASE("pings beyond max_pings are refused with the window idle too, and the window's calls still fit",
          "[session]") {
  harness h;
  for (std::size_t i = 0; i < client_session::max_pings; ++i) REQUIRE(h.s.start_ping());
  CHECK(h.s.start_ping() == nullptr);
  for (std::size_t i = 0; i < h.cfg.window; ++i) h.call("x");
  CHECK(h.s.in_flight() == client_session::max_pings + h.cfg.window);
}

TEST_CASE("a graceful close lets the calls in flight finish, then closes the transport", "[session]") {
  harness h;
  auto a = h.call("a");
  h.write();
  h.s.close();
  CHECK(h.s.current_state() == client_session::state::closing);
  CHECK_FALSE(h.s.take_close_socket());
  h.respond(a, "A");
  auto done = h.drain();
  REQUIRE(done.size() == 1);
  CHECK_FALSE(done[0].ec);
  CHECK(h.s.current_state() == client_session::state::closed);
  CHECK(h.s.take_close_socket());
  CHECK_FALSE(h.s.take_close_socket());  // once
  CHECK(h.s.close_gracefully());  // TLS: close_notify
  CHECK(h.s.finished());
  CHECK(h.s.closed_reason() == errc::closed);
}

TEST_CASE("an aborted or failed session closes its transport at once, not gracefully", "[session]") {
  harness h;
  [[maybe_unused]] auto a = h.call("a");
  h.write();
  h.s.close();
  h.s.abort(make_error_code(errc::closed));
  CHECK(h.s.take_close_socket());
  CHECK_FALSE(h.s.close_gracefully());
  harness f;
  f.s.on_read_error(make_error_code(std::errc::connection_reset));
  CHECK(f.s.take_close_socket());
  CHECK_FALSE(f.s.close_gracefully());
}

TEST_CASE("a closing session with callers still waiting for the window closes once they are gone",
          "[session]") {
  harness h;
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 4; ++i) seqs.push_back(h.call("x"));
  session::waiting_call w;
  h.s.wait(w);
  h.s.close();
  h.write();
  for (auto seq : seqs) h.respond(seq, "r");
  h.drain();
  CHECK(h.s.current_state() == client_session::state::closing);  // w was started: still in flight
  REQUIRE(h.granted.size() == 1);
  h.write();
  h.respond(w.seq, "r");
  h.drain();
  CHECK(h.s.current_state() == client_session::state::closed);
}

TEST_CASE("a read error fails every call in flight and every waiting call with io_err", "[session]") {
  harness h;
  for (int i = 0; i < 4; ++i) h.call("x");
  session::waiting_call w;
  h.s.wait(w);
  h.write();
  h.s.on_read_error(make_error_code(std::errc::connection_reset));
  auto done = h.drain();
  CHECK(done.size() == 4);
  for (auto& d : done) CHECK(d.ec == errc::io_err);
  REQUIRE(h.granted.size() == 1);
  CHECK(w.seq == 0);
  CHECK(w.refused == errc::io_err);
  CHECK(h.s.take_close_socket());
  CHECK(h.s.closed_reason() == errc::io_err);
}

TEST_CASE("a write failure fails the connection; a batch queued meanwhile is never written", "[session]") {
  harness h;
  auto a = h.call("a");
  h.write(false);  // under way
  std::string big(64 * 1024, 'b');
  auto b = h.call(big);  // into the next batch, by reference
  CHECK(h.drain().empty());
  h.s.on_write_done(make_error_code(std::errc::broken_pipe), h.now);
  auto done = h.drain();
  REQUIRE(done.size() == 2);
  CHECK(seqs_of(done) == std::vector<std::uint64_t>{a, b});
  for (auto& d : done) CHECK(d.ec == errc::io_err);
  CHECK_FALSE(h.s.has_write());
  CHECK(h.s.finished());
}

TEST_CASE("an abort during a write completes referenced calls only after that write ends", "[session]") {
  harness h;
  std::string big(64 * 1024, 'b');
  auto a = h.call(big);
  h.write(false);
  h.s.abort(make_error_code(errc::closed));
  CHECK(h.drain().empty());  // the write under way still reads `big`
  CHECK_FALSE(h.s.finished());
  h.s.on_write_done(make_error_code(std::errc::operation_canceled), h.now);
  auto done = h.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].seq == a);
  CHECK(done[0].ec == errc::closed);
  CHECK(h.s.finished());
}

TEST_CASE("a write stuck past write_timeout fails the connection at the next tick", "[session]") {
  client_config cfg = harness::small_config();
  cfg.call_timeout = 60s;
  harness h(cfg);
  h.call("a");
  h.write(false);
  for (int i = 0; i < 5; ++i) h.tick();
  CHECK(h.s.current_state() == client_session::state::open);
  h.tick();  // 6 s > 5 s
  CHECK(h.s.current_state() == client_session::state::closed);
  CHECK(h.s.take_close_socket());
  auto done = h.drain();  // its small msg was copied into the batch: it need not wait for the write
  REQUIRE(done.size() == 1);
  CHECK(done[0].ec == errc::io_err);
  CHECK_FALSE(h.s.finished());  // until the write under way ends
  h.s.on_write_done(make_error_code(std::errc::operation_canceled), h.now);
  CHECK(h.s.finished());
}

TEST_CASE("a response frame stalled mid-way past read_timeout fails the connection, unless bytes wait in the socket",
          "[session]") {
  client_config cfg = harness::small_config();
  cfg.call_timeout = 60s;
  harness h(cfg);
  auto a = h.call("a");
  h.write();
  proto::frame_writer w;
  w.add_response(a, bytes_of(std::string(100, 'x')));
  auto bytes = test::wire(w);
  h.deliver(bytes.substr(0, 10));
  for (int i = 0; i < 5; ++i) h.tick(/*bytes_in_socket=*/1);
  CHECK(h.s.current_state() == client_session::state::open);  // progress has arrived
  h.tick(0);
  CHECK(h.s.current_state() == client_session::state::closed);
  auto done = h.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].ec == errc::io_err);
}

TEST_CASE("a malformed response frame closes the connection and fails its calls", "[session]") {
  client_config cfg = harness::small_config();
  cfg.max_frame_size = 1024;
  harness h(cfg);
  auto a = h.call("a");
  h.write();
  proto::frame_writer w;
  w.add_response(a, bytes_of(std::string(4096, 'x')));  // larger than max_frame_size
  h.deliver(test::wire(w));
  CHECK(h.s.current_state() == client_session::state::closed);
  CHECK(h.s.take_close_socket());
  auto done = h.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].ec == errc::io_err);
}

TEST_CASE("a response for a seq nobody waits for is dropped and nothing else changes", "[session]") {
  harness h;
  auto a = h.call("a");
  h.write();
  h.respond(a + 1000, "stray");
  CHECK(h.drain().empty());
  CHECK(h.s.in_flight() == 1);
  h.respond(a, "A");
  CHECK(h.drain().size() == 1);
}
