// What an exception says, for the log line of whoever caught it.
#pragma once

#include <exception>
#include <string>

namespace occams_rpc::detail {

/// The exception's what(), or a placeholder for one not derived from std::exception.
inline std::string exception_text(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

}  // namespace occams_rpc::detail
