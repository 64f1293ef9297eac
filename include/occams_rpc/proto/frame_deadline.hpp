// The read timeout of one frame (client_config/server_config::read_timeout): the time from
// the first byte of a frame to its last, counted only while the connection reads. Sans-io:
// the caller says what happened and when; the server's or client's tick asks expired().
#pragma once

#include <chrono>

namespace occams_rpc::proto {

class frame_deadline {
 public:
  using clock = std::chrono::steady_clock;

  /// After a read and the frames cut from it: `partial` is whether bytes of an incomplete
  /// frame are buffered now, `completed` whether a frame ended in this read (the partial
  /// bytes, if any, then belong to a frame that began now).
  void after_read(bool partial, bool completed, clock::time_point now) noexcept {
    if (!partial) running_ = false;
    else if (!running_ || completed) start(now);
  }
  /// The connection stops reading on its own account (back-pressure): the clock stops.
  void pause() noexcept { running_ = false; }
  /// Reading again, with an incomplete frame buffered or not: the clock restarts.
  void resume(bool partial, clock::time_point now) noexcept {
    if (partial) start(now);
    else running_ = false;
  }
  /// A frame has been incomplete, while the connection read, for `limit` or longer.
  bool expired(clock::time_point now, clock::duration limit) const noexcept {
    return running_ && now - since_ >= limit;
  }
  bool running() const noexcept { return running_; }

 private:
  void start(clock::time_point now) noexcept {
    running_ = true;
    since_ = now;
  }
  clock::time_point since_{};
  bool running_ = false;
};

}  // namespace occams_rpc::proto
