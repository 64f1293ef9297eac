// source: where a service's address set comes from. A source delivers snapshots, each the
// full set of endpoints (never a delta, so a consumer cannot drift), on its executor, from
// start() until stop(). Kinds: static (a bare address, list://), file_source, dns_source,
// etcd_source; make_source (make_source.hpp) picks one from a naming URL.
//
// Delivery: the first snapshot after the first successful read (an empty set is a snapshot:
// an etcd prefix with no key), then one each time the set changes (sorted by address, with
// duplicates and anything beyond naming_config::max_endpoints dropped). A failed read is
// logged and retried later; the last snapshot stays the truth meanwhile.
//
// Thread safety: start() once, then stop(), from any thread; both post to the executor. The
// handler runs on the executor. Called there, stop() guarantees no later handler call; from
// another thread, one delivery may still be under way. The destructor calls stop(); the
// source's coroutines keep their own state alive until they notice it.
#pragma once

#include <occams_rpc/naming/endpoint.hpp>

#include <functional>
#include <string>
#include <vector>

namespace occams_rpc::naming {

class source {
 public:
  using snapshot_handler = std::function<void(const std::vector<endpoint>&)>;
  virtual ~source() = default;
  /// Starts reading; `on_snapshot` receives each snapshot, on the executor.
  virtual void start(snapshot_handler on_snapshot) = 0;
  /// Stops reading: timers cancelled, connections closed. Any number of times.
  virtual void stop() = 0;
  /// The URL it reads, for logs.
  virtual const std::string& url() const noexcept = 0;
};

}  // namespace occams_rpc::naming
