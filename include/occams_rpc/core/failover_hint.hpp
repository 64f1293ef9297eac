// What a method's error answer says about where to retry it: the leader redirect of a
// replicated service (as razor-rpc's RpcErrCodec::should_failover). A failover_pool asks a
// classifier for one on each error answer from a method: the one a typed method's error type
// declares (docs/api.md), else failover_config::classify.
#pragma once

#include <span>
#include <string>
#include <system_error>
#include <utility>

namespace occams_rpc {

struct failover_hint {
  enum class kind {
    usual,      ///< the default rules (a method's error is returned as it is)
    elsewhere,  ///< retry on another address (this one cannot serve it now)
    at,         ///< retry on `address` (the leader is there)
    stop,       ///< do not retry, whatever the error
  };
  kind what = kind::usual;
  std::string address;  ///< kind::at: "host:port", "[v6]:port" or "unix:/path"

  static failover_hint retry_elsewhere() { return {kind::elsewhere, {}}; }
  static failover_hint retry_at(std::string a) { return {kind::at, std::move(a)}; }
  static failover_hint do_not_retry() { return {kind::stop, {}}; }
};

/// Reads a method's error answer: `ec` is its code (remote_category()) or errc::remote_error,
/// `msg` the answer's bytes (the error string or the encoded error).
using failover_classifier = failover_hint (*)(std::error_code ec, std::span<const char> msg);

}  // namespace occams_rpc
