// etcd_view: what an etcd:// source knows of its prefix, sans-io. A range read replaces it;
// each watch message updates it; it says from which revision to resume a broken watch, and
// when a range must be read again (the revision was compacted, or etcd cancelled the watch).
// The etcd_source's coroutine does the I/O and feeds it; tests/unit/naming feeds it by hand.
#pragma once

#include <occams_rpc/naming/endpoint.hpp>
#include <occams_rpc/naming/etcd_json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace occams_rpc::naming {

class etcd_view {
 public:
  enum class next { keep_watching, range_again };

  /// Replaces everything with a range read; the watch starts at its revision + 1. Malformed
  /// values are skipped, each with a line in `problems`.
  OCCAMS_RPC_DECL void reset(const etcd::range_result& r, std::vector<std::string>& problems);

  /// Applies one watch message. `changed` tells whether the set of endpoints changed. A
  /// compacted or cancelled watch asks for a new range read (the view is kept meanwhile).
  OCCAMS_RPC_DECL next apply(const etcd::watch_message& m, bool& changed, std::vector<std::string>& problems);

  /// The revision a (re)started watch must start from: one past the last seen.
  std::int64_t watch_from() const noexcept { return next_revision_; }
  bool has_range() const noexcept { return next_revision_ > 0; }

  /// The endpoints, one per valid key (not yet normalized).
  OCCAMS_RPC_DECL std::vector<endpoint> snapshot() const;

 private:
  OCCAMS_RPC_DECL bool put(const etcd::key_value& kv, std::vector<std::string>& problems);
  std::map<std::string, endpoint> by_key_;
  std::int64_t next_revision_ = 0;
};

}  // namespace occams_rpc::naming

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/naming/impl/etcd_view.ipp>
#endif
