// failover_pool: calls to a service served at several addresses, with failover.
//
// One client_pool per address. Each request goes to a healthy address as the configured
// policy picks it (round robin by default; primary/backup, smooth weighted round robin, least
// in flight with two choices, consistent hashing by a per-call key with bounded load). A
// retriable failure (unreachable, io_err, timeout) is retried on the next address, up to
// retry_limit more attempts; any other error, a user error included, is returned as it is,
// unless a classifier reads it as a redirect ("retry at X", "retry elsewhere"). Retrying means
// a request may run more than once (at-least-once): retry only what is safe to repeat, or set
// retry_limit to 0. update_endpoints() changes the set (and the weights) at run time; calls in
// flight on a removed address finish there (its pool closes gracefully) or are retried
// elsewhere. Outlier ejection, when configured, leaves an address that keeps failing out of
// the choice for a growing time. With every address down, a call fails with `unreachable`
// within about (retry_limit + 1) connect timeouts at most.
//
// The choices (which address, retry or not, when to stop, ejections) are sans-io:
// session::failover_fsm, session::balancer and session::outlier_detector; each call's
// coroutine here only makes the attempts they name. Each executor has its own shard of that
// state (the balancer's, calls in flight, ejections), touched only on that executor: no lock
// per call.
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/core/failover_hint.hpp>
#include <occams_rpc/naming/endpoint.hpp>
#include <occams_rpc/session/balancer.hpp>
#include <occams_rpc/session/failover_fsm.hpp>
#include <occams_rpc/session/outlier_detector.hpp>
#include <occams_rpc/stream/call_response.hpp>
#include <occams_rpc/stream/client_pool.hpp>
#include <occams_rpc/stream/detail/call_hints.hpp>
#include <occams_rpc/stream/detail/forwarding_handler.hpp>
#include <occams_rpc/transport/address.hpp>
#include <occams_rpc/transport/socket_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <occams_rpc/stream/detail/running_here.hpp>

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace occams_rpc {

/// The hashed key of a call, for failover_order::consistent_hash: calls with the same key go
/// to the same address (while it is eligible and not over its load bound). The same in
/// every process.
inline std::uint64_t balance_key(std::string_view key) noexcept { return session::hash_key(key); }
inline std::uint64_t balance_key(std::uint64_t key) noexcept { return session::hash_key(key); }

/// Per-call options of failover_pool::async_call.
struct failover_call_options {
  std::optional<std::uint64_t> key;        ///< balance_key(...) of the call's key
  failover_classifier classify = nullptr;  ///< reads an error answer; null: failover_config::classify
};

template <transport Transport = socket_transport>
class basic_failover_pool {
  using pool = basic_client_pool<Transport>;

  struct group;

  /// The failover state on one executor, touched only there.
  struct state {
    asio::any_io_executor ex;
    detail::thread_check here{ex};
    failover_config fcfg;  // copies: the attempts may outlive the pool object
    logger log;
    std::weak_ptr<group> g;                      // to add an address a redirect names
    std::vector<std::shared_ptr<pool>> pools;    // in the order given
    std::vector<session::failover_candidate> cands;  // pools[i]'s weight, calls in flight, ejection
    session::balancer lb;
    session::outlier_detector outliers;
    std::uint64_t generation = 0;  // of `pools`: a late update is ignored
    std::size_t turn = 0;          // round robin: one step per request
    bool closed = false;
    state(asio::any_io_executor e, const failover_config& f, const logger& l, std::uint64_t seed)
        : ex(std::move(e)), fcfg(f), log(l), lb(f, seed), outliers(f.outlier) {}

    /// Takes a new set: the addresses kept keep their counters; the balancer rebuilds.
    void apply(const std::vector<std::shared_ptr<pool>>& next, const std::vector<std::uint32_t>& weights,
               std::uint64_t gen) {
      std::vector<session::failover_candidate> c;
      std::vector<std::string> names;
      for (std::size_t i = 0; i < next.size(); ++i) {
        auto id = reinterpret_cast<std::uintptr_t>(next[i].get());
        auto it = std::find_if(cands.begin(), cands.end(), [&](auto& x) { return x.id == id; });
        c.push_back(it != cands.end() ? *it : session::failover_candidate{id, next[i]->healthy()});
        c.back().weight = weights[i];
        names.push_back(next[i]->where().to_string());
      }
      std::vector<std::string_view> views(names.begin(), names.end());
      lb.rebuild(c, views);
      pools = next;
      cands = std::move(c);
      generation = gen;
    }
  };

  /// What every executor shares: the configuration (fixed), and the set of pools under a lock
  /// (changed by update_endpoints, redirects and close, from any thread).
  struct group {
    std::vector<asio::any_io_executor> executors;
    Transport transport;
    client_config ccfg;
    failover_config fcfg;
    logger log;
    std::vector<std::shared_ptr<state>> shards;  // one per executor, fixed once made
    std::atomic<std::size_t> turn{0};           // calls from other threads go round
    std::mutex m;
    std::vector<std::shared_ptr<pool>> pools;  // guarded by m
    std::vector<std::uint32_t> weights;        // guarded by m, pools[i]'s
    std::uint64_t generation = 0;              // guarded by m
    std::size_t redirect_added = 0;            // guarded by m: addresses redirects added since the last update
    bool closed = false;                       // guarded by m
    group(std::vector<asio::any_io_executor> e, Transport t, const client_config& c, const failover_config& f,
          logger l)
        : executors(std::move(e)), transport(std::move(t)), ccfg(c), fcfg(f), log(std::move(l)) {}
  };

 public:
  using executor_type = asio::any_io_executor;

  /// Starts connecting to every address, through `transport` (every pool gets a copy).
  /// Throws std::system_error(errc::invalid_config) for a bad config. The executor must be
  /// serial (see client_stream). Every address has weight 1.
  basic_failover_pool(executor_type ex, const std::vector<address>& addresses, const client_config& ccfg = {},
                      const failover_config& fcfg = {}, logger log = {}, Transport transport = {})
      : basic_failover_pool(std::vector<executor_type>{std::move(ex)}, endpoints_of(addresses), ccfg, fcfg,
                            std::move(log), std::move(transport)) {}

  /// Each address's connections spread over `executors` (each serial), as a client_pool
  /// given them spreads them; fcfg.pool.connections per address in all.
  basic_failover_pool(std::vector<executor_type> executors, const std::vector<address>& addresses,
                      const client_config& ccfg = {}, const failover_config& fcfg = {}, logger log = {},
                      Transport transport = {})
      : basic_failover_pool(std::move(executors), endpoints_of(addresses), ccfg, fcfg, std::move(log),
                            std::move(transport)) {}

  /// The same, with a weight per address (the weighted policies use them; weight 0 counts as 1).
  /// Pass a std::vector<naming::endpoint>: a braced list, `{}` included, picks the address forms
  /// (a template, so that `pool(ex, {})` is not ambiguous between the two).
  template <std::same_as<std::vector<naming::endpoint>> Endpoints>
  basic_failover_pool(executor_type ex, const Endpoints& endpoints, const client_config& ccfg = {},
                      const failover_config& fcfg = {}, logger log = {}, Transport transport = {})
      : basic_failover_pool(std::vector<executor_type>{std::move(ex)}, endpoints, ccfg, fcfg, std::move(log),
                            std::move(transport)) {}

  template <std::same_as<std::vector<naming::endpoint>> Endpoints>
  basic_failover_pool(std::vector<executor_type> executors, const Endpoints& endpoints,
                      const client_config& ccfg = {}, const failover_config& fcfg = {}, logger log = {},
                      Transport transport = {})
      : g_(std::make_shared<group>(std::move(executors), std::move(transport), (validate(ccfg), ccfg),
                                   (validate(fcfg), fcfg), std::move(log))) {
    if (g_->executors.empty())
      throw std::system_error(make_error_code(errc::invalid_config), "failover_pool: no executor");
    for (auto& e : endpoints) {
      g_->pools.push_back(make_pool(*g_, e.where));
      g_->weights.push_back(effective_weight(e));
    }
    std::uint64_t seed = reinterpret_cast<std::uintptr_t>(g_.get());
    for (auto& ex : g_->executors) {
      auto st = std::make_shared<state>(ex, g_->fcfg, g_->log, session::mix64(seed++));
      st->g = g_;
      st->apply(g_->pools, g_->weights, 0);
      g_->shards.push_back(std::move(st));
    }
  }
  basic_failover_pool(const basic_failover_pool&) = delete;
  basic_failover_pool& operator=(const basic_failover_pool&) = delete;
  ~basic_failover_pool() { close(); }

  /// As client_stream::async_call, with failover. The msg and blob must stay valid until
  /// completion (a retry sends them again). Completion signature: void(std::error_code,
  /// call_response). Cancellation: terminal, partial and total are honoured: the attempt in
  /// flight is cancelled and no further attempt is made (errc::cancelled). Executor: the
  /// handler runs on its associated executor, else the executor the attempts ran on. Thread
  /// safety: may be called from any thread; on a thread running one of the pool's executors
  /// the attempts run there, else on the next executor in turn.
  /// As client_stream::async_call, with failover. The msg and blob must stay valid until
  /// completion (a retry sends them again). Completion signature: void(std::error_code,
  /// call_response). Cancellation: terminal, partial and total are honoured: the attempt in
  /// flight is cancelled and no further attempt is made (errc::cancelled). Executor: the
  /// handler runs on its associated executor, else the executor the attempts ran on. Thread
  /// safety: may be called from any thread; on a thread running one of the pool's executors
  /// the attempts run there, else on the next executor in turn. A typed stub's call carries
  /// its key (api::with_key) and its error type's classifier in its handler.
  template <class Token = asio::deferred_t>
  auto async_call(action act, std::span<const char> msg, std::span<const char> blob = {}, call_response buffers = {},
                  Token&& token = {}) {
    return async_call(failover_call_options{}, act, msg, blob, std::move(buffers), std::forward<Token>(token));
  }

  /// The same with per-call options: a key for consistent_hash, a classifier for redirects
  /// (each, when not given, taken from a typed stub's handler if it has one).
  template <class Token = asio::deferred_t>
  auto async_call(failover_call_options opts, action act, std::span<const char> msg, std::span<const char> blob = {},
                  call_response buffers = {}, Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code, call_response)>(
        [g = g_](auto handler, failover_call_options opts, action act, std::span<const char> msg,
                 std::span<const char> blob, call_response buffers) {
          if (!opts.key) opts.key = detail::call_key(handler);
          if (!opts.classify) opts.classify = detail::call_classifier(handler);
          const std::shared_ptr<state>& st = route(*g);
          // The completion is the user's handler to Asio: co_spawn connects its cancellation
          // slot to the attempts and completes it on its associated executor.
          asio::co_spawn(st->ex, attempts(st, act, msg, blob, std::move(buffers), opts),
                         detail::forward_to(std::move(handler), detail::unpack_coroutine_result{errc::internal}));
        },
        token, opts, act, msg, blob, std::move(buffers));
  }

  /// Replaces the set of addresses, each with weight 1 (see update_endpoints).
  void update_addresses(const std::vector<address>& addresses) { update_endpoints(endpoints_of(addresses)); }

  /// Replaces the set of addresses and their weights: new ones get a pool, removed ones' pools
  /// close gracefully once no executor can start a call on them any more; kept ones keep
  /// their pool, counters and ejection. Addresses a redirect added are dropped unless listed.
  /// Thread safety: any thread; of two concurrent updates, the one that takes the pool's lock
  /// last wins everywhere.
  void update_endpoints(const std::vector<naming::endpoint>& endpoints) {
    std::lock_guard lock(g_->m);
    if (g_->closed) return;
    std::vector<std::shared_ptr<pool>> next;
    std::vector<std::uint32_t> weights;
    for (auto& e : endpoints) {
      auto same = [&](auto& p) { return p->where() == e.where; };
      auto it = std::find_if(g_->pools.begin(), g_->pools.end(), same);
      next.push_back(it != g_->pools.end() ? *it : make_pool(*g_, e.where));
      weights.push_back(effective_weight(e));
    }
    g_->redirect_added = 0;
    publish(*g_, std::move(next), std::move(weights));
  }

  /// Closes every pool (calls in flight complete); later calls fail with errc::closed.
  /// Thread safety: any thread, any number of times.
  void close() { shut(*g_); }

  /// close(), then completes once every pool is closed. Completion signature:
  /// void(std::error_code). Cancellation: not supported (the close goes on; the token's slot
  /// is left alone). Executor: the handler runs on its associated executor, else the first
  /// executor's. Thread safety: may be called from any thread.
  template <class Token = asio::deferred_t>
  auto async_close(Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [g = g_](auto handler) {
          auto work = [g]() -> asio::awaitable<void> {
            auto pools = shut(*g);
            for (auto& p : pools) co_await p->async_close(tok);
          };
          asio::co_spawn(g->shards.front()->ex, std::move(work),
                         detail::forward_to(detail::without_cancellation(std::move(handler)),
                                            detail::unpack_coroutine_result{errc::internal}));
        },
        token);
  }

  /// The addresses with at least one healthy connection (a snapshot). Thread safety: any thread.
  std::vector<address> healthy_addresses() const {
    std::vector<address> out;
    std::lock_guard lock(g_->m);
    for (auto& p : g_->pools)
      if (p->healthy()) out.push_back(p->where());
    return out;
  }
  /// Every address in the set, with its weight, in order (a snapshot; redirects may have
  /// added some). Thread safety: any thread.
  std::vector<naming::endpoint> endpoints() const {
    std::vector<naming::endpoint> out;
    std::lock_guard lock(g_->m);
    for (std::size_t i = 0; i < g_->pools.size(); ++i) out.push_back({g_->pools[i]->where(), g_->weights[i]});
    return out;
  }
  /// The first executor given.
  executor_type get_executor() const { return g_->shards.front()->ex; }

 private:
  static constexpr auto tok = asio::as_tuple(asio::deferred);

  static std::shared_ptr<pool> make_pool(group& g, const address& a) {
    return std::make_shared<pool>(g.executors, a, g.ccfg, g.fcfg.pool, g.log, g.transport);
  }

  /// The calling thread's executor's state, else the next in turn.
  static const std::shared_ptr<state>& route(group& g) {
    std::size_t n = g.shards.size();
    if (n == 1) return g.shards.front();
    for (auto& st : g.shards)
      if (st->here()) return st;
    return g.shards[g.turn.fetch_add(1, std::memory_order_relaxed) % n];
  }

  /// Marks every executor's state closed and closes every pool (once); the pools it closed.
  static std::vector<std::shared_ptr<pool>> shut(group& g) {
    std::vector<std::shared_ptr<pool>> pools;
    bool first = false;
    {
      std::lock_guard lock(g.m);
      pools = g.pools;
      if (!g.closed) {
        first = g.closed = true;
        for (auto& st : g.shards) asio::post(st->ex, [st] { st->closed = true; });
      }
    }
    if (first)
      for (auto& p : pools) p->close();  // outside the lock: a close may run code inline
    return pools;
  }

  /// Weight 0 counts as 1 (documented on the endpoint constructors).
  static std::uint32_t effective_weight(const naming::endpoint& e) { return std::max<std::uint32_t>(e.weight, 1); }
  static std::vector<naming::endpoint> endpoints_of(const std::vector<address>& addresses) {
    std::vector<naming::endpoint> out;
    for (auto& a : addresses) out.push_back({a, 1});
    return out;
  }

  /// Makes `next` the set on every executor (under g.m): posted, not dispatched, so that
  /// nothing runs inline under the lock; the pools no longer listed close once every
  /// executor has let them go.
  static void publish(group& g, std::vector<std::shared_ptr<pool>> next, std::vector<std::uint32_t> weights) {
    struct retiring {
      std::atomic<std::size_t> left;
      std::vector<std::shared_ptr<pool>> pools;
    };
    auto removed = std::make_shared<retiring>();
    removed->left = g.shards.size();
    for (auto& p : g.pools)
      if (std::find(next.begin(), next.end(), p) == next.end()) removed->pools.push_back(p);
    g.pools = next;
    g.weights = weights;
    std::uint64_t gen = ++g.generation;
    for (auto& st : g.shards)
      asio::post(st->ex, [st, next, weights, gen, removed] {
        if (!st->closed && gen > st->generation) st->apply(next, weights, gen);
        if (removed->left.fetch_sub(1, std::memory_order_acq_rel) == 1)
          for (auto& p : removed->pools) p->close();
      });
  }

  /// The index in st's set of the pool at `a`, adding it (weight 1) when a redirect names a
  /// new address and fewer than max_redirect_addresses were added; npos otherwise. Runs on
  /// st's executor, which takes the new set at once (the others when their post runs).
  static std::size_t redirect_target(state& st, const address& a) {
    auto find = [&] {
      for (std::size_t i = 0; i < st.pools.size(); ++i)
        if (st.pools[i]->where() == a) return i;
      return session::failover_advice::npos;
    };
    if (std::size_t i = find(); i != session::failover_advice::npos) return i;
    auto g = st.g.lock();
    if (!g) return session::failover_advice::npos;
    std::lock_guard lock(g->m);
    if (g->closed) return session::failover_advice::npos;
    bool known = std::any_of(g->pools.begin(), g->pools.end(), [&](auto& p) { return p->where() == a; });
    if (!known) {
      if (g->redirect_added >= g->fcfg.max_redirect_addresses) {
        st.log.warn("failover: a redirect names {}, a new address, but {} were added already "
                    "(max_redirect_addresses): not followed", a.to_string(), g->redirect_added);
        return session::failover_advice::npos;
      }
      ++g->redirect_added;
      st.log.info("failover: a redirect adds {} to the set", a.to_string());
      auto next = g->pools;
      auto weights = g->weights;
      next.push_back(make_pool(*g, a));
      weights.push_back(1);
      publish(*g, std::move(next), std::move(weights));
    }
    st.apply(g->pools, g->weights, g->generation);  // here and now: the attempt goes there next
    return find();
  }

  /// Before a choice: who is healthy now, and which ejections are over.
  static void refresh(state& st) {
    for (std::size_t i = 0; i < st.pools.size(); ++i) st.cands[i].healthy = st.pools[i]->healthy();
    if (st.outliers.enabled()) st.outliers.on_time(st.cands, session::outlier_detector::clock::now(), tell(st));
  }

  /// Logs an ejection or a return.
  static auto tell(state& st) {
    return [&st](std::size_t i, session::outlier_detector::event e, session::outlier_detector::clock::time_point t) {
      auto where = st.pools[i]->where().to_string();
      if (e == session::outlier_detector::event::returned) {
        st.log.info("outlier ejection: {} returns to the choice", where);
        return;
      }
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - session::outlier_detector::clock::now());
      st.log.warn("outlier ejection: {} ejected for {} ms ({} time(s) in a row)", where, ms.count(),
                  st.cands[i].outlier.times_ejected);
    };
  }

  static std::size_t index_of(const state& st, const pool* p) {
    for (std::size_t i = 0; i < st.pools.size(); ++i)
      if (st.pools[i].get() == p) return i;
    return st.pools.size();
  }

  static bool is_method_error(std::error_code ec) noexcept {
    return ec.category() == remote_category() || ec == errc::remote_error;
  }

  /// What the call's classifier makes of an error answer, resolved against st's set.
  static session::failover_advice advise(state& st, const failover_call_options& opts, std::error_code ec,
                                         const call_response& r) {
    session::failover_advice advice;
    if (!ec || !is_method_error(ec)) return advice;
    failover_hint hint;
    if (opts.classify) hint = opts.classify(ec, r.msg.span());
    else if (st.fcfg.classify) hint = st.fcfg.classify(ec, r.msg.span());
    advice.what = hint.what;
    if (hint.what == failover_hint::kind::at) {
      address a;
      if (parse_address(hint.address, a)) {
        st.log.warn("failover: a redirect names \"{}\", not an address: retried elsewhere", hint.address);
        advice.what = failover_hint::kind::elsewhere;
      } else {
        advice.at = redirect_target(st, a);
      }
    }
    return advice;
  }

  static asio::awaitable<std::tuple<std::error_code, call_response>> attempts(std::shared_ptr<state> st, action act,
                                                                             std::span<const char> msg,
                                                                             std::span<const char> blob,
                                                                             call_response buffers,
                                                                             failover_call_options opts) {
    // co_spawn passes on terminal cancellation only; honour every type, as a client_stream call
    // does. A cancelled attempt completes with errc::cancelled, which is never retried.
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    co_await asio::this_coro::throw_if_cancelled(false);
    // The caller's buffers stay out of the attempts: `msg` may point into them (a typed stub
    // encodes there), and an attempt's answer (an error string) would overwrite what a retry
    // must send again. Each attempt gets fresh buffers; the caller's go back on success.
    call_response callers = std::move(buffers);
    session::failover_fsm fsm(st->fcfg, st->lb, st->turn++, opts.key);
    refresh(*st);
    session::failover_action next = fsm.start(st->cands, st->closed);
    while (next.step == session::failover_step::attempt) {
      std::shared_ptr<pool> p = st->pools[next.index];
      ++st->cands[next.index].in_flight;
      auto [ec, r] = co_await p->async_call(act, msg, blob, call_response{}, tok);
      std::size_t i = index_of(*st, p.get());  // the set may have changed meanwhile
      if (i < st->cands.size() && st->cands[i].in_flight > 0) --st->cands[i].in_flight;
      if (st->outliers.enabled() && i < st->cands.size()) {
        bool failed = is_retriable(ec) || (st->fcfg.outlier.count_method_errors && is_method_error(ec));
        st->outliers.on_result(st->cands, i, failed, session::outlier_detector::clock::now(), tell(*st));
      }
      session::failover_advice advice = advise(*st, opts, ec, r);
      refresh(*st);
      asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
      next = fsm.on_result(ec, st->cands, st->closed, cs.cancelled() != asio::cancellation_type::none, advice);
      if (next.step == session::failover_step::complete) co_return std::tuple{ec, std::move(r)};
      if (next.step == session::failover_step::attempt)
        st->log.debug("failover: {} on {}; trying {}", ec.message(), p->where().to_string(),
                      st->pools[next.index]->where().to_string());
    }
    if (next.ec == errc::too_many_redirects)
      st->log.warn("failover: a call was redirected more than {} times (max_redirects): failed", st->fcfg.max_redirects);
    callers.msg.clear();
    callers.blob.clear();
    co_return std::tuple{next.ec, std::move(callers)};
  }

  std::shared_ptr<group> g_;
};

using failover_pool = basic_failover_pool<>;

}  // namespace occams_rpc
