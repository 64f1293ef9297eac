// A consumer of the installed package's TLS target: builds a client transport (its
// ssl::context, trusting the system's store) and refuses a server without a certificate.
#include <occams_rpc/transport/tls_transport.hpp>

#include <cstdio>
#include <system_error>

int main() {
  auto client = occams_rpc::tls_transport::client({});
  bool refused = false;
  try {
    occams_rpc::tls_transport::server({});
  } catch (const std::system_error& e) {
    refused = e.code() == occams_rpc::errc::invalid_config;
  }
  bool ok = refused && client.context().native_handle() != nullptr;
  std::puts(ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
