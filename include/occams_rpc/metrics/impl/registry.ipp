// metrics::registry's bodies (metrics/registry.hpp).
#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/metrics/registry.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <functional>
#include <iterator>
#include <new>
#include <stdexcept>

namespace occams_rpc::metrics {

namespace detail {

/// A thread's cache of the cells it writes, for the last few registries it reported to.
struct cached_cells {
  std::uint64_t registry_id = 0;  // 0: empty (ids start at 1)
  thread_cells* cells = nullptr;
};
inline constexpr std::size_t cache_ways = 4;

OCCAMS_RPC_DECL cached_cells* thread_cache() noexcept {
  static thread_local cached_cells cache[cache_ways];
  return cache;
}
OCCAMS_RPC_DECL std::size_t& thread_cache_next() noexcept {
  static thread_local std::size_t next = 0;
  return next;
}

inline std::uint64_t next_registry_id() noexcept {
  static std::atomic<std::uint64_t> ids{0};
  return ids.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// One writer per cell: a plain load and store, no read-modify-write.
inline void bump(std::atomic<std::uint64_t>& a, std::uint64_t n = 1) noexcept {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

inline constexpr std::string_view outcome_names[outcome_count] = {
    "ok",          "error",   "timeout",         "method_not_found", "service_not_found",
    "encode",      "decode",  "internal",        "invalid_version",  "unreachable",
    "io_err",      "closed",  "cancelled",       "overloaded",       "other_error"};

inline std::size_t outcome_index(const std::error_code& ec) noexcept {
  if (!ec) return 0;
  if (ec.category() == remote_category()) return 1;
  if (ec.category() != rpc_category()) return outcome_count - 1;
  switch (static_cast<errc>(ec.value())) {
    case errc::remote_error: return 1;
    case errc::timeout: return 2;
    case errc::method_not_found: return 3;
    case errc::service_not_found: return 4;
    case errc::encode: return 5;
    case errc::decode: return 6;
    case errc::internal: return 7;
    case errc::invalid_version: return 8;
    case errc::unreachable: return 9;
    case errc::io_err: return 10;
    case errc::closed: return 11;
    case errc::cancelled: return 12;
    case errc::overloaded: return 13;
    default: return outcome_count - 1;
  }
}

inline std::size_t bucket_index(std::uint64_t ns) noexcept {
  std::size_t i = 0;
  while (i < std::size(bucket_bounds_ns) && ns > bucket_bounds_ns[i]) ++i;
  return i;
}

inline std::size_t hash_number(std::uint32_t n) noexcept { return static_cast<std::size_t>(n) * 0x9E3779B97F4A7C15ull >> 17; }

/// A label value: printable ASCII, with `"` and `\` escaped; other bytes become '?'.
inline void append_label_value(std::string& out, std::string_view v) {
  for (unsigned char ch : v) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20 || ch > 0x7e) {
      out += '?';
    } else {
      out += static_cast<char>(ch);
    }
  }
}

/// One series' figures summed over the threads.
struct summed_side {
  std::uint64_t started = 0, request_bytes = 0, response_bytes = 0, duration_ns = 0;
  std::uint64_t outcomes[outcome_count]{};
  std::uint64_t buckets[bucket_count]{};
  std::uint64_t completed() const noexcept {
    std::uint64_t n = 0;
    for (auto o : outcomes) n += o;
    return n;
  }
  bool empty() const noexcept { return started == 0 && completed() == 0; }
};

inline void add(summed_side& to, const side_cells& c) noexcept {
  constexpr auto r = std::memory_order_relaxed;
  to.started += c.started.load(r);
  to.request_bytes += c.request_bytes.load(r);
  to.response_bytes += c.response_bytes.load(r);
  to.duration_ns += c.duration_ns.load(r);
  for (std::size_t i = 0; i < outcome_count; ++i) to.outcomes[i] += c.outcomes[i].load(r);
  for (std::size_t i = 0; i < bucket_count; ++i) to.buckets[i] += c.buckets[i].load(r);
}

inline constexpr std::string_view side_names[2] = {"server", "client"};

inline void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace detail

OCCAMS_RPC_DECL std::optional<std::string> registry_config::problem() const {
  if (max_methods < 1 || max_methods > (1u << 16)) return "registry_config::max_methods must be 1..65536";
  if (max_numeric_actions < 1 || max_numeric_actions > (1u << 16))
    return "registry_config::max_numeric_actions must be 1..65536";
  if (max_name_length < 1 || max_name_length > 65535) return "registry_config::max_name_length must be 1..65535";
  return std::nullopt;
}

OCCAMS_RPC_DECL registry::registry(registry_config cfg)
    : cfg_(std::move(cfg)),
      id_(detail::next_registry_id()),
      capacity_(first_free + cfg_.max_methods + cfg_.max_numeric_actions),
      mask_(std::bit_ceil(2 * std::max(cfg_.max_methods, cfg_.max_numeric_actions)) - 1),
      names_(new std::atomic<const detail::series_key*>[mask_ + 1]),
      numbers_(new std::atomic<const detail::series_key*>[mask_ + 1]),
      spare_(capacity_) {
  if (auto p = cfg_.problem()) throw std::invalid_argument(*p);
  for (std::size_t i = 0; i <= mask_; ++i) {
    names_[i].store(nullptr, std::memory_order_relaxed);
    numbers_[i].store(nullptr, std::memory_order_relaxed);
  }
  keys_.push_back({"other", 0, false, other_method, R"(method="other")"});
  keys_.push_back({"unknown", 0, false, unknown_method, R"(method="unknown")"});
  keys_.push_back({{}, 0, true, other_action, R"(action="other")"});
}

OCCAMS_RPC_DECL registry::~registry() = default;

OCCAMS_RPC_DECL detail::thread_cells& registry::cells() noexcept {
  detail::cached_cells* cache = detail::thread_cache();
  for (std::size_t i = 0; i < detail::cache_ways; ++i)
    if (cache[i].registry_id == id_) return *cache[i].cells;
  return cells_slow();
}

/// The first report of this thread (or one evicted from its cache): under the lock.
OCCAMS_RPC_DECL detail::thread_cells& registry::cells_slow() noexcept {
  detail::thread_cells* mine = nullptr;
  try {
    std::lock_guard lock(mutex_);
    auto me = std::this_thread::get_id();
    for (auto& [id, c] : threads_)
      if (id == me) mine = c.get();
    if (!mine) {
      threads_.emplace_back(me, std::make_unique<detail::thread_cells>(capacity_));
      mine = threads_.back().second.get();
    }
  } catch (...) {  // out of memory: shared cells, whose counts may then lose increments
    return spare_;
  }
  std::size_t& next = detail::thread_cache_next();
  detail::thread_cache()[next % detail::cache_ways] = {id_, mine};
  ++next;
  return *mine;
}

OCCAMS_RPC_DECL std::uint32_t registry::series_of(const call_info& c) noexcept {
  if (c.action.empty()) {
    for (std::size_t h = detail::hash_number(c.numeric_action) & mask_;; h = (h + 1) & mask_) {
      const detail::series_key* k = numbers_[h].load(std::memory_order_acquire);
      if (!k) break;
      if (k->number == c.numeric_action) return k->index;
    }
    return learn({}, c.numeric_action, true);
  }
  for (std::size_t h = std::hash<std::string_view>{}(c.action) & mask_;; h = (h + 1) & mask_) {
    const detail::series_key* k = names_[h].load(std::memory_order_acquire);
    if (!k) break;
    if (k->name == c.action) return k->index;
  }
  return learn(c.action, 0, false);
}

/// A name or number without a series yet: folded at once when the set is closed or full;
/// else given a series under the lock.
OCCAMS_RPC_DECL std::uint32_t registry::learn(std::string_view name, std::uint32_t number, bool numeric) noexcept {
  if (numeric ? numbers_full_.load(std::memory_order_relaxed) : names_full_.load(std::memory_order_relaxed))
    return numeric ? other_action : other_method;
  if (!numeric && closed_.load(std::memory_order_relaxed)) return unknown_method;
  if (!numeric && name.size() > cfg_.max_name_length) return other_method;
  try {
    std::lock_guard lock(mutex_);
    if (!numeric && closed_.load(std::memory_order_relaxed)) return unknown_method;
    if (const detail::series_key* k = insert_locked(name, number, numeric)) return k->index;
  } catch (...) {  // out of memory: counted as "other"
  }
  return numeric ? other_action : other_method;
}

/// Finds or adds a series (under the lock); null when the bound is reached (then logged once).
OCCAMS_RPC_DECL const detail::series_key* registry::insert_locked(std::string_view name, std::uint32_t number,
                                                                  bool numeric) {
  auto& table = numeric ? numbers_ : names_;
  std::size_t h = (numeric ? detail::hash_number(number) : std::hash<std::string_view>{}(name)) & mask_;
  for (;; h = (h + 1) & mask_) {
    const detail::series_key* k = table[h].load(std::memory_order_relaxed);
    if (!k) break;
    if (numeric ? k->number == number : k->name == name) return k;
  }
  std::size_t& count = numeric ? number_count_ : method_count_;
  std::size_t bound = numeric ? cfg_.max_numeric_actions : cfg_.max_methods;
  if (count == bound) {
    auto& full = numeric ? numbers_full_ : names_full_;
    if (!full.exchange(true))
      cfg_.log.warn("metrics: {} {} have series of their own (the bound): further ones count as {}=\"other\"", bound,
                    numeric ? "numeric actions" : "method names", numeric ? "action" : "method");
    return nullptr;
  }
  detail::series_key key;
  key.numeric = numeric;
  key.number = number;
  key.index = static_cast<std::uint32_t>(keys_.size());
  if (numeric) {
    key.labels = fmt::format("action=\"{}\"", number);
  } else {
    key.name = std::string(name);
    key.labels = "method=\"";
    detail::append_label_value(key.labels, name);
    key.labels += '"';
  }
  keys_.push_back(std::move(key));
  ++count;
  table[h].store(&keys_.back(), std::memory_order_release);
  return &keys_.back();
}

OCCAMS_RPC_DECL void registry::declare_method(std::string_view action) {
  std::lock_guard lock(mutex_);
  closed_.store(true, std::memory_order_relaxed);
  if (action.size() > cfg_.max_name_length)
    throw std::length_error(fmt::format("metrics: method name longer than max_name_length ({})", cfg_.max_name_length));
  if (!insert_locked(action, 0, false))
    throw std::length_error(fmt::format("metrics: more than max_methods ({}) methods declared", cfg_.max_methods));
}

OCCAMS_RPC_DECL detail::side_cells& registry::side_of(const call_info& c) noexcept {
  std::uint32_t s = series_of(c);
  detail::thread_cells& t = cells();
  detail::series_cells* block = t.series[s].load(std::memory_order_relaxed);
  if (!block) {  // this thread's first report of this series
    block = new (std::nothrow) detail::series_cells{};
    if (!block) {
      static detail::series_cells lost;  // out of memory: these counts are lost
      return lost.side[static_cast<std::size_t>(c.side)];
    }
    t.series[s].store(block, std::memory_order_release);
  }
  return block->side[static_cast<std::size_t>(c.side)];
}

OCCAMS_RPC_DECL void registry::on_call_start(const call_info& c) noexcept { detail::bump(side_of(c).started); }

OCCAMS_RPC_DECL void registry::on_call_end(const call_info& c) noexcept {
  detail::side_cells& s = side_of(c);
  detail::bump(s.outcomes[detail::outcome_index(c.outcome)]);
  detail::bump(s.request_bytes, c.request_bytes);
  detail::bump(s.response_bytes, c.response_bytes);
  auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(c.duration.count(), 0));
  detail::bump(s.buckets[detail::bucket_index(ns)]);
  detail::bump(s.duration_ns, ns);
}

OCCAMS_RPC_DECL void registry::on_event(call_side side, observer_event e) noexcept {
  detail::bump(cells().events[static_cast<std::size_t>(side)][static_cast<std::size_t>(e)]);
}

OCCAMS_RPC_DECL std::string registry::scrape() const {
  std::string out;
  scrape(out);
  return out;
}

OCCAMS_RPC_DECL void registry::scrape(std::string& out) const {
  using detail::family;
  using detail::side_names;
  auto to = std::back_inserter(out);
  std::vector<detail::series_key> keys;
  std::vector<std::array<detail::summed_side, 2>> sums;
  std::uint64_t events[2][observer_event_count]{};
  {
    std::lock_guard lock(mutex_);
    keys.assign(keys_.begin(), keys_.end());
    sums.resize(keys.size());
    auto add_thread = [&](const detail::thread_cells& t) {
      for (std::size_t i = 0; i < keys.size(); ++i)
        if (const detail::series_cells* b = t.series[i].load(std::memory_order_acquire))
          for (int s = 0; s < 2; ++s) detail::add(sums[i][s], b->side[s]);
      for (int s = 0; s < 2; ++s)
        for (std::size_t e = 0; e < observer_event_count; ++e)
          events[s][e] += t.events[s][e].load(std::memory_order_relaxed);
    };
    for (const auto& [id, t] : threads_) add_thread(*t);
    add_thread(spare_);
  }
  auto each = [&](auto&& fn) {
    for (std::size_t i = 0; i < keys.size(); ++i)
      for (int s = 0; s < 2; ++s)
        if (!sums[i][s].empty()) fn(keys[i].labels, side_names[s], sums[i][s]);
  };

  family(out, "occams_rpc_calls_started_total", "counter",
         "Calls started (server: handed to the dispatch; client: given a seq), by side and method or numeric action.");
  each([&](const std::string& l, std::string_view side, const detail::summed_side& v) {
    fmt::format_to(to, "occams_rpc_calls_started_total{{side=\"{}\",{}}} {}\n", side, l, v.started);
  });
  family(out, "occams_rpc_calls_completed_total", "counter",
         "Calls completed, by side, method or numeric action, and outcome (ok, error: the method's own, or the "
         "framework error).");
  each([&](const std::string& l, std::string_view side, const detail::summed_side& v) {
    for (std::size_t o = 0; o < detail::outcome_count; ++o)
      if (v.outcomes[o] != 0)
        fmt::format_to(to, "occams_rpc_calls_completed_total{{side=\"{}\",{},outcome=\"{}\"}} {}\n", side, l,
                       detail::outcome_names[o], v.outcomes[o]);
  });
  family(out, "occams_rpc_request_bytes_total", "counter",
         "Bytes of the request frames of completed calls, headers included (server: in; client: out).");
  each([&](const std::string& l, std::string_view side, const detail::summed_side& v) {
    fmt::format_to(to, "occams_rpc_request_bytes_total{{side=\"{}\",{}}} {}\n", side, l, v.request_bytes);
  });
  family(out, "occams_rpc_response_bytes_total", "counter",
         "Bytes of the response frames of completed calls, headers included (server: out; client: in).");
  each([&](const std::string& l, std::string_view side, const detail::summed_side& v) {
    fmt::format_to(to, "occams_rpc_response_bytes_total{{side=\"{}\",{}}} {}\n", side, l, v.response_bytes);
  });
  family(out, "occams_rpc_call_duration_seconds", "histogram",
         "Call latency (server: request read to answer queued; client: call made to completion).");
  each([&](const std::string& l, std::string_view side, const detail::summed_side& v) {
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < detail::bucket_count; ++b) {
      cumulative += v.buckets[b];
      if (b + 1 < detail::bucket_count)
        fmt::format_to(to, "occams_rpc_call_duration_seconds_bucket{{side=\"{}\",{},le=\"{}\"}} {}\n", side, l,
                       static_cast<double>(detail::bucket_bounds_ns[b]) / 1e9, cumulative);
      else
        fmt::format_to(to, "occams_rpc_call_duration_seconds_bucket{{side=\"{}\",{},le=\"+Inf\"}} {}\n", side, l,
                       cumulative);
    }
    fmt::format_to(to, "occams_rpc_call_duration_seconds_sum{{side=\"{}\",{}}} {}\n", side, l,
                   static_cast<double>(v.duration_ns) / 1e9);
    fmt::format_to(to, "occams_rpc_call_duration_seconds_count{{side=\"{}\",{}}} {}\n", side, l, cumulative);
  });

  std::int64_t in_flight[2]{};
  for (auto& s : sums)
    for (int i = 0; i < 2; ++i) in_flight[i] += static_cast<std::int64_t>(s[i].started - s[i].completed());
  family(out, "occams_rpc_calls_in_flight", "gauge", "Calls started and not completed yet.");
  for (int s = 0; s < 2; ++s)
    fmt::format_to(to, "occams_rpc_calls_in_flight{{side=\"{}\"}} {}\n", side_names[s], std::max<std::int64_t>(in_flight[s], 0));

  auto ev = [&](call_side s, observer_event e) { return events[static_cast<int>(s)][static_cast<int>(e)]; };
  auto server_counter = [&](std::string_view name, std::string_view help, observer_event e) {
    family(out, name, "counter", help);
    fmt::format_to(to, "{} {}\n", name, ev(call_side::server, e));
  };
  server_counter("occams_rpc_server_connections_opened_total", "Server connections started (after their start step).",
                 observer_event::connection_opened);
  server_counter("occams_rpc_server_connections_closed_total", "Started server connections closed.",
                 observer_event::connection_closed);
  family(out, "occams_rpc_server_connections_open", "gauge", "Server connections open now.");
  fmt::format_to(to, "occams_rpc_server_connections_open {}\n",
                 std::max<std::int64_t>(static_cast<std::int64_t>(ev(call_side::server, observer_event::connection_opened) -
                                                                  ev(call_side::server, observer_event::connection_closed)),
                                        0));
  server_counter("occams_rpc_server_connections_rejected_total",
                 "Accepted connections whose start step (TLS handshake) failed or timed out.",
                 observer_event::connection_rejected);
  server_counter("occams_rpc_server_budget_waits_total",
                 "Times a connection stopped reading to wait for the server's memory budget.",
                 observer_event::budget_wait);
  family(out, "occams_rpc_client_window_waits_total", "counter", "Client calls that waited for a window slot.");
  fmt::format_to(to, "occams_rpc_client_window_waits_total {}\n", ev(call_side::client, observer_event::window_wait));
  family(out, "occams_rpc_client_reconnects_total", "counter",
         "client_pool connections made again after one was lost.");
  fmt::format_to(to, "occams_rpc_client_reconnects_total {}\n", ev(call_side::client, observer_event::reconnect));
}

}  // namespace occams_rpc::metrics
