// One member of a service's address set, as a naming source reports it and a failover_pool's
// load balancer weighs it.
#pragma once

#include <occams_rpc/transport/address.hpp>

#include <cstdint>

namespace occams_rpc::naming {

struct endpoint {
  address where;
  /// Relative share of calls under a weighted policy; 0 is not allowed (sources clamp to 1).
  std::uint32_t weight = 1;
  friend bool operator==(const endpoint&, const endpoint&) = default;
};

}  // namespace occams_rpc::naming
