// pool_follower: keeps a pool's address set equal to a naming source's snapshots.
//
//   failover_pool pool(ex, std::vector<naming::endpoint>{});  // no address yet
//   naming::pool_follower follow(ex, "etcd://127.0.0.1:2379/services/calc", pool);
//   co_await follow.async_wait_ready(asio::deferred);  // the first snapshot is in the pool
//
// Until the first snapshot, and whenever a snapshot is empty, the pool has no address and
// its calls fail with errc::unreachable at once. The follower must be stopped or destroyed
// before the pool, on the executor's thread (or once the executor no longer runs).
#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/naming/make_source.hpp>
#include <occams_rpc/stream/detail/forwarding_handler.hpp>
#include <occams_rpc/transport/address.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <memory>
#include <vector>

namespace occams_rpc::naming {

/// THE place where a snapshot becomes a pool's address set: with its weights where the pool
/// takes them (failover_pool::update_endpoints), else as addresses.
template <class Pool>
void apply_snapshot(Pool& pool, const std::vector<endpoint>& eps) {
  if constexpr (requires { pool.update_endpoints(eps); }) {
    pool.update_endpoints(eps);
  } else {
    std::vector<address> addresses;
    addresses.reserve(eps.size());
    for (auto& e : eps) addresses.push_back(e.where);
    pool.update_addresses(std::move(addresses));
  }
}

template <class Pool>
class pool_follower {
  struct state {
    boost::asio::steady_timer ready_timer;
    bool ready = false;
    bool stopped = false;
    std::size_t snapshots = 0;
    explicit state(const boost::asio::any_io_executor& ex) : ready_timer(ex, boost::asio::steady_timer::time_point::max()) {}
  };

 public:
  /// Parses `url` (a naming URL or a bare address) and starts following it. Throws
  /// std::system_error(errc::invalid_address) for a bad URL.
  pool_follower(boost::asio::any_io_executor ex, std::string_view url, Pool& pool, const naming_config& cfg = {},
                logger log = {})
      : ex_(ex), st_(std::make_shared<state>(ex)), source_(make_source(ex, url, cfg, std::move(log))) {
    source_->start([st = st_, p = &pool](const std::vector<endpoint>& eps) {
      if (st->stopped) return;
      apply_snapshot(*p, eps);
      ++st->snapshots;
      if (!st->ready) {
        st->ready = true;
        st->ready_timer.cancel();
      }
    });
  }
  pool_follower(const pool_follower&) = delete;
  pool_follower& operator=(const pool_follower&) = delete;
  ~pool_follower() { stop(); }

  /// Completes once the first snapshot is in the pool (at once if it already is).
  /// Completion signature: void(std::error_code): errc::closed when stopped first, errc::cancelled
  /// when cancelled. Cancellation: terminal, through the token's slot. Executor: the handler runs
  /// on its associated executor, else the follower's. Thread safety: call on the follower's executor.
  template <class Token = boost::asio::deferred_t>
  auto async_wait_ready(Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [st = st_, ex = ex_](auto handler) {
          auto wait = [st]() -> boost::asio::awaitable<void> {
            if (!st->ready && !st->stopped)
              co_await st->ready_timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (st->ready) co_return;
            boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
            if (cs.cancelled() != boost::asio::cancellation_type::none)
              throw boost::system::system_error(boost::asio::error::operation_aborted);
            throw std::system_error(make_error_code(errc::closed));
          };
          boost::asio::co_spawn(ex, std::move(wait),  // the lambda, not wait(): its captures must live as long as its frame
                                occams_rpc::detail::forward_to(std::move(handler),
                                                               occams_rpc::detail::unpack_coroutine_result{errc::closed}));
        },
        token);
  }

  /// Stops following: the pool keeps its last address set. Call on the follower's executor.
  void stop() {
    st_->stopped = true;
    st_->ready_timer.cancel();
    source_->stop();
  }
  /// Snapshots applied so far.
  std::size_t snapshots() const noexcept { return st_->snapshots; }

 private:
  boost::asio::any_io_executor ex_;
  std::shared_ptr<state> st_;
  std::unique_ptr<source> source_;
};

}  // namespace occams_rpc::naming
