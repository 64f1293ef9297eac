// dns_source (dns://host:port): each A/AAAA record of host is an endpoint (weight 1), resolved
// with Asio's resolver at start and every naming_config::dns_refresh_period. A failed
// resolution (a name not found included) is logged and the last snapshot kept.
#pragma once

#include <occams_rpc/naming/detail/source_state.hpp>

#include <cstdint>

namespace occams_rpc::naming {

class dns_source final : public source {
 public:
  dns_source(boost::asio::any_io_executor ex, std::string host, std::uint16_t port, const naming_config& cfg = {},
             logger log = {})
      : st_(std::make_shared<detail::source_state>(std::move(ex), cfg, std::move(log),
                                                   "dns://" + address::tcp(host, port).to_string())),
        host_(std::move(host)), port_(port) {}
  ~dns_source() override { stop(); }
  void start(snapshot_handler h) override {
    detail::source_state::start(st_, std::move(h), [host = host_, port = port_](std::shared_ptr<detail::source_state> st) {
      return run(std::move(st), host, port);
    });
  }
  void stop() override { detail::source_state::stop(st_); }
  const std::string& url() const noexcept override { return st_->url; }

 private:
  OCCAMS_RPC_DECL static boost::asio::awaitable<void> run(std::shared_ptr<detail::source_state> st, std::string host,
                                                          std::uint16_t port);
  std::shared_ptr<detail::source_state> st_;
  std::string host_;
  std::uint16_t port_;
};

}  // namespace occams_rpc::naming

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/naming/impl/dns_source.ipp>
#endif
