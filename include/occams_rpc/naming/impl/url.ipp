#pragma once

#include <occams_rpc/naming/url.hpp>

namespace occams_rpc::naming {

OCCAMS_RPC_DECL bool is_naming_url(std::string_view text) noexcept {
  for (std::string_view s : {"list://", "file://", "dns://", "etcd://"})
    if (text.starts_with(s)) return true;
  return false;
}

namespace detail {
inline std::error_code bad_url(std::string& why, std::string reason) {
  why = std::move(reason);
  return make_error_code(errc::invalid_address);
}

/// HOST:PORT for dns:// and etcd:// (a TCP address, port required and not 0).
inline std::error_code parse_host_port(std::string_view text, naming_url& out, std::string& why) {
  address a;
  if (parse_address(text, a) || a.is_unix() || a.port == 0)
    return bad_url(why, "expected HOST:PORT, got '" + std::string(text) + "'");
  out.host = a.host;
  out.port = a.port;
  return {};
}
}  // namespace detail

OCCAMS_RPC_DECL std::error_code parse_naming_url(std::string_view text, naming_url& out, std::string& why) {
  naming_url u;
  if (text.starts_with("list://")) {
    u.type = naming_url::kind::list;
    std::string_view rest = text.substr(7);
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      address a;
      if (item.empty() || parse_address(item, a))
        return detail::bad_url(why, "list://: bad address '" + std::string(item) + "'");
      u.endpoints.push_back({std::move(a), 1});
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
      if (rest.empty()) return detail::bad_url(why, "list://: empty address after ','");
    }
    if (u.endpoints.empty()) return detail::bad_url(why, "list://: no address");
  } else if (text.starts_with("file://")) {
    u.type = naming_url::kind::file;
    u.path = std::string(text.substr(7));
    if (!u.path.starts_with("/")) return detail::bad_url(why, "file://: expected an absolute path (file:///path)");
  } else if (text.starts_with("dns://")) {
    u.type = naming_url::kind::dns;
    if (auto ec = detail::parse_host_port(text.substr(6), u, why)) return ec;
  } else if (text.starts_with("etcd://")) {
    u.type = naming_url::kind::etcd;
    std::string_view rest = text.substr(7);
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) return detail::bad_url(why, "etcd://: expected etcd://HOST:PORT/PREFIX");
    if (auto ec = detail::parse_host_port(rest.substr(0, slash), u, why)) return ec;
    std::string_view prefix = rest.substr(slash);
    while (prefix.size() > 1 && prefix.ends_with('/')) prefix.remove_suffix(1);
    if (prefix.size() <= 1) return detail::bad_url(why, "etcd://: empty prefix (etcd://HOST:PORT/PREFIX)");
    // A trailing '/' so that /services/calc does not also match /services/calculator.
    u.prefix = std::string(prefix) + "/";
  } else if (text.find("://") != std::string_view::npos) {
    return detail::bad_url(why, "unknown scheme in '" + std::string(text) + "' (list, file, dns, etcd)");
  } else {
    address a;
    if (parse_address(text, a)) return detail::bad_url(why, "bad address '" + std::string(text) + "'");
    u.endpoints.push_back({std::move(a), 1});
  }
  out = std::move(u);
  return {};
}

}  // namespace occams_rpc::naming
