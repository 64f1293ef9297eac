// Whether the calling thread is running an executor's handlers now, for the executors we know.
// Lets the hot path call straight through instead of asio::dispatch on an any_io_executor,
// which type-erases (and recycles) a function object for every call even when it then runs
// inline.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace occams_rpc::detail {

namespace asio = boost::asio;

/// True only when sure: false for an executor type not known here (the caller then goes
/// through asio::dispatch, which decides).
inline bool running_in_this_thread(const asio::any_io_executor& ex) noexcept {
  using plain = asio::io_context::executor_type;
  using tracked = decltype(asio::prefer(std::declval<plain>(), asio::execution::outstanding_work.tracked));
  if (auto* e = ex.target<plain>()) return e->running_in_this_thread();
  if (auto* e = ex.target<tracked>()) return e->running_in_this_thread();
  if (auto* e = ex.target<asio::strand<plain>>()) return e->running_in_this_thread();
  return false;
}

}  // namespace occams_rpc::detail
