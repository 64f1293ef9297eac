// Naming URLs: where a service's address set comes from (docs/discovery.md, "URLs").
//
//   HOST:PORT, [V6]:PORT, unix:/PATH     one fixed address (a bare address stays an address)
//   list://A,B,...                      a fixed list of addresses
//   file:///PATH                        one address per line, optional weight, # comments
//   dns://HOST:PORT                     every A/AAAA record of HOST, re-resolved periodically
//   etcd://HOST:PORT/PREFIX             the values under PREFIX/ in etcd, followed by a watch
//
// Parsing is sans-io: no file is read and no name resolved here.
#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/naming/endpoint.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace occams_rpc::naming {

struct naming_url {
  enum class kind { address, list, file, dns, etcd };
  kind type = kind::address;
  std::vector<endpoint> endpoints;  ///< address, list: the fixed set
  std::string path;                 ///< file: absolute path
  std::string host;                 ///< dns, etcd: the name (or IP literal, without brackets)
  std::uint16_t port = 0;           ///< dns, etcd
  std::string prefix;               ///< etcd: the key prefix, always starting and ending with '/'
};

/// True when `text` starts with one of the naming schemes (list, file, dns, etcd).
OCCAMS_RPC_DECL bool is_naming_url(std::string_view text) noexcept;

/// Parses a naming URL or a bare address; fails with errc::invalid_address and `why`.
OCCAMS_RPC_DECL std::error_code parse_naming_url(std::string_view text, naming_url& out, std::string& why);

}  // namespace occams_rpc::naming

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/naming/impl/url.ipp>
#endif
