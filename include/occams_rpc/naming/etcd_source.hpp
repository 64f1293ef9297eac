// etcd_source (etcd://host:port/prefix): the endpoints whose values are under PREFIX/ in etcd
// (value format: etcd_json.hpp), through etcd v3's JSON gateway over HTTP/1.1.
//
// A range read of the prefix, then a streaming watch from the range's revision + 1 (etcd_view
// applies the events). A broken watch (etcd restarted, a network error, an idle watch past
// watch_idle_timeout) is re-established from the revision after the last event seen; if that
// revision was compacted, or etcd cancelled the watch, the prefix is read again. Failures are
// logged and retried after a backoff (retry_backoff doubling to retry_backoff_max): no busy
// loop while etcd is down, and the last snapshot stays meanwhile.
#pragma once

#include <occams_rpc/naming/detail/etcd_http.hpp>
#include <occams_rpc/naming/detail/source_state.hpp>
#include <occams_rpc/naming/etcd_view.hpp>

namespace occams_rpc::naming {

class etcd_source final : public source {
 public:
  /// `prefix` as naming_url gives it (starting and ending with '/').
  etcd_source(boost::asio::any_io_executor ex, std::string host, std::uint16_t port, std::string prefix,
              const naming_config& cfg = {}, logger log = {})
      : st_(std::make_shared<detail::source_state>(
            std::move(ex), cfg, std::move(log),
            "etcd://" + address::tcp(host, port).to_string() + prefix.substr(0, prefix.size() - 1))),
        where_{std::move(host), port}, prefix_(std::move(prefix)) {}
  ~etcd_source() override { stop(); }
  void start(snapshot_handler h) override {
    detail::source_state::start(st_, std::move(h), [w = where_, p = prefix_](std::shared_ptr<detail::source_state> st) {
      return run(std::move(st), w, p);
    });
  }
  void stop() override { detail::source_state::stop(st_); }
  const std::string& url() const noexcept override { return st_->url; }

 private:
  OCCAMS_RPC_DECL static boost::asio::awaitable<void> run(std::shared_ptr<detail::source_state> st,
                                                          detail::etcd_target where, std::string prefix);
  std::shared_ptr<detail::source_state> st_;
  detail::etcd_target where_;
  std::string prefix_;
};

}  // namespace occams_rpc::naming

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/naming/impl/etcd_source.ipp>
#endif
