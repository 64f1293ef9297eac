// metrics::registry: Prometheus counters, gauges and latency histograms, fed as a call_observer.
//
//   metrics::registry metrics;                       // outlives the server and the streams
//   metrics.declare_methods(routes);                 // typed API: other names count as "unknown"
//   server_config scfg;  scfg.observer = &metrics;   // client_config too (label side="client")
//   metrics::exporter http(io.get_executor(), metrics);
//   http.listen(parse_address("127.0.0.1:9464"));    // GET /metrics (metrics/exporter.hpp)
//
// The registry is a call_observer (the one way metrics are fed): to keep your own observer as
// well, chain them with metrics::observer_pair (metrics/observer_pair.hpp).
//
// Hot path: each thread writes its own cells (one writer, relaxed atomic loads and stores: no
// lock, no read-modify-write), found through a small thread_local cache; a scrape sums every
// thread's cells under the registry's lock, which the hot path never takes. Allocations happen
// the first time a thread reports to this registry and the first time it reports a series
// (method or action): never per call.
//
// Bounded cardinality against hostile peers: string actions get their own series up to
// max_methods (declared ones included); numeric actions up to max_numeric_actions. Beyond:
// method="other" / action="other", logged once (warn). After declare_methods(), only declared
// names have series: any other name counts as method="unknown" (not logged: the router
// answers those calls rpc_method_notfound). Names longer than max_name_length count as
// "other"; bytes outside printable ASCII in a name are written as '?'.
#pragma once

#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/detail/config.hpp>
#include <occams_rpc/metrics/call_observer.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace occams_rpc::metrics {

struct registry_config {
  /// String actions ("Service.method") with a series of their own, declared or first seen;
  /// the others count as method="other".
  std::size_t max_methods = 128;
  /// Numeric actions (stream layer) with a series of their own, first seen first; the others
  /// count as action="other".
  std::size_t max_numeric_actions = 64;
  /// Longer action strings count as method="other" (they would bloat every scrape).
  std::size_t max_name_length = 128;
  /// Where the registry says that a bound was reached (once per bound).
  logger log;

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

namespace detail {

/// The outcome label of a finished call: ok, error (the method's own), or a framework error.
inline constexpr std::size_t outcome_count = 15;
/// Latency histogram upper bounds in nanoseconds (10 us .. 10 s), then +Inf.
inline constexpr std::uint64_t bucket_bounds_ns[] = {
    10'000,      25'000,      50'000,      100'000,       250'000,       500'000,       1'000'000,
    2'500'000,   5'000'000,   10'000'000,  25'000'000,    50'000'000,    100'000'000,   250'000'000,
    500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
inline constexpr std::size_t bucket_count = std::size(bucket_bounds_ns) + 1;

/// One side's figures for one series, written by one thread.
struct side_cells {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> outcomes[outcome_count]{};
  std::atomic<std::uint64_t> request_bytes{0};
  std::atomic<std::uint64_t> response_bytes{0};
  std::atomic<std::uint64_t> buckets[bucket_count]{};
  std::atomic<std::uint64_t> duration_ns{0};
};
struct series_cells {
  side_cells side[2];
};

/// One thread's cells: a series' block is made the first time this thread reports it.
struct thread_cells {
  explicit thread_cells(std::size_t series) : series(new std::atomic<series_cells*>[series]), size(series) {
    for (std::size_t i = 0; i < size; ++i) this->series[i].store(nullptr, std::memory_order_relaxed);
  }
  ~thread_cells() {
    for (std::size_t i = 0; i < size; ++i) delete series[i].load(std::memory_order_relaxed);
  }
  thread_cells(const thread_cells&) = delete;
  thread_cells& operator=(const thread_cells&) = delete;
  std::unique_ptr<std::atomic<series_cells*>[]> series;
  std::size_t size;
  std::atomic<std::uint64_t> events[2][observer_event_count]{};
};

/// A series' key: a string action or a numeric one, and its label text.
struct series_key {
  std::string name;  // string actions only
  std::uint32_t number = 0;
  bool numeric = false;
  std::uint32_t index = 0;
  std::string labels;  // `method="CalService.add"` or `action="7"`
};

}  // namespace detail

class registry final : public call_observer {
 public:
  OCCAMS_RPC_DECL explicit registry(registry_config cfg = {});
  OCCAMS_RPC_DECL ~registry() override;
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  OCCAMS_RPC_DECL void on_call_start(const call_info& c) noexcept override;
  OCCAMS_RPC_DECL void on_call_end(const call_info& c) noexcept override;
  OCCAMS_RPC_DECL void on_event(call_side side, observer_event e) noexcept override;

  /// Gives `action` ("Service.method") a series and closes the set of names: from now on any
  /// name not declared counts as method="unknown". Throws std::length_error past max_methods.
  OCCAMS_RPC_DECL void declare_method(std::string_view action);
  /// Declares every method a router serves (api::router::services()).
  template <class Router>
  void declare_methods(const Router& r) {
    for (const auto& s : r.services())
      for (const auto& m : s.methods) declare_method(s.name + "." + m.name);
  }

  /// The Prometheus text exposition (format 0.0.4) of every figure, summed over the threads.
  OCCAMS_RPC_DECL std::string scrape() const;
  OCCAMS_RPC_DECL void scrape(std::string& out) const;

  const registry_config& config() const noexcept { return cfg_; }

 private:
  static constexpr std::uint32_t other_method = 0, unknown_method = 1, other_action = 2, first_free = 3;

  OCCAMS_RPC_DECL detail::thread_cells& cells() noexcept;
  OCCAMS_RPC_DECL detail::thread_cells& cells_slow() noexcept;
  OCCAMS_RPC_DECL detail::side_cells& side_of(const call_info& c) noexcept;
  OCCAMS_RPC_DECL std::uint32_t series_of(const call_info& c) noexcept;
  OCCAMS_RPC_DECL std::uint32_t learn(std::string_view name, std::uint32_t number, bool numeric) noexcept;
  OCCAMS_RPC_DECL const detail::series_key* insert_locked(std::string_view name, std::uint32_t number, bool numeric);

  registry_config cfg_;
  std::uint64_t id_;             // never reused: tells this registry's cells in a thread's cache
  std::size_t capacity_;         // series: first_free + max_methods + max_numeric_actions
  std::size_t mask_;             // of each hash table (power of two, at least twice its bound)
  std::unique_ptr<std::atomic<const detail::series_key*>[]> names_;    // string actions
  std::unique_ptr<std::atomic<const detail::series_key*>[]> numbers_;  // numeric actions
  std::atomic<bool> names_full_{false}, numbers_full_{false}, closed_{false};

  mutable std::mutex mutex_;  // the keys and the threads' list; never taken per call
  std::deque<detail::series_key> keys_;  // by index (stable addresses)
  std::size_t method_count_ = 0, number_count_ = 0;
  std::vector<std::pair<std::thread::id, std::unique_ptr<detail::thread_cells>>> threads_;
  detail::thread_cells spare_;  // used only if a thread's cells cannot be allocated
};

}  // namespace occams_rpc::metrics

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/metrics/impl/registry.ipp>
#endif
