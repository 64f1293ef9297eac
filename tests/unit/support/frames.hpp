// Helpers for tests of the frame writer and readers.
#pragma once

#include "unit/support/hex.hpp"

#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <system_error>

namespace occams_rpc::test {

/// The whole batch as one string (its referenced blobs included, in order).
inline std::string wire(proto::frame_writer& w) {
  std::string out;
  for (auto seg : w.buffers()) out.append(seg.data(), seg.size());
  return out;
}

/// Feeds `bytes`, which must be exactly one frame, and returns it. The frame's views point into
/// `r`: it must outlive them.
template <class Frame>
Frame read_one(const std::string& bytes, proto::frame_reader<Frame>& r) {
  r.feed(as_span(bytes));
  Frame f;
  std::error_code ec;
  REQUIRE(r.next(f, ec) == proto::read_status::frame);
  CHECK_FALSE(ec);
  CHECK(r.buffered() == 0);
  return f;
}

}  // namespace occams_rpc::test
