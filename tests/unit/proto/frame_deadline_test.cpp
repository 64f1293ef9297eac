#include <occams_rpc/proto/frame_deadline.hpp>

#include <catch2/catch.hpp>

#include <chrono>

using occams_rpc::proto::frame_deadline;
using namespace std::chrono_literals;

namespace {
const frame_deadline::clock::time_point t0{};
}

TEST_CASE("a frame deadline runs from the first byte of a frame until the frame is whole", "[proto]") {
  frame_deadline d;
  CHECK_FALSE(d.expired(t0 + 1h, 5s));
  d.after_read(true, false, t0);  // part of a frame arrived
  CHECK_FALSE(d.expired(t0 + 4s, 5s));
  d.after_read(true, false, t0 + 4s);  // more of the same frame: the clock does not restart
  CHECK(d.expired(t0 + 5s, 5s));
  d.after_read(false, true, t0 + 5s);  // the frame is whole, nothing else buffered
  CHECK_FALSE(d.expired(t0 + 1h, 5s));
}

TEST_CASE("a frame deadline restarts when a frame ends and the next one begins in the same read", "[proto]") {
  frame_deadline d;
  d.after_read(true, false, t0);
  d.after_read(true, true, t0 + 3s);  // one frame ended, the bytes after it begin another
  CHECK_FALSE(d.expired(t0 + 7s, 5s));
  CHECK(d.expired(t0 + 8s, 5s));
}

TEST_CASE("a frame deadline does not count the time the connection is paused", "[proto]") {
  frame_deadline d;
  d.after_read(true, false, t0);
  d.pause();  // back-pressure or the memory budget: the connection reads nothing meanwhile
  CHECK_FALSE(d.expired(t0 + 1h, 5s));
  d.resume(true, t0 + 1h);
  CHECK_FALSE(d.expired(t0 + 1h + 4s, 5s));
  CHECK(d.expired(t0 + 1h + 5s, 5s));
  d.pause();
  d.resume(false, t0 + 2h);  // nothing buffered: nothing to time
  CHECK_FALSE(d.expired(t0 + 3h, 5s));
}
