// server_session driven event by event: bytes in, requests out, answers in, batches out,
// ticks with injected time. No sockets, no sleeps.
#include "unit/support/frames.hpp"

#include <occams_rpc/session/memory_budget.hpp>
#include <occams_rpc/session/server_session.hpp>

#include <boost/asio/error.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace occams_rpc;
using steady = occams_rpc::session::clock;
using occams_rpc::session::memory_budget;
using occams_rpc::session::request_slot;
using occams_rpc::session::server_session;
using namespace std::chrono_literals;

namespace {

const steady::time_point t0{};

struct log_line {
  log_level level;
  std::string text;
};

server_config small_config() {
  server_config c;
  c.idle_timeout = 10s;
  c.read_timeout = 2s;
  c.write_timeout = 3s;
  c.buffer_size = 512;
  c.max_frame_size = 64 * 1024;
  c.max_buffered_bytes = 64 * 1024;
  return c;
}

std::string request(std::uint64_t seq, std::string_view msg = "m", std::string_view blob = {},
                    proto::action act = proto::action("S.m")) {
  proto::frame_writer w;
  w.add_request(seq, act, test::as_span(msg), test::as_span(blob));
  return test::wire(w);
}

std::string ping(std::uint64_t seq) {
  proto::frame_writer w;
  w.add_ping(seq);
  return test::wire(w);
}

struct response {
  std::uint64_t seq;
  proto::response_flag flag;
  std::string msg;   // OK msg, or the error string
  std::string blob;
  std::uint32_t code;
};

/// A session with a log, a budget and helpers that play the shell's part.
struct harness {
  explicit harness(server_config c = small_config(), std::size_t budget_limit = 64 * 1024)
      : cfg(c),
        budget(budget_limit),
        s(cfg, logger(log_level::trace, [this](log_level l, std::string_view m) { logs.push_back({l, std::string(m)}); }),
          "peer:1", budget, t0) {}

  /// One read of `bytes` (it must fit the room read_buffer() offers).
  void read(std::string_view bytes, steady::time_point now = t0) {
    REQUIRE(s.wants_read());
    auto room = s.read_buffer();
    REQUIRE(room.size() >= bytes.size());
    std::memcpy(room.data(), bytes.data(), bytes.size());
    s.on_read(bytes.size(), now);
  }
  /// Reads `bytes` in reads of at most the room offered, cutting between reads.
  void read_all(std::string_view bytes, steady::time_point now = t0) {
    while (!bytes.empty()) {
      REQUIRE(s.wants_read());
      auto room = s.read_buffer();
      std::size_t n = std::min(room.size(), bytes.size());
      std::memcpy(room.data(), bytes.data(), n);
      s.on_read(n, now);
      bytes.remove_prefix(n);
      while (auto* r = s.next_request(now)) popped.push_back(r);
    }
  }
  /// Every request ready now.
  std::vector<request_slot*> pop(steady::time_point now = t0) {
    std::vector<request_slot*> out;
    while (auto* r = s.next_request(now)) out.push_back(r);
    return out;
  }
  static void answer_ok(server_session& s, request_slot& r, std::string_view msg, std::string_view blob = {}) {
    r.flag = proto::response_flag::ok;
    r.resp_msg.clear();
    r.resp_msg.append(msg);
    r.resp_blob.clear();
    r.resp_blob.append(blob);
    s.answer(r);
  }
  void answer_ok(request_slot& r, std::string_view msg, std::string_view blob = {}) { answer_ok(s, r, msg, blob); }
  /// Writes the pending batch: the bytes of one gathered write.
  std::string begin_write(steady::time_point now = t0) {
    REQUIRE(s.has_write());
    std::string out;
    for (auto b : s.begin_write(now)) out.append(b.data(), b.size());
    return out;
  }
  std::vector<response> write(steady::time_point now = t0) {
    auto bytes = begin_write(now);
    s.on_write_done({}, now);
    return parse(bytes);
  }
  static std::vector<response> parse(const std::string& bytes) {
    proto::response_reader r;
    r.feed(test::as_span(bytes));
    std::vector<response> out;
    proto::response_frame f;
    std::error_code ec;
    while (r.next(f, ec) == proto::read_status::frame) {
      out.push_back({f.header.seq, f.header.flag, std::string(f.ok() ? test::as_view(f.msg) : f.error_string()),
                     std::string(f.ok() ? test::as_view(f.blob) : std::string_view{}), f.header.error_code()});
    }
    CHECK_FALSE(ec);
    CHECK(r.buffered() == 0);
    return out;
  }
  std::size_t count_logs(std::string_view part, log_level level) const {
    return std::count_if(logs.begin(), logs.end(),
                         [&](const log_line& l) { return l.level == level && l.text.find(part) != std::string::npos; });
  }
  std::size_t count_logs(std::string_view part) const {
    return std::count_if(logs.begin(), logs.end(),
                         [&](const log_line& l) { return l.text.find(part) != std::string::npos; });
  }

  server_config cfg;
  std::vector<log_line> logs;
  memory_budget budget;
  server_session s;
  std::vector<request_slot*> popped;
};

std::string_view msg_of(const request_slot* r) { return r->msg.view(); }

}  // namespace

TEST_CASE("a request cut across reads comes out once its last byte has arrived", "[session]") {
  harness h;
  auto frame = request(7, "hello", "blob!");
  h.read(std::string_view(frame).substr(0, 10));  // part of the header
  CHECK(h.pop().empty());
  CHECK(h.s.wants_read());
  h.read(std::string_view(frame).substr(10, 30));  // the header, part of the body
  CHECK(h.pop().empty());
  h.read(std::string_view(frame).substr(40));
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0]->header.seq == 7);
  CHECK(reqs[0]->action.view() == "S.m");
  CHECK(msg_of(reqs[0]) == "hello");
  CHECK(reqs[0]->blob.view() == "blob!");
  CHECK(h.s.in_flight() == 1);
  CHECK(h.s.wants_read());
}

TEST_CASE("many requests in one read come out one at a time, and one answered inline frees its slot for the next",
          "[session]") {
  harness h;
  h.read(request(1, "a") + request(2, "b") + request(3, "c"));
  CHECK_FALSE(h.s.wants_read());  // frames read and not cut yet
  CHECK(h.s.has_request());
  std::vector<std::string> seen;
  request_slot* first = nullptr;
  while (auto* r = h.s.next_request(t0)) {
    if (!first) first = r;
    CHECK(r == first);  // the slot given back is the one reused: no slot per request in a batch
    seen.emplace_back(msg_of(r));
    auto copy = [](void* m, byte_buffer& out) {
      out.append(*static_cast<std::string_view*>(m));
      return false;  // not failed
    };
    std::string_view answer = msg_of(r);
    CHECK(h.s.answer_inline(*r, {&answer, copy}, {}));
    CHECK(h.s.in_flight() == 0);
  }
  CHECK(seen == std::vector<std::string>{"a", "b", "c"});
  CHECK_FALSE(h.s.has_request());
  CHECK(h.s.wants_read());
  auto out = h.write();
  REQUIRE(out.size() == 3);
  CHECK(out[0].seq == 1);
  CHECK(out[2].msg == "c");
}

TEST_CASE("answers given out of order go out in one gathered write, in the order given", "[session]") {
  harness h;
  h.read(request(1, "a") + request(2, "b") + request(3, "c"));
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 3);
  CHECK_FALSE(h.s.has_write());
  h.answer_ok(*reqs[2], "three");
  h.answer_ok(*reqs[0], "one");
  reqs[1]->flag = proto::response_flag::error_code;
  reqs[1]->error_code = 5;
  h.s.answer(*reqs[1]);
  CHECK(h.s.in_flight() == 0);
  REQUIRE(h.s.has_write());
  auto out = h.write();
  REQUIRE(out.size() == 3);
  CHECK(out[0].seq == 3);
  CHECK(out[0].msg == "three");
  CHECK(out[1].seq == 1);
  CHECK(out[2].seq == 2);
  CHECK(out[2].flag == proto::response_flag::error_code);
  CHECK(out[2].code == 5);
  CHECK_FALSE(h.s.has_write());
}

TEST_CASE("answers given while a write is under way go into the next batch", "[session]") {
  harness h;
  h.read(request(1) + request(2));
  auto reqs = h.pop();
  h.answer_ok(*reqs[0], "one");
  auto first = h.begin_write();
  CHECK(h.s.writing());
  h.answer_ok(*reqs[1], "two");
  CHECK_FALSE(h.s.has_write());  // one write at a time
  h.s.on_write_done({}, t0);
  CHECK(harness::parse(first).size() == 1);
  auto second = h.write();
  REQUIRE(second.size() == 1);
  CHECK(second[0].seq == 2);
}

TEST_CASE("a ping is answered by the session and never comes out as a request", "[session]") {
  harness h;
  h.read(ping(9) + request(10));
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0]->header.seq == 10);
  auto out = h.write();
  REQUIRE(out.size() == 1);
  CHECK(out[0].seq == 9);
  CHECK(out[0].flag == proto::response_flag::ok);
  CHECK(out[0].msg.empty());
  CHECK(out[0].blob.empty());
}

TEST_CASE("max_inflight requests stop the reading until an answer gives a slot back", "[session]") {
  auto cfg = small_config();
  cfg.max_inflight = 2;
  harness h(cfg);
  h.read(request(1) + request(2) + request(3));
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 2);
  CHECK(h.s.paused());
  CHECK_FALSE(h.s.has_request());
  CHECK_FALSE(h.s.wants_read());
  h.answer_ok(*reqs[0], "one");
  CHECK(h.s.has_request());  // the shell wakes its reader
  auto more = h.pop();
  REQUIRE(more.size() == 1);
  CHECK(more[0]->header.seq == 3);
  CHECK(h.s.paused());  // at the limit again
  h.answer_ok(*reqs[1], "two");
  CHECK(h.pop().empty());  // nothing left to cut
  CHECK_FALSE(h.s.paused());
  CHECK(h.s.wants_read());
}

TEST_CASE("too many answer bytes unwritten pause the reading until the batch is written", "[session]") {
  auto cfg = small_config();
  cfg.max_pending_write = 600;
  harness h(cfg);
  h.read(request(1) + request(2));
  auto first = h.s.next_request(t0);
  REQUIRE(first);
  h.answer_ok(*first, std::string(700, 'x'));
  CHECK(h.s.next_request(t0) == nullptr);  // request 2 waits in the read buffer
  CHECK(h.s.paused());
  CHECK_FALSE(h.s.has_request());
  CHECK_FALSE(h.s.wants_read());
  h.begin_write();  // the batch leaves the pending queue
  CHECK(h.s.has_request());
  auto second = h.s.next_request(t0);
  REQUIRE(second);
  CHECK(second->header.seq == 2);
}

TEST_CASE("the read deadline does not count the time paused by back-pressure", "[session]") {
  auto cfg = small_config();
  cfg.max_inflight = 1;
  harness h(cfg);
  auto third = request(3, "ccc");
  h.read(request(1) + request(2) + third.substr(0, 5));
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 1);
  h.s.on_tick(t0 + 1h, 0);  // paused an hour: no read timeout, not idle (in flight)
  CHECK_FALSE(h.s.closed());
  h.answer_ok(*reqs[0], "x");
  auto t1 = t0 + 1h;
  auto r2 = h.pop(t1);
  REQUIRE(r2.size() == 1);
  h.answer_ok(*r2[0], "y");
  CHECK(h.pop(t1).empty());  // resumed at t1: the partial third frame is timed from t1
  h.s.on_tick(t1 + 1s, 0);
  CHECK_FALSE(h.s.closed());
  h.s.on_tick(t1 + 2s, 0);
  CHECK(h.s.closed());
  CHECK(h.count_logs("read timeout: a request frame was incomplete for over 2000 ms", log_level::warn) == 1);
}

TEST_CASE("a large frame reserves its whole size from the budget at its header and gives it back at the answer",
          "[session]") {
  harness h;
  std::string body(4000, 'b');
  auto frame = request(1, "m", body);
  h.read(frame.substr(0, 100));
  CHECK(h.pop().empty());
  CHECK(h.s.reserved() == frame.size());
  CHECK(h.budget.used() == frame.size());
  h.read_all(std::string_view(frame).substr(100));
  REQUIRE(h.popped.size() == 1);
  CHECK(h.s.reserved() == 0);
  CHECK(h.budget.used() == frame.size());  // held by the request until its answer
  h.answer_ok(*h.popped[0], "ok");
  CHECK(h.budget.used() == 0);
}

TEST_CASE("a large frame that came whole in one read is counted against the budget until answered", "[session]") {
  harness h;
  h.read_all(request(1, "m", std::string(4000, 'b')));  // grows the read buffer
  REQUIRE(h.popped.size() == 1);
  h.answer_ok(*h.popped[0], "ok");
  CHECK(h.budget.used() == 0);
  auto frame = request(2, "m", std::string(1000, 'b'));  // larger than buffer_size
  h.read(frame);  // whole, in one read: no reservation was made at its header
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 1);
  CHECK(h.budget.used() == frame.size());
  h.answer_ok(*reqs[0], "ok");
  CHECK(h.budget.used() == 0);
}

TEST_CASE("a connection waits for the memory budget without reading, and reads again once granted", "[session]") {
  harness h;
  CHECK(h.budget.try_take(60 * 1024));  // other connections hold most of it
  auto frame = request(1, "m", std::string(8000, 'b'));
  int granted = 0;
  h.s.set_budget_listener([](void* n) { ++*static_cast<int*>(n); }, &granted);
  h.read(frame.substr(0, 200), t0);
  CHECK(h.pop(t0).empty());
  CHECK(h.s.waiting_for_budget());
  CHECK_FALSE(h.s.wants_read());
  CHECK(h.budget.waiting() == 1);
  CHECK(h.count_logs("waiting for 8036 bytes of the request memory budget", log_level::debug) == 1);
  h.s.on_tick(t0 + 5s, 0);  // the read deadline is paused while waiting: no read timeout
  CHECK_FALSE(h.s.closed());
  h.budget.give_back(60 * 1024);
  CHECK(granted == 1);
  CHECK_FALSE(h.s.wants_read());  // until the shell reports the grant
  h.s.on_budget_granted(t0 + 6s);
  CHECK(h.s.wants_read());
  CHECK(h.s.reserved() == frame.size());
  h.s.on_tick(t0 + 7s, 0);  // the deadline restarted at the grant
  CHECK_FALSE(h.s.closed());
  h.s.on_tick(t0 + 8s, 0);
  CHECK(h.s.closed());
  CHECK(h.count_logs("read timeout", log_level::warn) == 1);
  CHECK(h.budget.used() == 0);  // the close gave the reservation back
}

TEST_CASE("a connection that waits for the budget longer than idle_timeout is closed with a warning", "[session]") {
  harness h;
  CHECK(h.budget.try_take(60 * 1024));
  h.read(request(1, "m", std::string(8000, 'b')).substr(0, 200), t0);
  CHECK(h.pop(t0).empty());
  REQUIRE(h.s.waiting_for_budget());
  h.s.on_tick(t0 + 9s, 0);
  CHECK_FALSE(h.s.closed());
  h.s.on_tick(t0 + 10s, 0);
  CHECK(h.s.closed());
  CHECK(h.count_logs("waited over 10000 ms for the request memory budget (server overloaded)", log_level::warn) == 1);
  CHECK(h.budget.waiting() == 0);  // left the queue
  h.budget.give_back(60 * 1024);
  CHECK(h.budget.used() == 0);
}

TEST_CASE("a budget granted to a connection that closed before using it goes back", "[session]") {
  harness h;
  CHECK(h.budget.try_take(60 * 1024));
  h.read(request(1, "m", std::string(8000, 'b')).substr(0, 200), t0);
  CHECK(h.pop(t0).empty());
  h.budget.give_back(60 * 1024);  // granted, not yet reported
  CHECK(h.budget.used() == 8036);
  h.s.abort("test");
  CHECK(h.budget.used() == 0);
}

TEST_CASE("an idle connection is closed after idle_timeout; one with a request in flight is not", "[session]") {
  harness h;
  h.s.on_tick(t0 + 9s, 0);
  CHECK_FALSE(h.s.closed());
  h.read(request(1), t0 + 9s);  // traffic restarts the idle clock
  auto reqs = h.pop(t0 + 9s);
  h.s.on_tick(t0 + 30s, 0);
  CHECK_FALSE(h.s.closed());  // in flight
  h.answer_ok(*reqs[0], "x");
  h.write(t0 + 30s);
  h.s.on_tick(t0 + 39s, 0);
  CHECK_FALSE(h.s.closed());
  h.s.on_tick(t0 + 40s, 0);
  CHECK(h.s.closed());
  CHECK(h.count_logs("closing connection from peer:1: idle timeout", log_level::info) == 1);
  CHECK(h.s.take_close_socket());
  CHECK_FALSE(h.s.take_close_socket());  // once
  CHECK_FALSE(h.s.close_gracefully());
  CHECK(h.s.finished());
}

TEST_CASE("a request frame stalled mid-way is closed by the read timeout unless its bytes wait in the socket",
          "[session]") {
  harness h;
  auto frame = request(1, "hello");
  h.read(frame.substr(0, 20), t0);
  CHECK(h.pop(t0).empty());
  CHECK(h.s.read_deadline_passed(t0 + 2s));
  h.s.on_tick(t0 + 2s, 5);  // bytes arrived, the read completion has not run yet: spared
  CHECK_FALSE(h.s.closed());
  h.s.on_tick(t0 + 1h, 0);  // mid-frame is not idle either: only the read timeout applies
  CHECK(h.s.closed());
  CHECK(h.count_logs("closing connection from peer:1: read timeout: a request frame was incomplete for over 2000 ms",
                     log_level::warn) == 1);
  CHECK(h.count_logs("idle timeout") == 0);
}

TEST_CASE("the read deadline restarts with each frame", "[session]") {
  harness h;
  auto a = request(1, "aaaa"), b = request(2, "bbbb");
  h.read(a.substr(0, 10), t0);
  CHECK(h.pop(t0).empty());
  h.read(a.substr(10) + b.substr(0, 10), t0 + 1500ms);  // a ends, b begins
  auto reqs = h.pop(t0 + 1500ms);
  REQUIRE(reqs.size() == 1);
  h.s.on_tick(t0 + 3s, 0);  // 3 s after a's first byte, 1.5 s after b's
  CHECK_FALSE(h.s.closed());
  h.s.on_tick(t0 + 3500ms, 0);
  CHECK(h.s.closed());
}

TEST_CASE("a write stuck longer than write_timeout closes the connection", "[session]") {
  harness h;
  h.read(request(1));
  auto reqs = h.pop();
  h.answer_ok(*reqs[0], "x");
  h.begin_write(t0);
  h.s.on_tick(t0 + 3s, 0);
  CHECK_FALSE(h.s.closed());
  h.s.on_tick(t0 + 3001ms, 0);
  CHECK(h.s.closed());
  CHECK(h.count_logs("closing connection from peer:1: write timed out", log_level::info) == 1);
  CHECK(h.s.take_close_socket());
  CHECK_FALSE(h.s.finished());  // the write is still under way until the transport ends it
  h.s.on_write_done(make_error_code(std::errc::operation_canceled), t0 + 3001ms);
  CHECK(h.s.finished());
  CHECK(h.count_logs("write failed") == 0);  // closed already: one reason logged
}

TEST_CASE("a failed write closes the connection with the reason", "[session]") {
  harness h;
  h.read(request(1));
  h.answer_ok(*h.pop()[0], "x");
  h.begin_write();
  h.s.on_write_done(make_error_code(std::errc::broken_pipe), t0);
  CHECK(h.s.closed());
  CHECK(h.count_logs("closing connection from peer:1: write failed: Broken pipe", log_level::info) == 1);
}

TEST_CASE("an oversized request frame closes the connection before any budget is reserved", "[session]") {
  harness h;
  proto::request_header hd;
  hd.seq = 1;
  hd.msg_len = 1u << 20;  // over max_frame_size (64 KiB)
  char bytes[proto::request_header_size];
  proto::encode(hd, bytes);
  h.read(std::string_view(bytes, sizeof bytes));
  CHECK(h.s.next_request(t0) == nullptr);
  CHECK(h.s.closed());
  CHECK(h.count_logs("closing connection from peer:1: bad request frame: frame exceeds the maximum frame size",
                     log_level::warn) == 1);
  CHECK(h.budget.used() == 0);
  CHECK(h.s.take_close_socket());
}

TEST_CASE("a malformed request frame closes the connection with the reason logged", "[session]") {
  harness h;
  auto frame = request(1) + request(2);
  frame[0] = 'X';  // bad magic
  h.read(frame);
  CHECK(h.pop().empty());
  CHECK(h.s.closed());
  CHECK(h.count_logs("bad request frame: ", log_level::warn) == 1);
  CHECK(h.s.in_flight() == 0);
}

TEST_CASE("a graceful shutdown reads no more, answers the requests read, writes them, then closes", "[session]") {
  harness h;
  h.read(request(1) + request(2));
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 2);
  h.s.shutdown(t0);
  CHECK_FALSE(h.s.wants_read());
  CHECK_FALSE(h.s.closed());
  h.answer_ok(*reqs[0], "one");
  h.answer_ok(*reqs[1], "two");
  CHECK_FALSE(h.s.closed());  // answers unwritten
  auto bytes = h.begin_write();
  CHECK_FALSE(h.s.closed());  // the write is under way
  h.s.on_write_done({}, t0);
  CHECK(harness::parse(bytes).size() == 2);
  CHECK(h.s.closed());
  CHECK(h.s.take_close_socket());
  CHECK(h.s.close_gracefully());  // FIN after the last answer
  CHECK(h.s.finished());
  CHECK(h.logs.empty());  // a drain is no failure
}

/// close_wait 5 s, idle timeout far away.
server_config close_wait_config() {
  auto cfg = small_config();
  cfg.close_wait = 5s;
  cfg.idle_timeout = 100s;
  return cfg;
}

TEST_CASE("a drain still going past close_wait is closed at the first tick past it", "[session]") {
  harness h(close_wait_config());
  h.read(request(1));
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 1);
  h.s.shutdown(t0 + 1s);
  h.s.on_tick(t0 + 5s, 0);
  CHECK_FALSE(h.s.closed());  // close wait runs from the shutdown, not from the start
  h.s.on_tick(t0 + 6s, 0);
  CHECK(h.s.closed());
  CHECK_FALSE(h.s.close_gracefully());  // the answer is lost: no FIN as if all was said
  CHECK(h.count_logs("close wait over during shutdown", log_level::info) == 1);
  h.answer_ok(*reqs[0], "late");  // dropped; the slot comes back
  CHECK(h.s.in_flight() == 0);
}

TEST_CASE("a half-closed peer's drain also ends at close_wait once the server shuts down", "[session]") {
  harness h(close_wait_config());
  h.read(request(1));
  REQUIRE(h.pop().size() == 1);
  h.s.on_read_error(boost::system::error_code(boost::asio::error::eof));
  h.s.on_tick(t0 + 50s, 0);
  CHECK_FALSE(h.s.closed());  // a half-closed peer waits for its answer while the server runs
  h.s.shutdown(t0 + 50s);
  h.s.on_tick(t0 + 55s, 0);
  CHECK(h.s.closed());
}

TEST_CASE("a graceful shutdown dispatches the whole frames already read", "[session]") {
  auto cfg = small_config();
  cfg.max_inflight = 1;
  harness h(cfg);
  h.read(request(1) + request(2));
  auto first = h.pop();
  REQUIRE(first.size() == 1);
  h.s.shutdown(t0);
  h.answer_ok(*first[0], "one");
  CHECK(h.write().size() == 1);  // nothing in flight, nothing unwritten...
  CHECK_FALSE(h.s.closed());     // ...but request 2 was read: it is answered too
  auto second = h.pop();
  REQUIRE(second.size() == 1);
  h.answer_ok(*second[0], "two");
  CHECK(h.pop().empty());  // the shell pops while has_request(): every frame read is cut
  CHECK_FALSE(h.s.closed());
  CHECK(h.write().size() == 1);
  CHECK(h.s.closed());
}

TEST_CASE("a graceful shutdown with nothing in flight closes at once", "[session]") {
  harness h;
  h.s.shutdown(t0);
  CHECK(h.s.closed());
  CHECK(h.s.take_close_socket());
  CHECK(h.s.close_gracefully());
}

TEST_CASE("a shutdown gives back a partial frame's reservation and leaves the budget queue", "[session]") {
  harness h;
  h.read(request(1) + request(2, "m", std::string(4000, 'b')).substr(0, 100));
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 1);
  CHECK(h.budget.used() > 0);  // reserved for frame 2, whose header arrived
  h.s.shutdown(t0);
  CHECK(h.budget.used() == 0);  // frame 2 will never be read whole
  CHECK_FALSE(h.s.closed());    // request 1 is still answered
  h.answer_ok(*reqs[0], "x");
  CHECK(h.write().size() == 1);
  CHECK(h.s.closed());

  harness w;
  CHECK(w.budget.try_take(60 * 1024));
  w.read(request(1, "m", std::string(8000, 'b')).substr(0, 200));
  CHECK(w.pop().empty());
  REQUIRE(w.budget.waiting() == 1);
  w.s.shutdown(t0);
  CHECK(w.budget.waiting() == 0);
  CHECK(w.s.closed());
}

TEST_CASE("a peer that closes its sending side still gets its answers, then the connection closes", "[session]") {
  harness h;
  h.read(request(1));
  auto reqs = h.pop();
  h.s.on_read_error(boost::system::error_code(boost::asio::error::eof));
  CHECK_FALSE(h.s.wants_read());
  CHECK_FALSE(h.s.closed());
  h.answer_ok(*reqs[0], "x");
  CHECK(h.write().size() == 1);
  CHECK(h.s.closed());
  CHECK(h.s.close_gracefully());
  CHECK(h.logs.empty());  // end of stream is not worth a line
}

TEST_CASE("a read that fails otherwise than at end of stream is logged at debug", "[session]") {
  harness h;
  h.s.on_read_error(make_error_code(std::errc::connection_reset));
  CHECK(h.s.closed());
  CHECK(h.count_logs("connection from peer:1: read ended: Connection reset by peer", log_level::debug) == 1);
}

TEST_CASE("abort closes at once, logs its reason and level, and loses the answers not yet written", "[session]") {
  harness h;
  h.read(request(1) + request(2));
  auto reqs = h.pop();
  h.answer_ok(*reqs[0], "one");
  CHECK(h.s.has_write());
  h.s.abort("server destroyed", log_level::warn);
  CHECK(h.s.closed());
  CHECK_FALSE(h.s.has_write());
  CHECK_FALSE(h.s.wants_read());
  CHECK(h.count_logs("closing connection from peer:1: server destroyed", log_level::warn) == 1);
  CHECK(h.s.take_close_socket());
  CHECK_FALSE(h.s.close_gracefully());
  CHECK(h.s.in_flight() == 1);  // request 2 is still out: its answer, when it comes, is dropped
  h.s.abort("again");
  CHECK(h.logs.size() == 1);  // closed once
}

TEST_CASE("answers given after close are dropped and give their slot and budget back", "[session]") {
  harness h;
  auto frame = request(1, "m", std::string(4000, 'b'));
  h.read_all(frame + request(2));
  REQUIRE(h.popped.size() == 2);
  CHECK(h.budget.used() == frame.size());
  h.s.abort("test");
  h.answer_ok(*h.popped[0], "late");
  CHECK(h.s.pending_bytes() == 0);  // dropped, not queued
  CHECK(h.s.in_flight() == 1);
  CHECK(h.budget.used() == 0);
  CHECK_FALSE(h.s.has_write());
  auto copy = [](void*, byte_buffer&) { return false; };
  CHECK_FALSE(h.s.answer_inline(*h.popped[1], {nullptr, copy}, {}));  // the caller answers through the slot
  h.answer_ok(*h.popped[1], "late too");
  CHECK(h.s.in_flight() == 0);
  CHECK_FALSE(h.s.has_write());
}

TEST_CASE("a large answer is written from its slot, which stays in use until the write completes", "[session]") {
  harness h;
  h.read(request(1));
  auto reqs = h.pop();
  std::string big(proto::frame_writer::default_blob_ref_threshold, 'z');
  h.answer_ok(*reqs[0], "m", big);
  CHECK(h.s.in_flight() == 1);  // referenced by the pending batch
  auto bytes = h.begin_write();
  CHECK(h.s.in_flight() == 1);  // and by the batch being written
  h.s.on_write_done({}, t0);
  CHECK(h.s.in_flight() == 0);
  auto out = harness::parse(bytes);
  REQUIRE(out.size() == 1);
  CHECK(out[0].blob == big);
}

TEST_CASE("an inline answer whose encoder fails answers rpc_encode; one that throws leaves no half frame",
          "[session]") {
  harness h;
  h.read(request(1) + request(2));
  auto reqs = h.pop();
  auto failing = [](void*, byte_buffer& out) {
    out.append(std::string_view("half"));
    return true;  // failed
  };
  CHECK(h.s.answer_inline(*reqs[0], {nullptr, failing}, {}));
  auto throwing = [](void*, byte_buffer& out) -> bool {
    out.append(std::string_view("half"));
    throw std::runtime_error("boom");
  };
  CHECK_THROWS(h.s.answer_inline(*reqs[1], {nullptr, throwing}, {}));
  CHECK(h.s.in_flight() == 1);  // still unanswered
  h.answer_ok(*reqs[1], "fine");
  auto out = h.write();
  REQUIRE(out.size() == 2);
  CHECK(out[0].flag == proto::response_flag::error_string);
  CHECK(out[0].msg == "rpc_encode");
  CHECK(out[1].msg == "fine");
}

TEST_CASE("a context going away drops the answers parked for their write", "[session]") {
  harness h;
  h.read(request(1) + request(2));
  auto reqs = h.pop();
  std::string big(proto::frame_writer::default_blob_ref_threshold, 'z');
  h.answer_ok(*reqs[0], "m", big);
  h.begin_write();
  h.answer_ok(*reqs[1], "m", big);
  CHECK(h.s.in_flight() == 2);
  h.s.context_gone();
  CHECK(h.s.in_flight() == 0);
  CHECK(h.s.closed());
  CHECK(h.s.finished());
  CHECK(h.logs.empty());
}

TEST_CASE("the read buffer shrinks back after a large frame once it would keep more than max_retained_buffers",
          "[session]") {
  auto cfg = small_config();
  cfg.max_retained_buffers = 1024;
  harness h(cfg);
  auto frame = request(1, "m", std::string(4000, 'b'));
  h.read_all(frame);
  REQUIRE(h.popped.size() == 1);
  CHECK(h.s.read_capacity() == cfg.buffer_size);  // grew to hold the frame, shrank once it was cut
  h.answer_ok(*h.popped[0], "ok");
  CHECK(h.popped[0]->blob.capacity() == 0);  // the slot's large buffer went too: past the limit
  h.read(request(2, "small"));
  auto reqs = h.pop();
  REQUIRE(reqs.size() == 1);
  CHECK(msg_of(reqs[0]) == "small");
}

TEST_CASE("back-pressure stops the read deadline of a frame that was already arriving", "[session]") {
  auto cfg = small_config();
  cfg.max_inflight = 1;
  harness h(cfg);
  auto a = request(1, "aaaa");
  h.read(a.substr(0, 10), t0);  // a's first bytes: its deadline runs from t0
  CHECK(h.pop(t0).empty());
  h.read(a.substr(10) + request(2) + request(3), t0 + 1s);
  auto reqs = h.pop(t0 + 1s);
  REQUIRE(reqs.size() == 1);  // request 1, then paused with 2 and 3 read
  CHECK(h.s.paused());
  h.s.on_tick(t0 + 1h, 0);  // a long handler: neither a read timeout nor idle
  CHECK_FALSE(h.s.closed());
}

TEST_CASE("abort gives back the slots of large answers queued and not written", "[session]") {
  harness h;
  h.read(request(1));
  auto reqs = h.pop();
  h.answer_ok(*reqs[0], "m", std::string(proto::frame_writer::default_blob_ref_threshold, 'z'));
  CHECK(h.s.in_flight() == 1);  // referenced by the pending batch
  h.s.abort("test");
  CHECK(h.s.in_flight() == 0);
  CHECK(h.s.finished());
}
