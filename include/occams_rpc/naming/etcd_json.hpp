// etcd v3's JSON gateway, sans-io: the request bodies this library sends and the parsing of
// the responses it reads (no socket here; tests/unit/naming feeds it etcd's own JSON).
//
// The gateway (etcd 3.4: /v3/kv/range, /v3/watch, /v3/kv/put, /v3/lease/grant,
// /v3/lease/keepalive, /v3/lease/revoke) carries keys and values in base64 and 64-bit
// integers as JSON strings; fields at their default (0, false, the PUT event type) are left
// out. A watch response is a stream of such objects, one per line.
//
// Value format (docs/discovery.md): a JSON object {"addr":"HOST:PORT","weight":N} (weight
// optional, 1..1000000), or a plain address "HOST:PORT". Anything else is refused, with a
// reason.
#pragma once

#include <occams_rpc/detail/config.hpp>
#include <occams_rpc/naming/endpoint.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace occams_rpc::naming::etcd {

struct key_value {
  std::string key;
  std::string value;
  std::int64_t mod_revision = 0;
};

struct range_result {
  std::int64_t revision = 0;  ///< the store's revision the range was read at
  std::vector<key_value> kvs;
};

struct watch_event {
  bool deleted = false;  ///< DELETE, else PUT
  key_value kv;
};

struct watch_message {
  std::int64_t revision = 0;  ///< header.revision
  bool created = false;
  bool canceled = false;
  std::int64_t compact_revision = 0;  ///< non-zero: the revision asked for was compacted
  std::string cancel_reason;
  std::vector<watch_event> events;
};

/// The end of the range of keys that start with `prefix` (etcd's "range_end").
OCCAMS_RPC_DECL std::string prefix_range_end(std::string_view prefix);

OCCAMS_RPC_DECL std::string range_request(std::string_view prefix);
OCCAMS_RPC_DECL std::string watch_request(std::string_view prefix, std::int64_t start_revision);
OCCAMS_RPC_DECL std::string put_request(std::string_view key, std::string_view value, std::int64_t lease);
OCCAMS_RPC_DECL std::string lease_grant_request(std::int64_t ttl_seconds);
/// The body of /v3/lease/keepalive and /v3/lease/revoke.
OCCAMS_RPC_DECL std::string lease_id_request(std::int64_t lease);

/// Each parser returns false with the reason in `why` for JSON that is not what etcd sends,
/// or for an error object (`{"error":...}`), whose message goes into `why`.
OCCAMS_RPC_DECL bool parse_range_response(std::string_view body, range_result& out, std::string& why);
OCCAMS_RPC_DECL bool parse_watch_message(std::string_view body, watch_message& out, std::string& why);
OCCAMS_RPC_DECL bool parse_lease_grant(std::string_view body, std::int64_t& lease, std::int64_t& ttl, std::string& why);
/// `ttl` is 0 when the lease no longer exists (expired or revoked).
OCCAMS_RPC_DECL bool parse_keepalive(std::string_view body, std::int64_t& ttl, std::string& why);
/// Any non-error response (put, revoke).
OCCAMS_RPC_DECL bool parse_ok(std::string_view body, std::string& why);

/// The value a server registers: {"addr":"...","weight":N}.
OCCAMS_RPC_DECL std::string endpoint_value(const endpoint& ep);
/// A registered value, in either form; false with the reason otherwise.
OCCAMS_RPC_DECL bool parse_endpoint_value(std::string_view value, endpoint& out, std::string& why);

}  // namespace occams_rpc::naming::etcd

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/naming/impl/etcd_json.ipp>
#endif
