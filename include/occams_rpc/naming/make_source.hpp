// make_source: the source a naming URL (url.hpp) names.
#pragma once

#include <occams_rpc/naming/dns_source.hpp>
#include <occams_rpc/naming/etcd_source.hpp>
#include <occams_rpc/naming/file_source.hpp>
#include <occams_rpc/naming/static_source.hpp>
#include <occams_rpc/naming/url.hpp>

#include <memory>
#include <string_view>
#include <system_error>

namespace occams_rpc::naming {

/// A source for `u`, not started.
inline std::unique_ptr<source> make_source(boost::asio::any_io_executor ex, const naming_url& u,
                                           const naming_config& cfg = {}, logger log = {}) {
  switch (u.type) {
    case naming_url::kind::file: return std::make_unique<file_source>(std::move(ex), u.path, cfg, std::move(log));
    case naming_url::kind::dns: return std::make_unique<dns_source>(std::move(ex), u.host, u.port, cfg, std::move(log));
    case naming_url::kind::etcd:
      return std::make_unique<etcd_source>(std::move(ex), u.host, u.port, u.prefix, cfg, std::move(log));
    case naming_url::kind::address: [[fallthrough]];
    case naming_url::kind::list: break;
  }
  std::string text;
  for (auto& e : u.endpoints) text += (text.empty() ? "" : ",") + e.where.to_string();
  return std::make_unique<static_source>(std::move(ex), u.endpoints,
                                         (u.type == naming_url::kind::list ? "list://" : "") + text, cfg, std::move(log));
}

/// Parses `url` and makes its source; throws std::system_error(errc::invalid_address) with
/// the reason.
inline std::unique_ptr<source> make_source(boost::asio::any_io_executor ex, std::string_view url,
                                           const naming_config& cfg = {}, logger log = {}) {
  naming_url u;
  std::string why;
  if (auto ec = parse_naming_url(url, u, why)) throw std::system_error(ec, why);
  return make_source(std::move(ex), u, cfg, std::move(log));
}

}  // namespace occams_rpc::naming
