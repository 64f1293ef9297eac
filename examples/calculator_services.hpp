// The calculator example's services, described once: calculator_server implements them,
// calculator_client calls them, and any client speaking the protocol (the Rust occams-rpc
// included) can call them by their action strings "CalService.add", "EchoService.repeat"...
#pragma once

#include <occams_rpc.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>
#include <system_error>

OCCAMS_RPC_SERVICE(CalService,
    (inc, std::int64_t(std::int64_t)),                      // n + 1
    (add, std::int64_t(std::int64_t, std::int64_t)),        // a + b
    (div, std::int64_t(std::int64_t, std::int64_t), std::string));  // "divide by zero" when b == 0

OCCAMS_RPC_SERVICE(EchoService,
    (repeat, std::string(std::string)),                     // the same string back
    (io_error, void(std::string), std::errc));              // always fails with EIO (5)

/// The calculator's implementations (used by calculator_server and the tests).
struct calculator {
  std::int64_t inc(std::int64_t n) { return n + 1; }
  std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }
  occams_rpc::api::result<std::int64_t, std::string> div(std::int64_t a, std::int64_t b) {
    if (b == 0) return occams_rpc::api::fail(std::string("divide by zero"));
    if (b == -1) return std::int64_t(0 - static_cast<std::uint64_t>(a));  // wraps for INT64_MIN, no UB
    return a / b;
  }
};

struct echo {
  boost::asio::awaitable<std::string> repeat(std::string s) { co_return s; }
  occams_rpc::api::result<occams_rpc::unit, std::errc> io_error(std::string) {
    return occams_rpc::api::fail(std::errc::io_error);
  }
};
