// The value of "no argument" or "no result": Rust's unit type `()`, msgpack nil on the wire.
#pragma once

namespace occams_rpc {

struct unit {
  friend bool operator==(unit, unit) noexcept { return true; }
};

}  // namespace occams_rpc
