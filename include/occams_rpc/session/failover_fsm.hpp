// One failover_pool call's choices, sans-io: which address each attempt goes to, which
// failures are retried, when the attempts run out, what the call completes with. The shell
// (the call's coroutine) describes the addresses as they are at each step, makes the attempt
// the machine names, and reports its result. Addresses are told apart by an id the shell
// chooses (the address's pool), so a list that update_addresses changed between two attempts
// is simply the list the next step sees. Which address among the eligible ones is the
// policy's (session/balancer.hpp); a method's error answer may redirect the call
// (failover_advice, from a classifier: core/failover_hint.hpp).
//
//   start ──► attempt(i) ──result──► complete   (success, or an error that is not retried)
//                ▲                │ retriable
//                └────────────────┤ attempts left, not closed, not cancelled
//                                 └► fail(last error)   (no attempt left, no address, closed)
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/failover_hint.hpp>
#include <occams_rpc/detail/config.hpp>
#include <occams_rpc/session/balancer.hpp>

#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <system_error>

namespace occams_rpc::session {

enum class failover_step {
  attempt,   ///< send the call to candidates[index]; report on_result
  complete,  ///< the last attempt's outcome (success or an error not retried) is the call's
  fail,      ///< the call completes with `ec` and no response
};

struct failover_action {
  failover_step step;
  std::size_t index = 0;  ///< attempt: which candidate
  std::error_code ec{};   ///< fail: the error the call completes with
};

/// What a classifier made of an attempt's error answer (failover_hint), with `at` resolved
/// by the shell to a candidate index (npos: an address it could not or would not add).
struct failover_advice {
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
  failover_hint::kind what = failover_hint::kind::usual;
  std::size_t at = npos;
};

class failover_fsm {
 public:
  /// `lb` is the shard's balancer (it outlives the call's steps); `turn` the call's step in
  /// the round robin (the pool counts one per call); `key` the call's hashed key, if any.
  failover_fsm(const failover_config& cfg, balancer& lb, std::size_t turn, std::optional<std::uint64_t> key = {})
      : lb_(&lb), retry_limit_(cfg.retry_limit), max_redirects_(cfg.max_redirects), turn_(turn), key_(key) {}

  /// The first attempt, or fail: errc::closed when the pool is closed, errc::unreachable
  /// when there is no address.
  OCCAMS_RPC_DECL failover_action start(std::span<const failover_candidate> candidates, bool closed);

  /// The attempt completed with `ec`. Retried: unreachable, io_err and timeout (is_retriable),
  /// and errc::closed from an address no longer in `candidates` (update_addresses removed it
  /// before the call was sent: such an attempt is given back, up to max_reroutes times per
  /// call, and counts as unreachable if the call fails); the retry goes to another address
  /// while at most retry_limit retries were made, the pool is not closed, and the caller has
  /// not `cancelled` (then: fail with errc::cancelled).
  /// Anything else completes the call as the attempt did, among them user errors and the
  /// tls_* errors (is_tls_error: a certificate refused is refused at every address).
  /// `advice` from an error answer's classifier: `stop` completes the call as the attempt
  /// did; `elsewhere` and `at` retry (elsewhere: on an address not tried; at: on
  /// candidates[advice.at], else as elsewhere) while attempts remain, and complete with the
  /// attempt's answer once they do not; the (max_redirects + 1)-th redirect of a call fails
  /// it with errc::too_many_redirects.
  OCCAMS_RPC_DECL failover_action on_result(std::error_code ec, std::span<const failover_candidate> candidates,
                                            bool closed, bool cancelled, failover_advice advice = {});

  /// Attempts a call may have given back because its address left the set before it was sent.
  static constexpr std::size_t max_reroutes = 8;

  /// Attempts made so far (not counting those given back).
  std::size_t attempts() const noexcept { return attempts_; }
  /// Redirects followed so far.
  std::size_t redirects() const noexcept { return redirects_; }
  /// The error the call fails with if no further attempt is made.
  std::error_code last_error() const noexcept { return last_; }

 private:
  /// The next attempt: the healthy, not ejected addresses this call has not tried, as the
  /// policy picks; else one it has not tried, in list order; once every address was tried,
  /// it starts over.
  failover_action next(std::span<const failover_candidate> candidates, bool closed);
  failover_action attempt(std::span<const failover_candidate> candidates, std::size_t i);
  bool tried(std::uintptr_t id) const noexcept;
  std::size_t choose(std::span<const failover_candidate> candidates);

  balancer* lb_;
  std::size_t retry_limit_;
  std::size_t max_redirects_;
  std::size_t turn_;
  std::optional<std::uint64_t> key_;
  std::size_t attempts_ = 0;
  std::size_t redirects_ = 0;
  std::size_t reroutes_ = 0;
  std::uintptr_t current_ = 0;
  std::error_code last_;
  boost::container::small_vector<std::uintptr_t, 4> tried_;  // no allocation for 4 attempts
};

}  // namespace occams_rpc::session

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/session/impl/failover_fsm.ipp>
#endif
