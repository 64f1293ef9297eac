// A single-waiter wake-up for a connection's writer coroutine. notify() never resumes the
// waiter inline: it is queued, so that every call made in the same turn of the event loop
// joins the same batch (batched flush). notify_here() resumes it at once, for a caller that
// knows the batch is complete (the reader, at the end of a read's event).
#pragma once

#include <occams_rpc/stream/detail/stored_handler.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

namespace occams_rpc::detail {

class wake_event {
 public:
  explicit wake_event(asio::any_io_executor ex) : ex_(std::move(ex)) {}

  /// Completes (with no error) after the next notify(), or at once if one came meanwhile.
  template <class Token>
  auto async_wait(Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) {
          waiter_.emplace(std::move(handler), ex_);
          if (std::exchange(signaled_, false)) waiter_.post(boost::system::error_code{});
        },
        token);
  }

  void notify() {
    if (waiter_) waiter_.post(boost::system::error_code{});
    else signaled_ = true;
  }

  /// Resumes the waiter now, on this thread (which must run the waiter's executor): it runs
  /// until it next suspends, then this returns.
  void notify_here() {
    if (waiter_) waiter_.dispatch_here(boost::system::error_code{});
    else signaled_ = true;
  }

  bool waiting() const noexcept { return static_cast<bool>(waiter_); }

  /// Hands over the stored waiter, to be destroyed without running (see shutdown_hook.hpp).
  stored_handler<boost::system::error_code> take_waiter() noexcept { return std::move(waiter_); }

 private:
  asio::any_io_executor ex_;
  stored_handler<boost::system::error_code> waiter_;
  bool signaled_ = false;
};

}  // namespace occams_rpc::detail
