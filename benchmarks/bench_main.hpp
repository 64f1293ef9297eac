// The main() shared by occams_bench and raw_bench: parse the flags, refuse what is not built,
// run the server or the client, turn exceptions into a message and a non-zero exit.
#pragma once

#include "bench_options.hpp"

#include <boost/system/system_error.hpp>

#include <exception>
#include <string_view>

#include <fmt/format.h>

namespace bench {

/// `no_api`: why this binary cannot run `client --api` (empty once it can).
template <class Server, class Client>
int bench_main(int argc, char** argv, std::string_view prog, std::string_view no_api, Server run_server,
               Client run_client) {
  if (argc >= 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help")) {
    usage(stdout, prog);
    return exit_ok;
  }
  auto opt = parse_options(argc, argv, prog);
  if (!opt) return exit_usage;
  if (opt->role == mode::client && opt->threads > opt->connections) {
    fmt::print(stderr, "{}: client --threads {}: more threads than --connections {}\n", prog, opt->threads,
               opt->connections);
    return exit_usage;
  }
  if (opt->role == mode::client && opt->pool && (opt->api || !no_api.empty())) {
    fmt::print(stderr, "{}: --pool: occams_bench only, without --api\n", prog);
    return exit_usage;
  }
  if (opt->role == mode::client && opt->api && !no_api.empty()) {
    fmt::print(stderr, "{}: --api: {}\n", prog, no_api);
    return exit_usage;
  }
  try {
    return opt->role == mode::server ? run_server(*opt) : run_client(*opt);
  } catch (const boost::system::system_error& e) {  // its what() carries a source location
    fmt::print(stderr, "{}: {}\n", prog, e.code().message());
    return exit_failed;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: {}\n", prog, e.what());
    return exit_failed;
  }
}

}  // namespace bench
