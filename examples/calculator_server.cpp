// calculator_server: the typed API's server side (see calculator_services.hpp).
//
//   calculator_server [--listen ADDR]
//
// Serves CalService (inc, add, div) and EchoService (repeat, io_error) with one api::router.
// ADDR is "host:port", "[v6]:port", "/path" or "unix:/path" (default 127.0.0.1:0, a free
// port). Prints exactly one line to stdout, "listening on <address>", then serves until SIGINT
// or SIGTERM, and shuts down gracefully.

#include "calculator_services.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using namespace occams_rpc;

int main(int argc, char** argv) {
  std::string listen_on = "127.0.0.1:0";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      listen_on = argv[++i];
    } else {
      fmt::print(arg == "-h" || arg == "--help" ? stdout : stderr,
                 "usage: calculator_server [--listen ADDR]\n"
                 "  ADDR: host:port, [v6]:port, /path or unix:/path (default 127.0.0.1:0)\n");
      return arg == "-h" || arg == "--help" ? 0 : 2;
    }
  }
  address where;
  if (parse_address(listen_on, where)) {
    fmt::print(stderr, "calculator_server: invalid address '{}'\n", listen_on);
    return 2;
  }

  try {
    asio::io_context io(1);
    auto log = logger::to_stderr(log_level::warn);
    // One router serves both services; it routes "CalService.add" to calculator::add.
    api::router routes(log);
    routes.add<CalService>(calculator{}).add<EchoService>(echo{});
    server srv(io.get_executor(), std::move(routes), server_config{}, log);
    address local = srv.listen(where);
    fmt::print("listening on {}\n", local.to_string());
    std::fflush(stdout);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto [ec, signo] = co_await signals.async_wait(asio::as_tuple(asio::deferred));
          if (ec) co_return;
          fmt::print(stderr, "calculator_server: signal {}: shutting down\n", signo);
          co_await srv.async_shutdown(asio::as_tuple(asio::deferred));
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run();
  } catch (const std::exception& e) {
    fmt::print(stderr, "calculator_server: {}\n", e.what());
    return 1;
  }
  return 0;
}
