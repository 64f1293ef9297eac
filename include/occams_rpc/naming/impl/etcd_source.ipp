#pragma once

#include <occams_rpc/naming/etcd_source.hpp>

namespace occams_rpc::naming {

OCCAMS_RPC_DECL boost::asio::awaitable<void> etcd_source::run(std::shared_ptr<detail::source_state> st,
                                                              detail::etcd_target where, std::string prefix) {
  backoff wait(st->cfg.retry_backoff, st->cfg.retry_backoff_max);
  etcd_view view;
  bool need_range = true;
  bool failing = false;  // log a failure at warn once per outage, then at debug
  auto report = [&](std::string_view what, const std::string& why) {
    if (!failing) st->log.warn("naming {}: {}: {}; keeping the last list, retrying", st->url, what, why);
    else st->log.debug("naming {}: {}: {}", st->url, what, why);
    failing = true;
  };
  while (!st->stopped) {
    std::vector<std::string> problems;
    if (need_range) {
      std::string body, why;
      bool ok = co_await detail::etcd_call(st->ex, where, "/v3/kv/range", etcd::range_request(prefix), st->cfg,
                                           st->abort_io, body, why);
      etcd::range_result r;
      if (ok && !etcd::parse_range_response(body, r, why)) ok = false;
      if (st->stopped) break;
      if (!ok) {
        report("range read failed", why);
        co_await st->sleep(wait.next());
        continue;
      }
      view.reset(r, problems);
      for (auto& p : problems) st->log.warn("naming {}: {}", st->url, p);
      problems.clear();
      st->deliver(view.snapshot());
      need_range = false;
    }

    auto stream = std::make_shared<boost::beast::tcp_stream>(st->ex);
    st->abort_io = [stream] { stream->close(); };
    std::string why;
    bool idle = false, broke_message = false;
    detail::post_options opt{st->cfg.request_timeout, st->cfg.watch_idle_timeout, st->cfg.max_header_bytes,
                             st->cfg.max_watch_message_bytes};
    co_await detail::etcd_post(
        *stream, where, "/v3/watch", etcd::watch_request(prefix, view.watch_from()), opt,
        [&](std::string_view msg) {
          etcd::watch_message m;
          if (!etcd::parse_watch_message(msg, m, why)) {
            why = "bad watch message: " + why;
            broke_message = true;
            return false;
          }
          if (m.created && failing) {
            st->log.info("naming {}: watching again from revision {}", st->url, view.watch_from());
            failing = false;
          }
          if (m.created) wait.reset();
          bool changed = false;
          auto next = view.apply(m, changed, problems);
          for (auto& p : problems) st->log.warn("naming {}: {}", st->url, p);
          problems.clear();
          if (changed) st->deliver(view.snapshot());
          if (next == etcd_view::next::range_again) return need_range = true, false;
          return true;
        },
        why, &idle);
    st->abort_io = nullptr;
    if (st->stopped) break;
    if (need_range) continue;  // compacted or cancelled: read the prefix again, now
    if (idle) {
      st->log.debug("naming {}: watch silent for {} ms; re-establishing it", st->url, st->cfg.watch_idle_timeout.count());
      continue;
    }
    report(broke_message ? "watch failed" : "watch broke", why.empty() ? "etcd ended the stream" : why);
    co_await st->sleep(wait.next());
  }
}

}  // namespace occams_rpc::naming
