// Certificates for the TLS tests, made at test time by tls_make_certs.sh (Debian's `openssl`
// command) into a temporary directory: nothing secret or expiring is committed.
#pragma once

#include <occams_rpc/transport/tls_transport.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace test {

class tls_certs {
 public:
  /// Made once per test run; the directory is removed at exit.
  static const tls_certs& get() {
    static const tls_certs certs;
    return certs;
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  occams_rpc::tls_pem pem(const std::string& name) const { return occams_rpc::tls_pem::from_file(path(name)); }

  /// A server with the certificate `name` (server, expired, other_name, rogue_server).
  occams_rpc::tls_server_options server(const std::string& name = "server", bool mutual = false) const {
    occams_rpc::tls_server_options o{.certificate_chain = pem(name + ".pem"), .private_key = pem(name + ".key")};
    if (mutual) o.client_ca = pem("ca.pem");
    return o;
  }
  /// A client trusting the test CA, with the client certificate when `with_certificate`.
  occams_rpc::tls_client_options client(bool with_certificate = false) const {
    occams_rpc::tls_client_options o{.ca = pem("ca.pem")};
    if (with_certificate) {
      o.certificate_chain = pem("client.pem");
      o.private_key = pem("client.key");
    }
    return o;
  }

  tls_certs(const tls_certs&) = delete;
  ~tls_certs() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

 private:
  tls_certs() {
    char tmpl[] = "/tmp/occams-rpc-tls-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    std::string cmd = "sh '" OCCAMS_RPC_TLS_MAKE_CERTS "' '" + dir_ + "' > '" + dir_ + "/openssl.log' 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::stringstream log;
      log << std::ifstream(dir_ + "/openssl.log").rdbuf();
      FAIL("openssl could not make the test certificates:\n" << log.str());
    }
  }

  std::string dir_;
};

}  // namespace test
