// The one tick mechanism. Timeouts are checked in batches, once a tick, never with a timer
// per call: every object that checks them (a client connection, a server connection, a
// client pool) runs one ticker on its own executor. Each object ticking itself, rather than
// an owner sweeping a list, keeps the tick on the thread that owns what it checks (a server's
// connections may live on several threads).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>

namespace occams_rpc::detail {

namespace asio = boost::asio;

class ticker {
 public:
  using clock = std::chrono::steady_clock;

  explicit ticker(const asio::any_io_executor& ex) : timer_(ex) {}

  /// Calls `on_tick(now)` once every `period` until stop() or until `on_tick` returns false.
  /// The owner co_spawns it (and, for a connection, counts it as one of its loops).
  template <class OnTick>
  asio::awaitable<void> run(clock::duration period, OnTick on_tick) {
    while (!stopped_) {
      timer_.expires_after(period);
      co_await timer_.async_wait(asio::as_tuple(asio::deferred));
      if (stopped_ || !on_tick(clock::now())) co_return;
    }
  }

  /// Ends run() now (its wait completes at once) or before it starts.
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  bool stopped_ = false;
};

}  // namespace occams_rpc::detail
