// The v1 extensions (docs/protocol.md, "v1 extensions"), sans-io: the golden bytes of the
// hello, deadline and cancel frames; negotiation and its fallback to plain v1; deadline
// arithmetic; cancels racing answers. A client_session and a server_session exchange bytes
// by hand, with injected time: no socket, no executor, no sleep.
#include "unit/support/frames.hpp"

#include <occams_rpc/proto/extensions.hpp>
#include <occams_rpc/session/client_session.hpp>
#include <occams_rpc/session/memory_budget.hpp>
#include <occams_rpc/session/server_session.hpp>

#include <boost/asio/error.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

using namespace occams_rpc;
using namespace std::chrono_literals;
using session::cancel_reason;
using session::client_call;
using session::client_session;
using session::request_slot;
using session::server_session;
using test::from_hex;
using test::to_hex;
using clk = session::clock;
using ext_state = client_session::extensions_state;

namespace {

// The golden frames of docs/protocol.md, "v1 extensions".
const std::string hello_request_seq1 = from_hex(
    "25 4d 01 00 09 00 00 80 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00"
    " 72 70 63 5f 68 65 6c 6c 6f 6f 63 78 31 03 00 00 00");
const std::string hello_answer_seq1 = from_hex(
    "25 4d 01 00 08 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 4f 43 58 31 03 00 00 00");
const std::string deadline_request_seq7 = from_hex(
    "25 4d 01 80 0e 00 00 80 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 07 00 00 00 00 00 00 00"
    " 43 61 6c 63 75 6c 61 74 6f 72 2e 61 64 64 dc 05 00 00 92 01 02");
const std::string cancel_seq7 = from_hex(
    "25 4d 01 81 00 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
// v1's golden "Calculator.add" [1,2] request (PROTOCOL.md), with seq `n`.
std::string v1_add_request(unsigned char seq) {
  auto s = from_hex(
      "25 4d 01 00 0e 00 00 80 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00"
      " 43 61 6c 63 75 6c 61 74 6f 72 2e 61 64 64 92 01 02");
  s[8] = static_cast<char>(seq);
  return s;
}

const std::string add_args = from_hex("92 01 02");
std::span<const char> span_of(const std::string& s) { return {s.data(), s.size()}; }

struct log_sink {
  std::vector<std::string> lines;
  logger make() {
    return logger(log_level::trace, [this](log_level, std::string_view m) { lines.emplace_back(m); });
  }
  std::size_t count(std::string_view part) const {
    return std::count_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }
};

client_config client_cfg(bool extensions) {
  client_config c;
  c.window = 4;
  c.call_timeout = 2s;
  c.timeout_tick = 1s;
  c.extensions = extensions;
  return c;
}

server_config server_cfg() {
  server_config c;
  c.buffer_size = 512;
  c.max_frame_size = 64 * 1024;
  c.max_buffered_bytes = 64 * 1024;
  c.timer_tick = 1s;
  return c;
}

/// The session's pending batch, written at once (either side).
template <class Session>
std::string write_batch(Session& s, clk::time_point now) {
  if (!s.has_write()) return {};
  std::string out;
  for (auto seg : s.begin_write(now)) out.append(seg.data(), seg.size());
  s.on_write_done({}, now);
  return out;
}

/// A client session: calls in, batches out, bytes in, completions out.
struct client_side {
  explicit client_side(bool extensions) : cfg(client_cfg(extensions)), s(cfg, log.make()) {}

  std::uint64_t call(clk::time_point deadline = clk::time_point::max()) {
    client_call* c = s.start_call(proto::action("Calculator.add"), span_of(add_args), {}, nullptr, call_response{}, now,
                                  deadline);
    REQUIRE(c != nullptr);
    return c->seq;
  }
  std::string write() { return write_batch(s, now); }
  void read(const std::string& bytes) {
    auto room = s.read_buffer();
    REQUIRE(room.size() >= bytes.size());
    std::memcpy(room.data(), bytes.data(), bytes.size());
    s.on_read(bytes.size(), now);
  }
  /// The completed calls: seq and error.
  std::vector<std::pair<std::uint64_t, std::error_code>> drain() {
    std::vector<std::pair<std::uint64_t, std::error_code>> out;
    while (client_call* c = s.next_done()) {
      out.emplace_back(c->seq, c->result);
      s.release(*c);
    }
    return out;
  }
  void tick() {
    now += cfg.timeout_tick;
    s.on_tick(now, 0);
  }

  log_sink log;
  client_config cfg;
  client_session s;
  clk::time_point now{std::chrono::seconds(100)};
};

/// A server session: bytes in, requests out, answers in, batches out.
struct server_side {
  server_side() : cfg(server_cfg()), budget(64 * 1024), s(cfg, log.make(), "peer:1", budget, now) {}

  std::vector<request_slot*> read(const std::string& bytes) {
    auto room = s.read_buffer();
    REQUIRE(room.size() >= bytes.size());
    std::memcpy(room.data(), bytes.data(), bytes.size());
    s.on_read(bytes.size(), now);
    std::vector<request_slot*> out;
    while (auto* r = s.next_request(now)) out.push_back(r);
    return out;
  }
  void answer(request_slot& r, const std::string& msg) {
    r.flag = proto::response_flag::ok;
    r.resp_msg.clear();
    r.resp_msg.append(std::string_view(msg));
    r.resp_blob.clear();
    s.answer(r);
  }
  std::string write() { return write_batch(s, now); }
  std::vector<std::pair<request_slot*, cancel_reason>> cancelled() {
    std::vector<std::pair<request_slot*, cancel_reason>> out;
    while (auto* r = s.next_cancelled()) out.emplace_back(r, r->cancel.load());
    return out;
  }

  log_sink log;
  server_config cfg;
  session::memory_budget budget;
  clk::time_point now{std::chrono::seconds(100)};
  server_session s;
};

}  // namespace

TEST_CASE("the extension frames are written as their golden bytes", "[proto][extensions]") {
  proto::frame_writer w;
  char hello[proto::ext::hello_msg_size];
  proto::ext::encode_hello(proto::ext::hello_offer_magic, proto::ext::all_features, hello);
  w.add_request(1, proto::action(proto::ext::hello_action), {hello, sizeof hello});
  CHECK(to_hex(test::wire(w)) == to_hex(hello_request_seq1));

  proto::frame_writer a;
  proto::ext::encode_hello(proto::ext::hello_accept_magic, proto::ext::all_features, hello);
  a.add_response(1, {hello, sizeof hello});
  CHECK(to_hex(test::wire(a)) == to_hex(hello_answer_seq1));

  proto::frame_writer d;
  auto mark = d.begin_request(7, "Calculator.add", 0, proto::ext::format_deadline);
  char prefix[4];
  proto::detail::store_le(prefix, proto::ext::remaining_ms(1500ms));
  d.add_msg({prefix, 4});
  d.add_msg(span_of(add_args));
  d.end_request(mark);
  CHECK(to_hex(test::wire(d)) == to_hex(deadline_request_seq7));

  proto::frame_writer c;
  c.add_control(7, proto::ext::format_cancel);
  CHECK(to_hex(test::wire(c)) == to_hex(cancel_seq7));
}

TEST_CASE("the remaining time is sent in whole milliseconds rounded up, between 1 and 2^32-1", "[proto][extensions]") {
  CHECK(proto::ext::remaining_ms(1500ms) == 1500);
  CHECK(proto::ext::remaining_ms(1499us) == 2);
  CHECK(proto::ext::remaining_ms(1ns) == 1);
  CHECK(proto::ext::remaining_ms(0ms) == 1);
  CHECK(proto::ext::remaining_ms(-5ms) == 1);
  CHECK(proto::ext::remaining_ms(std::chrono::hours(24 * 365)) == 0xffff'ffffu);
}

TEST_CASE("a client that does not negotiate writes exactly the v1 golden bytes, and a cancel adds none",
          "[session][extensions]") {
  client_side c(false);
  CHECK_FALSE(c.s.has_write());  // no hello
  auto seq = c.call();
  CHECK(seq == 1);
  CHECK(to_hex(c.write()) == to_hex(v1_add_request(1)));
  // A deadline changes the client's own timeout only.
  auto seq2 = c.call(c.now + 500ms);
  CHECK(to_hex(c.write()) == to_hex(v1_add_request(2)));
  CHECK(c.s.cancel(seq));
  CHECK(c.write().empty());
  CHECK(c.s.extensions() == ext_state::off);
  c.tick();
  c.tick();
  auto done = c.drain();
  REQUIRE(done.size() == 2);
  CHECK(done[0].first == seq);
  CHECK(done[0].second == errc::cancelled);
  CHECK(done[1].first == seq2);
  CHECK(done[1].second == errc::timeout);  // 500 ms: one tick, done at the second advance
}

TEST_CASE("a client offers the hello first and sends plain v1 until the server accepts, then deadlines",
          "[session][extensions]") {
  client_side c(true);
  CHECK(c.s.extensions() == ext_state::offered);
  auto early = c.call();
  CHECK(early == 2);
  CHECK(to_hex(c.write()) == to_hex(hello_request_seq1 + v1_add_request(2)));
  c.read(hello_answer_seq1);
  CHECK(c.s.extensions() == ext_state::on);
  CHECK(c.s.features() == proto::ext::all_features);
  CHECK(c.drain().empty());  // the hello is the session's own: no completion
  auto seq = c.call(c.now + 1500ms);
  auto bytes = c.write();
  auto expected = deadline_request_seq7;
  expected[8] = static_cast<char>(seq);
  CHECK(to_hex(bytes) == to_hex(expected));
  // Without a deadline of its own, a call sends call_timeout (2000 ms, d0 07).
  c.call();
  auto plain = c.write();
  REQUIRE(plain.size() == 53);
  CHECK(to_hex(plain.substr(46, 4)) == "d0 07 00 00");
}

TEST_CASE("a server that refuses, echoes or ignores the hello leaves the client on plain v1", "[session][extensions]") {
  SECTION("an error answer (a v1 API server answers rpc_decode)") {
    client_side c(true);
    c.write();
    proto::frame_writer w;
    w.add_error_string(1, "rpc_decode");
    c.read(test::wire(w));
    CHECK(c.s.extensions() == ext_state::refused);
    CHECK(c.log.count("refused the extensions' hello (rpc_decode)") == 1);
  }
  SECTION("an echo of the hello (a v1 echo dispatch)") {
    client_side c(true);
    c.write();
    std::string msg = hello_request_seq1.substr(41);
    proto::frame_writer w;
    w.add_response(1, span_of(msg));
    c.read(test::wire(w));
    CHECK(c.s.extensions() == ext_state::refused);
  }
  SECTION("no answer within call_timeout") {
    client_side c(true);
    c.write();
    c.tick();
    c.tick();
    CHECK(c.s.extensions() == ext_state::offered);
    c.tick();
    CHECK(c.s.extensions() == ext_state::refused);
    CHECK(c.drain().empty());
    CHECK(c.s.in_flight() == 0);
  }
  client_side c(true);
  c.write();
  proto::frame_writer w;
  w.add_error_string(1, "rpc_decode");
  c.read(test::wire(w));
  auto seq = c.call(c.now + 1s);
  CHECK(to_hex(c.write()) == to_hex(v1_add_request(static_cast<unsigned char>(seq))));
  CHECK(c.s.cancel(seq));
  CHECK(c.write().empty());  // no cancel frame
}

TEST_CASE("a deadline shorter than call_timeout times the call out at the first tick past it", "[session][extensions]") {
  client_side c(true);
  c.write();
  c.read(hello_answer_seq1);
  auto seq = c.call(c.now + 1500ms);  // 2 ticks of 1 s: done at the third advance, never early
  c.write();
  c.tick();
  c.tick();
  CHECK(c.drain().empty());
  c.tick();
  auto done = c.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].first == seq);
  CHECK(done[0].second == errc::timeout);
}

TEST_CASE("a server answers the hello itself, strips the deadline and keeps it on the request", "[session][extensions]") {
  server_side srv;
  CHECK(srv.read(hello_request_seq1).empty());  // never reaches the dispatch
  CHECK(to_hex(srv.write()) == to_hex(hello_answer_seq1));
  CHECK(srv.s.extensions_on());
  auto reqs = srv.read(deadline_request_seq7);
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0]->header.seq == 7);
  CHECK(reqs[0]->action.view() == "Calculator.add");
  CHECK(to_hex(reqs[0]->msg.view()) == "92 01 02");
  CHECK(reqs[0]->deadline == srv.now + 1500ms);
  srv.answer(*reqs[0], "\x03");
  CHECK(to_hex(srv.write()) == "25 4d 01 00 01 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 03");
}

TEST_CASE("a server that got no hello reads every frame as v1: an extension's format byte is not looked at",
          "[session][extensions]") {
  server_side srv;
  auto reqs = srv.read(deadline_request_seq7 + cancel_seq7);
  REQUIRE(reqs.size() == 1);  // the cancel frame reads as a ping
  CHECK(to_hex(reqs[0]->msg.view()) == "dc 05 00 00 92 01 02");
  CHECK(reqs[0]->deadline == clk::time_point::max());
  srv.answer(*reqs[0], "\x03");
  // The pong, then the answer: exactly what a v1 server sends.
  CHECK(to_hex(srv.write()) ==
        "25 4d 01 00 00 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 "
        "25 4d 01 00 01 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 03");
}

TEST_CASE("a server with extensions off hands the hello to the dispatch, as a v1 server does", "[session][extensions]") {
  server_config cfg = server_cfg();
  cfg.extensions = false;
  session::memory_budget budget(64 * 1024);
  server_session s(cfg, {}, "peer", budget, clk::time_point{});
  auto room = s.read_buffer();
  std::memcpy(room.data(), hello_request_seq1.data(), hello_request_seq1.size());
  s.on_read(hello_request_seq1.size(), clk::time_point{});
  auto* r = s.next_request(clk::time_point{});
  REQUIRE(r != nullptr);
  CHECK(r->action.view() == "rpc_hello");
  CHECK_FALSE(s.extensions_on());
}

TEST_CASE("a cancel frame stops the request's handler and its answer is dropped, not written", "[session][extensions]") {
  server_side srv;
  srv.read(hello_request_seq1);
  srv.write();
  auto reqs = srv.read(deadline_request_seq7);
  REQUIRE(reqs.size() == 1);
  CHECK(srv.read(cancel_seq7).empty());
  auto cancelled = srv.cancelled();
  REQUIRE(cancelled.size() == 1);
  CHECK(cancelled[0].first == reqs[0]);
  CHECK(cancelled[0].second == cancel_reason::cancelled);
  srv.answer(*reqs[0], "\x03");
  CHECK(srv.write().empty());
  CHECK(srv.s.dropped_answers() == 1);
  CHECK(srv.s.in_flight() == 0);
  CHECK_FALSE(srv.s.closed());
}

namespace {
/// `frame` (a request or a cancel) with its seq replaced.
std::string with_seq(std::string frame, std::uint64_t seq) {
  for (int i = 0; i < 8; ++i) frame[8 + i] = static_cast<char>(seq >> (8 * i));
  return frame;
}
}  // namespace

TEST_CASE("a flood of cancel frames for unknown seqs costs about one comparison each, and real cancels still work",
          "[session][extensions]") {
  server_side srv;
  srv.read(hello_request_seq1);
  srv.write();
  // 512 requests held in flight, their seqs spread as a client's would be.
  constexpr std::uint64_t held = 512;
  std::vector<request_slot*> reqs;
  for (std::uint64_t i = 0; i < held; ++i) {
    auto got = srv.read(with_seq(v1_add_request(0), 1000 + 3 * i));
    REQUIRE(got.size() == 1);
    reqs.push_back(got[0]);
  }
  // 20000 cancels for seqs nobody sent, 8 frames (256 bytes) per read. A scan of the
  // requests in flight would compare 512 per frame (over 10 million in all).
  constexpr std::uint64_t flood = 20000;
  for (std::uint64_t i = 0; i < flood; i += 8) {
    std::string batch;
    for (std::uint64_t j = i; j < i + 8; ++j) batch += with_seq(cancel_seq7, 1'000'000 + 7919 * j);
    CHECK(srv.read(batch).empty());
  }
  CHECK(srv.cancelled().empty());
  CHECK(srv.s.cancel_lookup_steps() <= flood);  // about a quarter of that, on average
  // Every held request can still be cancelled, each found at once.
  std::size_t before = srv.s.cancel_lookup_steps();
  for (std::uint64_t i = 0; i < held; i += 8) {
    std::string batch;
    for (std::uint64_t j = i; j < i + 8; ++j) batch += with_seq(cancel_seq7, 1000 + 3 * j);
    CHECK(srv.read(batch).empty());
  }
  auto cancelled = srv.cancelled();
  REQUIRE(cancelled.size() == held);
  for (std::uint64_t i = 0; i < held; ++i) CHECK(cancelled[i].first == reqs[i]);
  CHECK(srv.s.cancel_lookup_steps() - before <= 2 * held);
  // A second cancel of the same seq finds nothing: a cancelled request leaves the index.
  CHECK(srv.read(with_seq(cancel_seq7, 1000)).empty());
  CHECK(srv.cancelled().empty());
  for (auto* r : reqs) srv.answer(*r, "\x03");
  CHECK(srv.write().empty());
  CHECK(srv.s.dropped_answers() == held);
  CHECK(srv.s.in_flight() == 0);
}

TEST_CASE("a cancel frame finds a request whose seq another request in flight shares", "[session][extensions]") {
  server_side srv;
  srv.read(hello_request_seq1);
  srv.write();
  auto reqs = srv.read(with_seq(v1_add_request(0), 9) + with_seq(v1_add_request(0), 9));
  REQUIRE(reqs.size() == 2);
  srv.answer(*reqs[1], "\x03");  // answered: not cancellable any more
  CHECK(srv.write().size() > 0);
  CHECK(srv.read(with_seq(cancel_seq7, 9)).empty());
  auto cancelled = srv.cancelled();
  REQUIRE(cancelled.size() == 1);
  CHECK(cancelled[0].first == reqs[0]);
}

TEST_CASE("a cancel that crosses its answer on the wire changes nothing on either side", "[session][extensions]") {
  client_side c(true);
  server_side srv;
  srv.read(c.write());         // the hello
  c.read(srv.write());         // its acceptance
  REQUIRE(c.s.extensions() == ext_state::on);
  auto seq = c.call();
  auto reqs = srv.read(c.write());
  REQUIRE(reqs.size() == 1);
  srv.answer(*reqs[0], "\x03");
  auto answer = srv.write();   // the answer is on its way...
  CHECK(c.s.cancel(seq));      // ...when the caller gives up
  auto done = c.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].second == errc::cancelled);
  auto cancel = c.write();
  CHECK(cancel.size() == 32);
  CHECK(static_cast<unsigned char>(cancel[3]) == proto::ext::format_cancel);
  c.read(answer);              // dropped: no call waits for it
  CHECK(c.drain().empty());
  CHECK(c.log.count("dropping a response for seq") == 1);
  CHECK(srv.read(cancel).empty());  // nothing in flight for it: ignored
  CHECK(srv.cancelled().empty());
  CHECK(srv.log.count("which is not in flight: ignored") == 1);
  CHECK(srv.write().empty());
  // Both go on.
  auto next = c.call();
  reqs = srv.read(c.write());
  REQUIRE(reqs.size() == 1);
  srv.answer(*reqs[0], "\x03");
  c.read(srv.write());
  done = c.drain();
  REQUIRE(done.size() == 1);
  CHECK(done[0].first == next);
  CHECK_FALSE(done[0].second);
}

TEST_CASE("a cancel after the answer arrived sends nothing", "[session][extensions]") {
  client_side c(true);
  c.write();
  c.read(hello_answer_seq1);
  auto seq = c.call();
  c.write();
  proto::frame_writer w;
  w.add_response(seq, span_of(std::string("\x03")));
  c.read(test::wire(w));
  CHECK_FALSE(c.s.cancel(seq));  // done already
  CHECK(c.write().empty());
}

TEST_CASE("an unknown seq, an unknown extension frame and a malformed deadline request disturb nothing else",
          "[session][extensions]") {
  server_side srv;
  srv.read(hello_request_seq1);
  srv.write();
  auto unknown_cancel = cancel_seq7;
  unknown_cancel[8] = 99;
  auto unknown_ext = cancel_seq7;
  unknown_ext[3] = static_cast<char>(0x9f);
  // A deadline request whose msg is shorter than the 4-byte prefix.
  auto malformed = from_hex(
      "25 4d 01 80 01 00 00 00 08 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 aa bb");
  auto reqs = srv.read(unknown_cancel + unknown_ext + malformed + deadline_request_seq7);
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0]->header.seq == 7);
  CHECK(srv.log.count("cancel for seq 99, which is not in flight: ignored") == 1);
  CHECK(srv.log.count("unknown extension frame (format 0x9f, seq 7): ignored") == 1);
  CHECK(srv.log.count("malformed deadline request (seq 8") == 1);
  CHECK(srv.cancelled().empty());
  srv.answer(*reqs[0], "\x03");
  // rpc_decode for seq 8, then the answer to seq 7.
  CHECK(to_hex(srv.write()) ==
        "25 4d 01 02 00 00 00 00 08 00 00 00 00 00 00 00 0a 00 00 00 72 70 63 5f 64 65 63 6f 64 65 "
        "25 4d 01 00 01 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 03");
  CHECK_FALSE(srv.s.closed());
}

TEST_CASE("a request whose deadline passes expires at the next tick and its answer is dropped", "[session][extensions]") {
  server_side srv;
  srv.read(hello_request_seq1);
  srv.write();
  auto reqs = srv.read(deadline_request_seq7);  // 1500 ms
  REQUIRE(reqs.size() == 1);
  srv.s.on_tick(srv.now + 1s, 0);
  CHECK(srv.cancelled().empty());
  srv.s.on_tick(srv.now + 2s, 0);
  auto cancelled = srv.cancelled();
  REQUIRE(cancelled.size() == 1);
  CHECK(cancelled[0].second == cancel_reason::expired);
  srv.answer(*reqs[0], "\x03");
  CHECK(srv.write().empty());
  CHECK(srv.log.count("its deadline passed") == 1);
}

TEST_CASE("a connection that dies cancels the handlers of its requests in flight", "[session][extensions]") {
  server_side srv;  // no hello needed: this holds for v1 clients too
  auto reqs = srv.read(v1_add_request(3) + v1_add_request(4));
  REQUIRE(reqs.size() == 2);
  srv.answer(*reqs[0], "\x03");
  srv.s.abort("write failed: broken pipe");
  auto cancelled = srv.cancelled();
  REQUIRE(cancelled.size() == 1);
  CHECK(cancelled[0].first == reqs[1]);
  CHECK(cancelled[0].second == cancel_reason::closed);
}

TEST_CASE("a negotiated client's end of stream cancels its requests in flight: it never half-closes",
          "[session][extensions]") {
  server_side srv;
  srv.read(hello_request_seq1);
  srv.write();
  auto reqs = srv.read(deadline_request_seq7);
  REQUIRE(reqs.size() == 1);
  srv.s.on_read_error(boost::system::error_code(boost::asio::error::eof));
  auto cancelled = srv.cancelled();
  REQUIRE(cancelled.size() == 1);
  CHECK(cancelled[0].second == cancel_reason::closed);
}

TEST_CASE("a half-closed v1 client's requests are not cancelled: it still wants the answers", "[session][extensions]") {
  server_side srv;
  auto reqs = srv.read(v1_add_request(3));
  REQUIRE(reqs.size() == 1);
  srv.s.on_read_error(boost::system::error_code(boost::asio::error::eof));
  CHECK(srv.cancelled().empty());
  srv.answer(*reqs[0], "\x03");
  CHECK(srv.write().size() == 21);
}
