// raw_bench's event loop: epoll, level-triggered, one handler per file descriptor. The
// benchmark's clock (measurement's warm-up and window, the server's lifetime and signals) still
// runs on an Asio io_context, which the loop polls once a millisecond: its timers then fire
// within a millisecond of their time, and the sockets never pay for a reactor's operations.
#pragma once

#include "raw_socket.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>

namespace bench {

class raw_loop {
 public:
  /// Something that waits for readiness of its file descriptor.
  class handler {
   public:
    virtual void on_event(std::uint32_t events) = 0;

   protected:
    ~handler() = default;
  };

  raw_loop() : ep_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!ep_) throw_errno("epoll_create1");
  }

  void add(int fd, handler* h, std::uint32_t events) { control(EPOLL_CTL_ADD, fd, h, events); }
  void modify(int fd, handler* h, std::uint32_t events) { control(EPOLL_CTL_MOD, fd, h, events); }

  /// Dispatches readiness until `stop` is set, polling `io` once a millisecond (and whenever
  /// the sockets are idle for that long).
  void run(boost::asio::io_context& io, const bool& stop) {
    auto guard = boost::asio::make_work_guard(io);  // poll() must not find it stopped
    constexpr auto poll_every = std::chrono::milliseconds(1);
    auto next_poll = std::chrono::steady_clock::now();
    epoll_event events[64];
    while (!stop) {
      int n = ::epoll_wait(ep_.get(), events, 64, 1);
      if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
      for (int i = 0; i < n; ++i) static_cast<handler*>(events[i].data.ptr)->on_event(events[i].events);
      auto now = std::chrono::steady_clock::now();
      if (now >= next_poll) {
        io.poll();
        next_poll = now + poll_every;
      }
    }
  }

 private:
  void control(int op, int fd, handler* h, std::uint32_t events) {
    epoll_event e{};
    e.events = events;
    e.data.ptr = h;
    if (::epoll_ctl(ep_.get(), op, fd, &e) != 0) throw_errno("epoll_ctl");
  }

  raw_fd ep_;
};

}  // namespace bench
