#pragma once

#include <occams_rpc/naming/etcd_view.hpp>

#include <algorithm>

namespace occams_rpc::naming {

OCCAMS_RPC_DECL bool etcd_view::put(const etcd::key_value& kv, std::vector<std::string>& problems) {
  endpoint ep;
  std::string why;
  if (!etcd::parse_endpoint_value(kv.value, ep, why)) {
    problems.push_back("key '" + kv.key + "' skipped: " + why);
    return by_key_.erase(kv.key) > 0;  // a key that turned bad no longer counts
  }
  auto [it, added] = by_key_.try_emplace(kv.key, ep);
  if (added) return true;
  if (it->second == ep) return false;
  it->second = std::move(ep);
  return true;
}

OCCAMS_RPC_DECL void etcd_view::reset(const etcd::range_result& r, std::vector<std::string>& problems) {
  by_key_.clear();
  for (auto& kv : r.kvs) put(kv, problems);
  next_revision_ = r.revision + 1;
}

OCCAMS_RPC_DECL etcd_view::next etcd_view::apply(const etcd::watch_message& m, bool& changed,
                                                 std::vector<std::string>& problems) {
  changed = false;
  if (m.compact_revision != 0) {
    problems.push_back("watch from revision " + std::to_string(next_revision_) + " refused: compacted at " +
                       std::to_string(m.compact_revision) + "; reading the prefix again");
    return next::range_again;
  }
  if (m.canceled) {
    problems.push_back("watch cancelled by etcd" + (m.cancel_reason.empty() ? "" : ": " + m.cancel_reason));
    return next::range_again;
  }
  for (auto& ev : m.events) {
    if (ev.deleted) changed |= by_key_.erase(ev.kv.key) > 0;
    else changed |= put(ev.kv, problems);
    // Events come in revision order; resume after the last one seen.
    next_revision_ = std::max(next_revision_, ev.kv.mod_revision + 1);
  }
  return next::keep_watching;
}

OCCAMS_RPC_DECL std::vector<endpoint> etcd_view::snapshot() const {
  std::vector<endpoint> out;
  out.reserve(by_key_.size());
  for (auto& [k, ep] : by_key_) out.push_back(ep);
  return out;
}

}  // namespace occams_rpc::naming
