// metrics::exporter: serves a registry's Prometheus text exposition (format 0.0.4) over HTTP
// with Boost.Beast: `GET /metrics` answers 200, any other path 404, any other method 405.
//
//   metrics::exporter http(io.get_executor(), metrics);          // your executor
//   auto where = http.listen(parse_address("127.0.0.1:9464"));   // port 0: a free port
//
// A scrape sums the registry's cells on the exporter's executor: give it one that is not an
// RPC connection's (a thread of its own, or a quiet one) so that building the text never
// delays calls. The executor must run its handlers one at a time (an io_context run by one
// thread, or a strand). Each answer closes its connection (Connection: close).
//
// The exporter is a server: against hostile or broken HTTP peers (docs/observability.md,
// "The endpoint and its limits"), each limit in exporter_config below says what the peer sees;
// every closed request is logged at debug level with its reason (a flood of bad peers cannot
// flood the log), the first refused connection of each second at warn.
#pragma once

#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/metrics/registry.hpp>
#include <occams_rpc/transport/address.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace occams_rpc::metrics {

struct exporter_config {
  /// Scrape connections open at once; a further one is closed as soon as it is accepted
  /// (the peer sees its connection closed without an answer; warn, at most once a second).
  std::size_t max_connections = 8;
  /// The whole request must arrive within this after the connection is accepted, and the
  /// answer must be written within it too; else the connection is closed (debug).
  std::chrono::milliseconds timeout = std::chrono::seconds{5};
  /// Largest request header (request line and fields). A larger one is answered 431 and the
  /// connection closed (debug). A request with a body is answered 400 (scrapes have none).
  std::size_t max_header_bytes = 8 * 1024;
  logger log;

  /// Why this configuration is invalid, or nothing if it is valid.
  OCCAMS_RPC_DECL std::optional<std::string> problem() const;
};

class exporter {
 public:
  /// Throws std::invalid_argument if `cfg` is invalid. `r` must outlive the exporter.
  OCCAMS_RPC_DECL exporter(boost::asio::any_io_executor ex, const registry& r, exporter_config cfg = {});
  /// Closes (see close()).
  OCCAMS_RPC_DECL ~exporter();
  exporter(const exporter&) = delete;
  exporter& operator=(const exporter&) = delete;

  /// Listens on a TCP address (host:port; port 0 picks a free one) and starts accepting.
  /// Returns the address listened on. Throws std::system_error if it cannot listen.
  OCCAMS_RPC_DECL address listen(const address& where);

  /// Stops accepting and closes the open scrape connections (on the executor). The registry is
  /// not touched after close() returns, once the executor has run what is queued.
  OCCAMS_RPC_DECL void close();

  /// Scrape connections open now (read on the executor's thread, or after it stopped).
  OCCAMS_RPC_DECL std::size_t connection_count() const noexcept;

  struct state;

 private:
  std::shared_ptr<state> st_;
};

}  // namespace occams_rpc::metrics

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/metrics/impl/exporter.ipp>
#endif
