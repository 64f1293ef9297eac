// 01_echo_server: the smallest stream-layer server.
//
// Shows a server with an inline dispatch (a plain callable taking a server_request), listening
// on one TCP or Unix-domain address, and a graceful shutdown on SIGINT/SIGTERM with
// async_shutdown. Action 1 echoes the request's msg and blob; any other action is answered
// rpc_method_notfound. Pings are answered by the server itself: they never reach the dispatch.
//
//   01_echo_server [--listen ADDR]
//
// ADDR is "host:port", "[v6]:port", "/path" or "unix:/path" (default 127.0.0.1:0, a free port).
// Prints exactly one line to stdout, "listening on <address>", with the real address (so a
// script can read the port), then serves until it gets SIGINT or SIGTERM.

#include <occams_rpc.hpp>

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

namespace {

constexpr auto tok = asio::as_tuple(asio::deferred);  // co_await gives (error_code, ...) tuples

/// The dispatch: cheap, so it runs inline in the connection's reader (void(server_request)).
/// A request must be answered exactly once; one dropped unanswered gets rpc_internal_err.
struct echo_dispatch {
  void operator()(server_request req) const {
    if (!req.has_string_action() && req.numeric_action() == 1)
      req.respond(req.msg(), req.blob());  // both are copied into the response
    else
      req.respond_error(errc::method_not_found);
  }
};

void usage(std::FILE* to) {
  fmt::print(to, "usage: 01_echo_server [--listen ADDR]\n"
                 "  ADDR: host:port, [v6]:port, /path or unix:/path (default 127.0.0.1:0)\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_on = "127.0.0.1:0";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      listen_on = argv[++i];
    } else if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  address where;
  if (parse_address(listen_on, where)) {
    fmt::print(stderr, "01_echo_server: invalid address '{}'\n", listen_on);
    return 2;
  }

  try {
    // One thread runs the io_context: the server's executor must be serial.
    asio::io_context io(1);
    server srv(io.get_executor(), echo_dispatch{}, server_config{}, logger::to_stderr(log_level::warn));
    address local = srv.listen(where);  // throws if the address cannot be bound
    fmt::print("listening on {}\n", local.to_string());
    std::fflush(stdout);

    // Serve until a signal, then shut down gracefully: stop accepting, answer what was
    // already read, close the connections. io.run() returns once nothing is left to do.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto [ec, signo] = co_await signals.async_wait(tok);
          if (ec) co_return;
          fmt::print(stderr, "01_echo_server: signal {}: shutting down\n", signo);
          auto [sec] = co_await srv.async_shutdown(tok);
          if (sec) fmt::print(stderr, "01_echo_server: shutdown: {}\n", sec.message());
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);  // escapes io.run(), caught below
        });
    io.run();
  } catch (const std::exception& e) {
    fmt::print(stderr, "01_echo_server: {}\n", e.what());
    return 1;
  }
  return 0;
}
