#pragma once

#include <occams_rpc/naming/dns_source.hpp>

#include <boost/asio/ip/tcp.hpp>

namespace occams_rpc::naming {

OCCAMS_RPC_DECL boost::asio::awaitable<void> dns_source::run(std::shared_ptr<detail::source_state> st, std::string host,
                                                             std::uint16_t port) {
  namespace asio = boost::asio;
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(st->ex);
  st->abort_io = [resolver] { resolver->cancel(); };
  do {
    auto [ec, results] =
        co_await resolver->async_resolve(host, std::to_string(port), asio::as_tuple(asio::use_awaitable));
    if (st->stopped) break;
    if (ec) {  // NXDOMAIN too: a DNS hiccup must not empty the pool
      st->log.warn("naming {}: cannot resolve: {}; keeping the last list", st->url, ec.message());
    } else {
      std::vector<endpoint> eps;
      for (auto& r : results) eps.push_back({address::tcp(r.endpoint().address().to_string(), port), 1});
      st->deliver(std::move(eps));
    }
  } while (co_await st->sleep(st->cfg.dns_refresh_period));
  st->abort_io = nullptr;
}

}  // namespace occams_rpc::naming
