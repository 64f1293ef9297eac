#pragma once

#include <occams_rpc/core/config.hpp>

#include <fmt/format.h>

namespace occams_rpc {
namespace detail {
// The smallest frame is a 32-byte request header; anything below cannot carry a request.
inline constexpr std::size_t min_frame_limit = 64;
inline constexpr std::size_t max_frame_limit = std::size_t{1} << 32;
inline constexpr std::size_t max_waiting_limit = std::size_t{1} << 20;
}  // namespace detail

OCCAMS_RPC_DECL std::optional<std::string> client_config::problem() const {
  using namespace std::chrono_literals;  // here only: config.hpp keeps them out of occams_rpc
  if (window == 0 || window > 65536) return fmt::format("client_config.window must be in 1..65536, not {}", window);
  if (call_timeout <= 0ms) return "client_config.call_timeout must be positive";
  if (timeout_tick <= 0ms) return "client_config.timeout_tick must be positive";
  if (connect_timeout <= 0ms) return "client_config.connect_timeout must be positive";
  if (write_timeout <= 0ms) return "client_config.write_timeout must be positive";
  if (read_timeout <= 0ms) return "client_config.read_timeout must be positive";
  if (buffer_size < 512) return fmt::format("client_config.buffer_size must be at least 512, not {}", buffer_size);
  if (max_frame_size < detail::min_frame_limit || max_frame_size > detail::max_frame_limit)
    return fmt::format("client_config.max_frame_size must be in 64..4 GiB, not {}", max_frame_size);
  return std::nullopt;
}

OCCAMS_RPC_DECL std::optional<std::string> server_config::problem() const {
  using namespace std::chrono_literals;  // here only: config.hpp keeps them out of occams_rpc
  if (idle_timeout <= 0ms) return "server_config.idle_timeout must be positive";
  if (close_wait < 0ms) return "server_config.close_wait must not be negative";
  if (write_timeout <= 0ms) return "server_config.write_timeout must be positive";
  if (read_timeout <= 0ms) return "server_config.read_timeout must be positive";
  if (handshake_timeout <= 0ms) return "server_config.handshake_timeout must be positive";
  if (timer_tick <= 0ms) return "server_config.timer_tick must be positive";
  if (max_inflight == 0) return "server_config.max_inflight must be at least 1";
  if (buffer_size < 512) return fmt::format("server_config.buffer_size must be at least 512, not {}", buffer_size);
  if (max_pending_write < buffer_size) return "server_config.max_pending_write must be at least buffer_size";
  if (max_frame_size < detail::min_frame_limit || max_frame_size > detail::max_frame_limit)
    return fmt::format("server_config.max_frame_size must be in 64..4 GiB, not {}", max_frame_size);
  if (max_buffered_bytes != 0 && max_buffered_bytes < max_frame_size)
    return fmt::format("server_config.max_buffered_bytes ({}) must be 0 (unlimited) or at least max_frame_size ({})",
                       max_buffered_bytes, max_frame_size);
  return std::nullopt;
}

OCCAMS_RPC_DECL std::optional<std::string> pool_config::problem() const {
  using namespace std::chrono_literals;  // here only: config.hpp keeps them out of occams_rpc
  if (connections == 0 || connections > 1024)
    return fmt::format("pool_config.connections must be in 1..1024, not {}", connections);
  if (health_check_period <= 0ms) return "pool_config.health_check_period must be positive";
  if (reconnect_backoff <= 0ms) return "pool_config.reconnect_backoff must be positive";
  if (reconnect_backoff_max < reconnect_backoff) return "pool_config.reconnect_backoff_max must be at least reconnect_backoff";
  // 0 would refuse every call made while no connection is up, which wait_for_connection = false
  // already says; past the limit the bound stops bounding memory.
  if (wait_for_connection && (max_waiting == 0 || max_waiting > detail::max_waiting_limit))
    return fmt::format("pool_config.max_waiting must be in 1..{} (or set wait_for_connection = false), not {}",
                       detail::max_waiting_limit, max_waiting);
  return std::nullopt;
}

OCCAMS_RPC_DECL std::optional<std::string> failover_config::problem() const {
  using namespace std::chrono_literals;  // here only: config.hpp keeps them out of occams_rpc
  if (retry_limit > 64) return fmt::format("failover_config.retry_limit must be at most 64, not {}", retry_limit);
  if (!(hash_load_factor >= 1.0)) return fmt::format("failover_config.hash_load_factor must be at least 1, not {}", hash_load_factor);
  if (hash_points == 0 || hash_points > 1000)
    return fmt::format("failover_config.hash_points must be in 1..1000, not {}", hash_points);
  if (max_redirects > 64) return fmt::format("failover_config.max_redirects must be at most 64, not {}", max_redirects);
  if (max_redirect_addresses > 64)
    return fmt::format("failover_config.max_redirect_addresses must be at most 64, not {}", max_redirect_addresses);
  if (outlier.failure_rate_percent > 100)
    return fmt::format("failover_config.outlier.failure_rate_percent must be in 0..100, not {}", outlier.failure_rate_percent);
  if (outlier.max_ejection_percent > 100)
    return fmt::format("failover_config.outlier.max_ejection_percent must be in 0..100, not {}", outlier.max_ejection_percent);
  if (outlier.interval <= 0ms) return "failover_config.outlier.interval must be positive";
  if (outlier.base_ejection_time <= 0ms) return "failover_config.outlier.base_ejection_time must be positive";
  if (outlier.max_ejection_time < outlier.base_ejection_time)
    return "failover_config.outlier.max_ejection_time must be at least base_ejection_time";
  return pool.problem();
}

}  // namespace occams_rpc
