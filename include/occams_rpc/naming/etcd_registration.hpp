// etcd_registration: a server announces itself under an etcd prefix while it runs.
//
// Key PREFIX/ADDRESS (e.g. /services/calc/127.0.0.1:4242), value {"addr":ADDRESS,"weight":W},
// attached to a lease of registration_config::ttl_seconds (10) kept alive every
// keepalive_period (ttl / 3). async_stop() revokes the lease: the key goes at once. A crashed
// server's key goes when its lease expires. If etcd cannot be reached, at start or later, the
// failure is logged and retried with backoff (naming_config::retry_backoff..retry_backoff_max);
// when the lease is found gone (etcd says TTL 0, or no keep-alive succeeded for a whole TTL),
// a new lease is granted and the key written again.
//
// Thread safety: start() once, async_stop()/stop() from any thread (they post to the executor).
#pragma once

#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/naming/config.hpp>
#include <occams_rpc/naming/detail/etcd_http.hpp>
#include <occams_rpc/naming/endpoint.hpp>
#include <occams_rpc/stream/detail/forwarding_handler.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <memory>
#include <string>

namespace occams_rpc::naming {

class etcd_registration {
  struct state {
    boost::asio::any_io_executor ex;
    detail::etcd_target etcd;
    std::string key, value;
    registration_config rcfg;
    naming_config cfg;
    logger log;
    boost::asio::steady_timer timer;       // sleeps between keep-alives and retries
    boost::asio::steady_timer done_timer;  // cancelled when the loop has finished (revoked)
    std::function<void()> abort_io;
    bool started = false, stopped = false, finished = false;
    std::atomic<bool> registered{false};
    std::atomic<std::int64_t> lease{0};
    state(boost::asio::any_io_executor e) : ex(e), timer(e), done_timer(e, boost::asio::steady_timer::time_point::max()) {}
  };

 public:
  /// `etcd_url` is etcd://HOST:PORT/PREFIX; `self` the address clients should call.
  /// Throws std::system_error(errc::invalid_address) for a bad URL, (errc::invalid_config) for
  /// a TTL below 1 s.
  OCCAMS_RPC_DECL etcd_registration(boost::asio::any_io_executor ex, std::string_view etcd_url, const address& self,
                                    const registration_config& rcfg = {}, const naming_config& cfg = {},
                                    logger log = {});
  etcd_registration(const etcd_registration&) = delete;
  etcd_registration& operator=(const etcd_registration&) = delete;
  /// stop(): the lease is revoked in the background if the executor still runs.
  ~etcd_registration() { stop(); }

  /// Starts registering (returns at once).
  OCCAMS_RPC_DECL void start();

  /// Stops keeping alive, revokes the lease (bounded by request_timeout), then completes.
  /// Completion signature: void(std::error_code), always without error (a failed revoke is
  /// logged: the key then goes when the lease expires). Cancellation: not supported (the slot
  /// is left alone). Executor: the handler runs on its associated executor, else the
  /// registration's. Thread safety: any thread, any number of times.
  template <class Token = boost::asio::deferred_t>
  auto async_stop(Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [st = st_](auto handler) {
          auto work = [st]() -> boost::asio::awaitable<void> {
            halt(*st);
            if (!st->finished) co_await st->done_timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
          };
          boost::asio::co_spawn(st->ex, std::move(work),  // the lambda itself: co_spawn keeps it (and st) alive
                                occams_rpc::detail::forward_to(occams_rpc::detail::without_cancellation(std::move(handler)),
                                                   occams_rpc::detail::unpack_coroutine_result{errc::internal}));
        },
        token);
  }
  /// async_stop() without waiting.
  void stop() {
    boost::asio::post(st_->ex, [st = st_] { halt(*st); });
  }

  /// True while the key is written under a live lease (as far as the last exchange knows).
  bool registered() const noexcept { return st_->registered.load(); }
  const std::string& key() const noexcept { return st_->key; }

 private:
  static void halt(state& st) {
    if (st.stopped) return;
    st.stopped = true;
    st.timer.cancel();
    if (st.abort_io) st.abort_io();
    if (!st.started) {
      st.finished = true;
      st.done_timer.cancel();
    }
  }
  OCCAMS_RPC_DECL static boost::asio::awaitable<void> run(std::shared_ptr<state> st);
  std::shared_ptr<state> st_;
};

}  // namespace occams_rpc::naming

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/naming/impl/etcd_registration.ipp>
#endif
