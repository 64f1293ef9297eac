// etcd's own JSON (captured from etcd 3.4.23's gateway) through the sans-io codec.
#include <occams_rpc/naming/detail/base64.hpp>
#include <occams_rpc/naming/etcd_json.hpp>
#include <occams_rpc/naming/etcd_view.hpp>

#include <boost/json/parse.hpp>

#include <catch2/catch.hpp>

using namespace occams_rpc;
using namespace occams_rpc::naming;
using naming::detail::base64_decode;
using naming::detail::base64_encode;

namespace {
std::string b64(std::string_view s) { return base64_encode(s); }
std::string hdr(int rev) {
  return R"("header":{"cluster_id":"15118495548433857066","member_id":"1","revision":")" + std::to_string(rev) +
         R"(","raft_term":"2"})";
}
std::string kv_json(std::string_view key, std::string_view value, int rev) {
  return R"({"key":")" + b64(key) + R"(","create_revision":"2","mod_revision":")" + std::to_string(rev) +
         R"(","version":"1","value":")" + b64(value) + R"("})";
}
etcd::watch_message watch(const std::string& json) {
  etcd::watch_message m;
  std::string why;
  INFO(json);
  REQUIRE(etcd::parse_watch_message(json, m, why));
  return m;
}
}  // namespace

TEST_CASE("base64 round-trips every length and refuses what is not base64", "[naming]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n < 10; ++n) CHECK(base64_decode(base64_encode(all.substr(0, n))) == all.substr(0, n));
  CHECK(base64_decode(base64_encode(all)) == all);
  CHECK(base64_encode("/s/c/a") == "L3MvYy9h");
  CHECK_FALSE(base64_decode("abc"));
  CHECK_FALSE(base64_decode("ab!="));
  CHECK_FALSE(base64_decode("a=b="));
}

TEST_CASE("requests name the prefix's range in base64", "[naming]") {
  CHECK(etcd::prefix_range_end("/s/c/") == "/s/c0");
  CHECK(etcd::prefix_range_end(std::string("a\xff", 2)) == "b");
  auto r = boost::json::parse(etcd::range_request("/s/c/")).as_object();
  CHECK(r.at("key").as_string() == b64("/s/c/"));
  CHECK(r.at("range_end").as_string() == b64("/s/c0"));
  auto w = boost::json::parse(etcd::watch_request("/s/c/", 7)).as_object().at("create_request").as_object();
  CHECK(w.at("start_revision").as_string() == "7");
  auto p = boost::json::parse(etcd::put_request("/k", "v", 42)).as_object();
  CHECK(p.at("lease").as_string() == "42");
  CHECK(p.at("value").as_string() == b64("v"));
}

TEST_CASE("range and lease and keep-alive responses are read as etcd writes them", "[naming]") {
  etcd::range_result r;
  std::string why;
  REQUIRE(etcd::parse_range_response("{" + hdr(2) + R"(,"kvs":[)" + kv_json("/s/c/a", "127.0.0.1:1", 2) + R"(],"count":"1"})",
                                     r, why));
  CHECK(r.revision == 2);
  REQUIRE(r.kvs.size() == 1);
  CHECK(r.kvs[0].key == "/s/c/a");
  CHECK(r.kvs[0].value == "127.0.0.1:1");
  REQUIRE(etcd::parse_range_response("{" + hdr(9) + "}", r, why));  // an empty prefix
  CHECK(r.kvs.empty());
  CHECK_FALSE(etcd::parse_range_response("not json", r, why));
  CHECK_FALSE(etcd::parse_range_response(R"({"kvs":[]})", r, why));
  CHECK_FALSE(etcd::parse_range_response("{" + hdr(2) + R"(,"kvs":[{"key":"%%%"}]})", r, why));
  CHECK(why.find("base64") != std::string::npos);

  std::int64_t lease = 0, ttl = 0;
  REQUIRE(etcd::parse_lease_grant("{" + hdr(2) + R"(,"ID":"4111120387287570183","TTL":"5"})", lease, ttl, why));
  CHECK(lease == 4111120387287570183);
  CHECK(ttl == 5);
  REQUIRE(etcd::parse_keepalive(R"({"result":{)" + hdr(2) + R"(,"ID":"12","TTL":"5"}})", ttl, why));
  CHECK(ttl == 5);
  REQUIRE(etcd::parse_keepalive(R"({"result":{)" + hdr(2) + R"(,"ID":"12345"}})", ttl, why));
  CHECK(ttl == 0);  // etcd's answer for a lease it no longer has
  CHECK_FALSE(etcd::parse_ok(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})",
      why));
  CHECK(why == "etcd error: etcdserver: requested lease not found");
}

TEST_CASE("values are a JSON object or a plain address and anything else is refused with a reason", "[naming]") {
  endpoint ep;
  std::string why;
  REQUIRE(etcd::parse_endpoint_value(R"({"addr":"127.0.0.1:1","weight":2})", ep, why));
  CHECK(ep == endpoint{address::tcp("127.0.0.1", 1), 2});
  REQUIRE(etcd::parse_endpoint_value("[::1]:9", ep, why));
  CHECK(ep == endpoint{address::tcp("::1", 9), 1});
  REQUIRE(etcd::parse_endpoint_value(etcd::endpoint_value({address::tcp("10.0.0.1", 7), 3}), ep, why));
  CHECK(ep == endpoint{address::tcp("10.0.0.1", 7), 3});
  for (std::string_view bad : {"", "garbage", R"({"addr":5})", R"({"weight":1})", R"({"addr":"h:1","weight":-1})",
                               R"({"addr":"h:1","weight":"x"})", R"({"addr":"h:1","weight":99999999999})", "{"}) {
    INFO(bad);
    CHECK_FALSE(etcd::parse_endpoint_value(bad, ep, why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("watch messages are read whether created or put or delete or compacted or an error", "[naming]") {
  auto created = watch(R"({"result":{)" + hdr(2) + R"(,"created":true}})");
  CHECK(created.created);
  CHECK(created.events.empty());
  auto put = watch(R"({"result":{)" + hdr(2) + R"(,"events":[{"kv":)" + kv_json("/s/c/a", "h:1", 2) + "}]}}");
  REQUIRE(put.events.size() == 1);
  CHECK_FALSE(put.events[0].deleted);
  auto del = watch(R"({"result":{)" + hdr(3) + R"(,"events":[{"type":"DELETE","kv":{"key":")" + b64("/s/c/a") +
                   R"(","mod_revision":"3"}}]}})");
  REQUIRE(del.events.size() == 1);
  CHECK(del.events[0].deleted);
  CHECK(del.events[0].kv.mod_revision == 3);
  auto compacted = watch(
      R"({"result":{"header":{"cluster_id":"1","member_id":"1","raft_term":"2"},"canceled":true,"compact_revision":"3"}})");
  CHECK(compacted.canceled);
  CHECK(compacted.compact_revision == 3);
  etcd::watch_message m;
  std::string why;
  CHECK_FALSE(etcd::parse_watch_message(R"({"error":{"grpc_code":14,"message":"unavailable"}})", m, why));
  CHECK(why == "etcd error: unavailable");
  CHECK_FALSE(etcd::parse_watch_message(R"({"result":{)" + hdr(3) + R"(,"events":[{"type":"BOOM","kv":{}}]}})", m, why));
}

TEST_CASE("an etcd view follows a range then watch events and resumes after the last event", "[naming]") {
  etcd_view v;
  std::vector<std::string> problems;
  etcd::range_result r{5, {{"/s/a", R"({"addr":"127.0.0.1:1","weight":2})", 3}, {"/s/bad", "nonsense", 4},
                           {"/s/b", "127.0.0.1:2", 5}}};
  v.reset(r, problems);
  CHECK(v.watch_from() == 6);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("/s/bad") != std::string::npos);
  CHECK(v.snapshot().size() == 2);

  bool changed = false;
  problems.clear();
  etcd::watch_message m;
  m.events = {{false, {"/s/c", "127.0.0.1:3", 7}}, {true, {"/s/a", "", 8}}};
  CHECK(v.apply(m, changed, problems) == etcd_view::next::keep_watching);
  CHECK(changed);
  CHECK(v.watch_from() == 9);
  auto snap = v.snapshot();
  REQUIRE(snap.size() == 2);
  CHECK(snap[0].where.port == 2);
  CHECK(snap[1].where.port == 3);

  // The same value again, and a key turning bad: only the second changes the set.
  m.events = {{false, {"/s/c", "127.0.0.1:3", 10}}};
  v.apply(m, changed, problems);
  CHECK_FALSE(changed);
  m.events = {{false, {"/s/c", "{\"addr\":1}", 11}}};
  v.apply(m, changed, problems);
  CHECK(changed);
  CHECK(v.snapshot().size() == 1);
  CHECK(problems.size() == 1);

  // A compacted watch asks for a new range, keeping what it has meanwhile.
  etcd::watch_message compacted;
  compacted.canceled = true;
  compacted.compact_revision = 20;
  CHECK(v.apply(compacted, changed, problems) == etcd_view::next::range_again);
  CHECK(v.snapshot().size() == 1);
  CHECK(v.watch_from() == 12);
}
