#include <occams_rpc/core/error.hpp>

#include <catch2/catch.hpp>

#include <iterator>
#include <set>
#include <string>

using namespace occams_rpc;

TEST_CASE("every wire error converts to its exact rpc_ name and back", "[core]") {
  const std::pair<errc, std::string_view> names[] = {
      {errc::unreachable, "rpc_unreachable"},     {errc::io_err, "rpc_io_err"},
      {errc::timeout, "rpc_timeout"},             {errc::method_not_found, "rpc_method_notfound"},
      {errc::service_not_found, "rpc_service_notfound"}, {errc::encode, "rpc_encode"},
      {errc::decode, "rpc_decode"},               {errc::internal, "rpc_internal_err"},
      {errc::invalid_version, "rpc_invalid_ver"}};
  for (auto [e, name] : names) {
    CHECK(to_wire_string(e) == name);
    CHECK(from_wire_string(name) == e);
  }
}

TEST_CASE("only unreachable, io_err and timeout are retriable", "[core]") {
  CHECK(is_retriable(errc::unreachable));
  CHECK(is_retriable(errc::io_err));
  CHECK(is_retriable(errc::timeout));
  CHECK_FALSE(is_retriable(errc::decode));
  CHECK_FALSE(is_retriable(errc::closed));
  CHECK(is_retriable(make_error_code(errc::timeout)));
  CHECK_FALSE(is_retriable(std::make_error_code(std::errc::timed_out)));
}

TEST_CASE("a user string is not mistaken for a framework error", "[core]") {
  CHECK_FALSE(from_wire_string("divide by zero"));
  CHECK_FALSE(from_wire_string("rpc_something_else"));
  CHECK(to_wire_string(errc::frame_too_large).empty());
}

TEST_CASE("local errors map to a wire error for answering peers", "[core]") {
  CHECK(to_wire_error(errc::timeout) == errc::timeout);
  CHECK(to_wire_error(errc::bad_version) == errc::invalid_version);
  CHECK(to_wire_error(std::make_error_code(std::errc::io_error)) == errc::internal);
  CHECK(make_error_code(errc::closed).message() == "connection closed");
  CHECK(std::string(rpc_category().name()) == "occams_rpc");
}

TEST_CASE("every TLS error is a TLS error with a message of its own, and none is retriable", "[core][tls]") {
  const errc tls[] = {errc::tls_untrusted_certificate,      errc::tls_certificate_expired,
                      errc::tls_hostname_mismatch,          errc::tls_missing_client_certificate,
                      errc::tls_plaintext_peer,             errc::tls_not_tls_server,
                      errc::tls_handshake_failed,           errc::tls_certificate_refused};
  std::set<std::string> messages;
  for (errc e : tls) {
    CHECK(is_tls_error(e));
    CHECK_FALSE(is_retriable(make_error_code(e)));
    CHECK_FALSE(is_wire_error(e));
    messages.insert(make_error_code(e).message());
  }
  CHECK(messages.size() == std::size(tls));
  CHECK_FALSE(is_tls_error(errc::remote_error));
  CHECK_FALSE(is_tls_error(static_cast<errc>(static_cast<int>(errc::tls_certificate_refused) + 1)));
}
