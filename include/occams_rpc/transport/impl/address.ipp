#pragma once

#include <occams_rpc/transport/address.hpp>

#include <charconv>

namespace occams_rpc {

OCCAMS_RPC_DECL std::string address::to_string() const {
  if (is_unix()) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

OCCAMS_RPC_DECL std::error_code parse_address(std::string_view text, address& out) {
  if (text.starts_with("unix:")) text.remove_prefix(5);
  else if (!text.starts_with("/")) {
    // host:port or [v6]:port
    std::string_view host, port;
    if (text.starts_with("[")) {
      auto close = text.find(']');
      if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
        return errc::invalid_address;
      host = text.substr(1, close - 1);
      port = text.substr(close + 2);
    } else {
      auto colon = text.rfind(':');
      if (colon == std::string_view::npos) return errc::invalid_address;
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (host.find(':') != std::string_view::npos) return errc::invalid_address;  // v6 needs []
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (host.empty() || port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535)
      return errc::invalid_address;
    out = address::tcp(std::string(host), static_cast<std::uint16_t>(value));
    return {};
  }
  if (text.empty() || text.size() > 107) return errc::invalid_address;  // sun_path holds 108 bytes
  out = address::unix_socket(std::string(text));
  return {};
}

OCCAMS_RPC_DECL address parse_address(std::string_view text) {
  address a;
  if (auto ec = parse_address(text, a)) throw std::system_error(ec, std::string(text));
  return a;
}

}  // namespace occams_rpc
