// What every source keeps on its executor: the handler, the stop flag, the last snapshot,
// a timer to sleep on, and a hook that aborts the I/O in flight.
#pragma once

#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/naming/config.hpp>
#include <occams_rpc/naming/endpoint_text.hpp>
#include <occams_rpc/naming/source.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <string>
#include <vector>

namespace occams_rpc::naming::detail {

namespace asio = boost::asio;

struct source_state {
  asio::any_io_executor ex;
  naming_config cfg;
  logger log;
  std::string url;
  source::snapshot_handler handler;
  bool started = false;
  bool stopped = false;
  bool delivered = false;
  std::vector<endpoint> last;
  asio::steady_timer timer;
  std::function<void()> abort_io;  // closes the connection in flight, if any

  source_state(asio::any_io_executor e, const naming_config& c, logger l, std::string u)
      : ex(std::move(e)), cfg(c), log(std::move(l)), url(std::move(u)), timer(ex) {}

  /// Hands on `eps` (tidied) when it differs from the last snapshot, or is the first.
  void deliver(std::vector<endpoint> eps) {
    if (stopped) return;
    if (std::size_t dropped = normalize_snapshot(eps, cfg.max_endpoints))
      log.warn("naming {}: {} endpoints beyond max_endpoints ({}) dropped", url, dropped, cfg.max_endpoints);
    if (delivered && eps == last) return;
    delivered = true;
    last = eps;
    if (eps.empty()) log.warn("naming {}: no endpoint (calls fail with unreachable until one appears)", url);
    else log.info("naming {}: {} endpoint(s)", url, eps.size());
    if (handler) handler(last);
  }

  /// Sleeps `d`; false when stopped meanwhile.
  asio::awaitable<bool> sleep(std::chrono::milliseconds d) {
    if (stopped) co_return false;
    timer.expires_after(d);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return !stopped;
  }

  /// start(): runs `loop(self)` on the executor; stop(): flags, cancels the timer, aborts I/O.
  template <class Loop>
  static void start(const std::shared_ptr<source_state>& st, source::snapshot_handler h, Loop loop) {
    asio::post(st->ex, [st, h = std::move(h), loop = std::move(loop)]() mutable {
      if (st->started || st->stopped) return;
      st->started = true;
      st->handler = std::move(h);
      asio::co_spawn(st->ex, loop(st), asio::detached);
    });
  }
  static void stop(const std::shared_ptr<source_state>& st) {
    auto now = [st] {
      st->stopped = true;
      st->handler = nullptr;
      st->timer.cancel();
      if (st->abort_io) st->abort_io();
    };
    asio::dispatch(st->ex, now);  // inline on the executor: no handler call after stop() returns
  }
};

}  // namespace occams_rpc::naming::detail
