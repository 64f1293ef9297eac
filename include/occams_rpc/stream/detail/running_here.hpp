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

/// running_in_this_thread for one executor, whose type is looked up once, not per call.
/// The executor must outlive the check (it is its owner's member).
class thread_check {
 public:
  explicit thread_check(const asio::any_io_executor& ex) noexcept
      : ex_(&ex), plain_(ex.target<asio::io_context::executor_type>()) {}
  bool operator()() const noexcept { return plain_ ? plain_->running_in_this_thread() : running_in_this_thread(*ex_); }

 private:
  const asio::any_io_executor* ex_;
  const asio::io_context::executor_type* plain_;
};

}  // namespace occams_rpc::detail
