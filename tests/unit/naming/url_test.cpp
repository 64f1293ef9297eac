#include <occams_rpc/naming/endpoint_text.hpp>
#include <occams_rpc/naming/url.hpp>

#include <catch2/catch.hpp>

using namespace occams_rpc;
using namespace occams_rpc::naming;

namespace {
naming_url parse_ok(std::string_view text) {
  naming_url u;
  std::string why;
  INFO(text);
  REQUIRE_FALSE(parse_naming_url(text, u, why));
  return u;
}
std::string parse_fails(std::string_view text) {
  naming_url u;
  std::string why;
  INFO(text);
  REQUIRE(parse_naming_url(text, u, why) == errc::invalid_address);
  CHECK_FALSE(why.empty());
  return why;
}
}  // namespace

TEST_CASE("a bare address stays one fixed address", "[naming]") {
  auto u = parse_ok("127.0.0.1:4242");
  CHECK(u.type == naming_url::kind::address);
  REQUIRE(u.endpoints.size() == 1);
  CHECK(u.endpoints[0].where == address::tcp("127.0.0.1", 4242));
  CHECK(parse_ok("unix:/tmp/x.sock").endpoints[0].where == address::unix_socket("/tmp/x.sock"));
  CHECK_FALSE(is_naming_url("127.0.0.1:4242"));
}

TEST_CASE("list URLs give their addresses in order", "[naming]") {
  auto u = parse_ok("list://127.0.0.1:1,[::1]:2,unix:/tmp/s");
  CHECK(u.type == naming_url::kind::list);
  REQUIRE(u.endpoints.size() == 3);
  CHECK(u.endpoints[1].where == address::tcp("::1", 2));
  CHECK(u.endpoints[2].where == address::unix_socket("/tmp/s"));
  CHECK(is_naming_url("list://a:1"));
  parse_fails("list://");
  parse_fails("list://127.0.0.1:1,");
  parse_fails("list://127.0.0.1:1,,b:2");
  parse_fails("list://nohostport");
}

TEST_CASE("file and dns and etcd URLs are parsed into their parts", "[naming]") {
  auto f = parse_ok("file:///etc/calc.list");
  CHECK(f.type == naming_url::kind::file);
  CHECK(f.path == "/etc/calc.list");
  parse_fails("file://relative/path");

  auto d = parse_ok("dns://localhost:4242");
  CHECK(d.type == naming_url::kind::dns);
  CHECK(d.host == "localhost");
  CHECK(d.port == 4242);
  parse_fails("dns://localhost");
  parse_fails("dns://localhost:0");

  auto e = parse_ok("etcd://127.0.0.1:2379/services/calc");
  CHECK(e.type == naming_url::kind::etcd);
  CHECK(e.host == "127.0.0.1");
  CHECK(e.port == 2379);
  CHECK(e.prefix == "/services/calc/");  // the slash keeps /services/calculator out
  CHECK(parse_ok("etcd://[::1]:2379/a/b//").prefix == "/a/b/");
  parse_fails("etcd://127.0.0.1:2379");
  parse_fails("etcd://127.0.0.1:2379/");
  parse_fails("etcd://127.0.0.1/services");
  CHECK(parse_fails("zk://h:1/x").find("unknown scheme") != std::string::npos);
}

TEST_CASE("file lines give endpoints with weights and bad lines are skipped with their number", "[naming]") {
  std::vector<std::string> problems;
  auto eps = parse_endpoint_lines(
      "# calc servers\n"
      "127.0.0.1:1\n"
      "\n"
      "  127.0.0.1:2   3   # heavier\r\n"
      "bogus\n"
      "127.0.0.1:4 x\n"
      "127.0.0.1:5 0\n"
      "127.0.0.1:6 1 2\n"
      "[::1]:7 9999999\n"
      "unix:/tmp/s 2",
      problems);
  REQUIRE(eps.size() == 4);
  CHECK(eps[0] == endpoint{address::tcp("127.0.0.1", 1), 1});
  CHECK(eps[1] == endpoint{address::tcp("127.0.0.1", 2), 3});
  CHECK(eps[2] == endpoint{address::tcp("127.0.0.1", 5), 1});  // weight 0 becomes 1
  CHECK(eps[3] == endpoint{address::unix_socket("/tmp/s"), 2});
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].starts_with("line 5: bad address"));
  CHECK(problems[1].starts_with("line 6: bad weight"));
  CHECK(problems[2].starts_with("line 8: expected ADDRESS [WEIGHT]"));
  CHECK(problems[3].starts_with("line 9: bad weight"));
}

TEST_CASE("a snapshot is sorted without duplicate addresses and capped", "[naming]") {
  std::vector<endpoint> eps{{address::tcp("b", 2), 5}, {address::tcp("a", 1), 1}, {address::tcp("b", 2), 7},
                            {address::tcp("c", 3), 0}};
  CHECK(normalize_snapshot(eps, 10) == 0);
  REQUIRE(eps.size() == 3);
  CHECK(eps[0].where.host == "a");
  CHECK(eps[1] == endpoint{address::tcp("b", 2), 5});  // the first given wins
  CHECK(eps[2].weight == 1);
  CHECK(normalize_snapshot(eps, 2) == 1);
  CHECK(eps.size() == 2);
}
