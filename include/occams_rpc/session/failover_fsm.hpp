// One failover_pool call's choices, sans-io: which address each attempt goes to, which
// failures are retried, when the attempts run out, what the call completes with. The shell
// (the call's coroutine) describes the addresses as they are at each step, makes the attempt
// the machine names, and reports its result. Addresses are told apart by an id the shell
// chooses (the address's pool), so a list that update_addresses changed between two attempts
// is simply the list the next step sees.
//
//   start ──► attempt(i) ──result──► complete   (success, or an error that is not retried)
//                ▲                │ retriable
//                └────────────────┤ attempts left, not closed, not cancelled
//                                 └► fail(last error)   (no attempt left, no address, closed)
#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/detail/config.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

namespace occams_rpc::session {

/// An address as the next choice sees it.
struct failover_candidate {
  std::uintptr_t id;  ///< the same for the same address (its pool) while it stays in the list
  bool healthy;       ///< at least one connection up
};

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

class failover_fsm {
 public:
  /// `turn` is the call's step in the round robin (the pool counts one per call).
  failover_fsm(const failover_config& cfg, std::size_t turn)
      : order_(cfg.order), retry_limit_(cfg.retry_limit), turn_(turn) {}

  /// The first attempt, or fail: errc::closed when the pool is closed, errc::unreachable
  /// when there is no address.
  OCCAMS_RPC_DECL failover_action start(std::span<const failover_candidate> candidates, bool closed);

  /// The attempt completed with `ec`. Retried: unreachable, io_err and timeout (is_retriable),
  /// and errc::closed from an address no longer in `candidates` (update_addresses removed it);
  /// the retry goes to another address while at most retry_limit retries were made, the pool
  /// is not closed, and the caller has not `cancelled` (then: fail with errc::cancelled).
  /// Anything else completes the call as the attempt did, among them user errors and the
  /// tls_* errors (is_tls_error: a certificate refused is refused at every address).
  OCCAMS_RPC_DECL failover_action on_result(std::error_code ec, std::span<const failover_candidate> candidates,
                                            bool closed, bool cancelled);

  /// Attempts made so far.
  std::size_t attempts() const noexcept { return attempts_; }
  /// The error the call fails with if no further attempt is made.
  std::error_code last_error() const noexcept { return last_; }

 private:
  /// The next attempt: healthy addresses this call has not tried, in the configured order;
  /// else one it has not tried, in list order; once every address was tried, it starts over.
  failover_action next(std::span<const failover_candidate> candidates, bool closed);
  bool tried(std::uintptr_t id) const noexcept;
  std::size_t choose(std::span<const failover_candidate> candidates) const noexcept;

  failover_order order_;
  std::size_t retry_limit_;
  std::size_t turn_;
  std::size_t attempts_ = 0;
  std::uintptr_t current_ = 0;
  std::error_code last_;
  std::vector<std::uintptr_t> tried_;
};

}  // namespace occams_rpc::session

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/session/impl/failover_fsm.ipp>
#endif
