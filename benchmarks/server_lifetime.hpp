// How a benchmark server ends: on SIGTERM or SIGINT, or when its lifetime is over, whichever
// comes first. `stop` runs once, on the io_context's thread; it must let io.run() return.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>

#include <fmt/format.h>

namespace bench {

namespace asio = boost::asio;

class server_lifetime {
 public:
  server_lifetime(asio::io_context& io, double lifetime_s, std::function<void()> stop)
      : signals_(io, SIGINT, SIGTERM), timer_(io), stop_(std::move(stop)) {
    signals_.async_wait([this](boost::system::error_code ec, int signo) {
      if (ec) return;
      fmt::print(stderr, "server: signal {}: stopping\n", signo);
      end();
    });
    timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(lifetime_s)));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      fmt::print(stderr, "server: lifetime over: stopping\n");
      end();
    });
  }

 private:
  void end() {
    if (!stop_) return;
    auto stop = std::move(stop_);
    stop_ = nullptr;
    signals_.cancel();
    timer_.cancel();
    stop();
  }

  asio::signal_set signals_;
  asio::steady_timer timer_;
  std::function<void()> stop_;
};

}  // namespace bench
