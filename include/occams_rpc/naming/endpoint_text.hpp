// The text forms of endpoints (sans-io): the lines of a file:// source, and the tidying every
// source applies to a snapshot before handing it on.
//
// A line is `ADDRESS [WEIGHT]`: blank lines and everything after '#' are ignored; a weight
// is 1..1000000 (0 becomes 1). A line that does not parse is skipped, and its number and the
// reason are reported in `problems` (the source logs them).
#pragma once

#include <occams_rpc/detail/config.hpp>
#include <occams_rpc/naming/endpoint.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace occams_rpc::naming {

inline constexpr std::uint32_t max_weight = 1000000;

/// The endpoints of a file's text, in file order, with a reason per skipped line.
OCCAMS_RPC_DECL std::vector<endpoint> parse_endpoint_lines(std::string_view text, std::vector<std::string>& problems);

/// Tidies a snapshot: the first of two endpoints with the same address wins, at most `max`
/// are kept (the last in address order go; the count dropped is returned), and the result
/// is sorted by address so that two equal sets compare equal.
OCCAMS_RPC_DECL std::size_t normalize_snapshot(std::vector<endpoint>& eps, std::size_t max);

}  // namespace occams_rpc::naming

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/naming/impl/endpoint_text.ipp>
#endif
