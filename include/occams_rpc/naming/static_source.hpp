// static_source: a fixed set (a bare address, list://a,b): one snapshot, at start.
#pragma once

#include <occams_rpc/naming/detail/source_state.hpp>

namespace occams_rpc::naming {

class static_source final : public source {
 public:
  static_source(boost::asio::any_io_executor ex, std::vector<endpoint> eps, std::string url,
                const naming_config& cfg = {}, logger log = {})
      : st_(std::make_shared<detail::source_state>(std::move(ex), cfg, std::move(log), std::move(url))),
        eps_(std::move(eps)) {}
  ~static_source() override { stop(); }
  void start(snapshot_handler h) override {
    detail::source_state::start(st_, std::move(h), [eps = eps_](std::shared_ptr<detail::source_state> st) {
      return deliver_once(std::move(st), eps);
    });
  }
  void stop() override { detail::source_state::stop(st_); }
  const std::string& url() const noexcept override { return st_->url; }

 private:
  static boost::asio::awaitable<void> deliver_once(std::shared_ptr<detail::source_state> st, std::vector<endpoint> eps) {
    st->deliver(std::move(eps));
    co_return;
  }
  std::shared_ptr<detail::source_state> st_;
  std::vector<endpoint> eps_;
};

}  // namespace occams_rpc::naming
