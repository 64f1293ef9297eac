// A consumer of the installed package: encodes a golden frame and checks an error name.
#include <occams_rpc.hpp>

#include <cstdio>

int main() {
  occams_rpc::proto::frame_writer w;
  w.add_ping(1);
  bool ok = w.bytes() == occams_rpc::proto::request_header_size &&
            occams_rpc::to_wire_string(occams_rpc::errc::timeout) == "rpc_timeout";
  std::puts(ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
