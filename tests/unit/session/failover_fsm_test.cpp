// failover_pool's address choice and retry decisions, event by event: no socket, no sleep.
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/session/failover_fsm.hpp>

#include <catch2/catch.hpp>

#include <vector>

using namespace occams_rpc;
using namespace occams_rpc::session;

namespace {

using list = std::vector<failover_candidate>;

failover_config cfg(failover_order order, std::size_t retry_limit) {
  failover_config c;
  c.order = order;
  c.retry_limit = retry_limit;
  return c;
}

// A balancer for the order: round robin and primary/backup keep no state in it.
balancer& lb(failover_order order) {
  static balancer rr(cfg(failover_order::round_robin, 0)), pb(cfg(failover_order::primary_backup, 0));
  return order == failover_order::round_robin ? rr : pb;
}

// The id of the address an action names.
std::uintptr_t chosen(const list& l, failover_action a) {
  REQUIRE(a.step == failover_step::attempt);
  REQUIRE(a.index < l.size());
  return l[a.index].id;
}

const auto unreachable = make_error_code(errc::unreachable);
const auto io_err = make_error_code(errc::io_err);
const auto timeout = make_error_code(errc::timeout);
const auto closed = make_error_code(errc::closed);

}  // namespace

TEST_CASE("round robin sends successive calls to the healthy addresses in turn", "[fsm]") {
  list l{{1, true}, {2, false}, {3, true}, {4, true}};
  std::vector<std::uintptr_t> got;
  for (std::size_t turn = 0; turn < 6; ++turn) {
    failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), turn);
    got.push_back(chosen(l, f.start(l, false)));
  }
  CHECK(got == std::vector<std::uintptr_t>{1, 3, 4, 1, 3, 4});
}

TEST_CASE("primary/backup sends every call to the first healthy address in list order", "[fsm]") {
  list l{{1, false}, {2, true}, {3, true}};
  for (std::size_t turn = 0; turn < 3; ++turn) {
    failover_fsm f(cfg(failover_order::primary_backup, 2), lb(failover_order::primary_backup), turn);
    CHECK(chosen(l, f.start(l, false)) == 2);
  }
  l[0].healthy = true;  // the primary is back
  failover_fsm f(cfg(failover_order::primary_backup, 2), lb(failover_order::primary_backup), 7);
  CHECK(chosen(l, f.start(l, false)) == 1);
}

TEST_CASE("with no healthy address a call goes to the unhealthy ones in list order", "[fsm]") {
  list l{{1, false}, {2, false}, {3, false}};
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 5);
  CHECK(chosen(l, f.start(l, false)) == 1);
  CHECK(chosen(l, f.on_result(unreachable, l, false, false)) == 2);
  CHECK(chosen(l, f.on_result(unreachable, l, false, false)) == 3);
}

TEST_CASE("a retry goes first to the healthy addresses not yet tried, then to the others", "[fsm]") {
  list l{{1, false}, {2, true}, {3, true}};
  failover_fsm f(cfg(failover_order::primary_backup, 3), lb(failover_order::primary_backup), 0);
  CHECK(chosen(l, f.start(l, false)) == 2);
  CHECK(chosen(l, f.on_result(io_err, l, false, false)) == 3);
  CHECK(chosen(l, f.on_result(timeout, l, false, false)) == 1);
  // Every address tried: it starts over, healthy ones first.
  CHECK(chosen(l, f.on_result(unreachable, l, false, false)) == 2);
}

TEST_CASE("retries stop after retry_limit further attempts and the call fails with the last error", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  REQUIRE(f.on_result(unreachable, l, false, false).step == failover_step::attempt);
  REQUIRE(f.on_result(io_err, l, false, false).step == failover_step::attempt);
  auto a = f.on_result(timeout, l, false, false);
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::timeout);
  CHECK(f.attempts() == 3);
}

TEST_CASE("retry_limit 0 makes exactly one attempt", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::round_robin, 0), lb(failover_order::round_robin), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  auto a = f.on_result(io_err, l, false, false);
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::io_err);
  CHECK(f.attempts() == 1);
}

TEST_CASE("with a single address the retries go to that address", "[fsm]") {
  list l{{9, false}};
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  CHECK(chosen(l, f.start(l, false)) == 9);
  CHECK(chosen(l, f.on_result(unreachable, l, false, false)) == 9);
  CHECK(chosen(l, f.on_result(unreachable, l, false, false)) == 9);
  CHECK(f.on_result(unreachable, l, false, false).step == failover_step::fail);
}

TEST_CASE("success and errors that are not retriable complete the call as the attempt did", "[fsm]") {
  list l{{1, true}, {2, true}};
  auto ec = GENERATE(std::error_code{}, make_error_code(errc::cancelled),
                     make_error_code(errc::closed),  // from an address still listed: close()
                     make_error_code(errc::method_not_found), make_error_code(errc::decode),
                     make_error_code(errc::internal), make_error_code(errc::overloaded),
                     std::make_error_code(std::errc::permission_denied));  // a user's own code
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  CHECK(f.on_result(ec, l, false, false).step == failover_step::complete);
  CHECK(f.attempts() == 1);
}

TEST_CASE("closed from an address that update_addresses removed is retried on another address", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::primary_backup, 2), lb(failover_order::primary_backup), 0);
  CHECK(chosen(l, f.start(l, false)) == 1);
  list after{{2, true}, {3, false}};  // 1 removed, 3 added while the attempt waited
  CHECK(chosen(after, f.on_result(closed, after, false, false)) == 2);
  // closed from 2, still listed, is the pool's own close(): not retried.
  CHECK(f.on_result(closed, after, false, false).step == failover_step::complete);
}

TEST_CASE("an address list changed between attempts is the one the next choice sees", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::primary_backup, 3), lb(failover_order::primary_backup), 0);
  CHECK(chosen(l, f.start(l, false)) == 1);
  list after{{5, false}, {1, true}, {6, true}};  // 2 gone; 5 and 6 new; 1 already tried
  CHECK(chosen(after, f.on_result(io_err, after, false, false)) == 6);
  CHECK(chosen(after, f.on_result(io_err, after, false, false)) == 5);
  // Every address of the new list tried: over again from the healthy ones.
  CHECK(chosen(after, f.on_result(io_err, after, false, false)) == 1);
}

TEST_CASE("with every address down a call tries each and fails with unreachable", "[fsm]") {
  list l{{1, false}, {2, false}, {3, false}};
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  std::vector<std::uintptr_t> got{chosen(l, f.start(l, false))};
  failover_action a = f.on_result(unreachable, l, false, false);
  while (a.step == failover_step::attempt) {
    got.push_back(chosen(l, a));
    a = f.on_result(unreachable, l, false, false);
  }
  CHECK(got == std::vector<std::uintptr_t>{1, 2, 3});
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::unreachable);
}

TEST_CASE("a call with no address fails with unreachable, and with closed once the pool closed", "[fsm]") {
  list none;
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  auto a = f.start(none, false);
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::unreachable);

  list l{{1, true}};
  failover_fsm g(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  auto b = g.start(l, true);
  CHECK(b.step == failover_step::fail);
  CHECK(b.ec == errc::closed);
  CHECK(g.attempts() == 0);
}

TEST_CASE("every address removed mid-retry fails the call with unreachable, or closed once the pool closed",
          "[fsm]") {
  list l{{1, true}};
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  auto a = f.on_result(closed, list{}, false, false);
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::unreachable);  // the caller's pool is open: its set was emptied

  failover_fsm g(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  REQUIRE(g.start(l, false).step == failover_step::attempt);
  auto b = g.on_result(closed, list{}, true, false);
  CHECK(b.step == failover_step::fail);
  CHECK(b.ec == errc::closed);
}

TEST_CASE("an attempt whose address left the set before it was sent does not use up a retry", "[fsm]") {
  // The set churns: each attempt's address is replaced (a new id) before the call is sent.
  failover_fsm f(cfg(failover_order::round_robin, 1), lb(failover_order::round_robin), 0);
  std::uintptr_t next_id = 1;
  list l{{next_id++, true}, {next_id++, true}};
  failover_action a = f.start(l, false);
  std::size_t rerouted = 0;
  while (a.step == failover_step::attempt && rerouted < failover_fsm::max_reroutes) {
    CHECK(f.attempts() == 1);  // given back each time
    l[a.index].id = next_id++;
    a = f.on_result(closed, l, false, false);
    ++rerouted;
  }
  REQUIRE(a.step == failover_step::attempt);
  // With the give-backs spent, removals count as any failure: retry_limit 1 allows one more.
  l[a.index].id = next_id++;
  a = f.on_result(closed, l, false, false);
  REQUIRE(a.step == failover_step::attempt);
  CHECK(f.attempts() == 2);
  l[a.index].id = next_id++;
  a = f.on_result(closed, l, false, false);
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::unreachable);
}

TEST_CASE("a pool closed while an attempt failed makes no further attempt", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  auto a = f.on_result(io_err, l, true, false);
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::io_err);
  CHECK(f.attempts() == 1);
}

TEST_CASE("a caller that cancelled as a retriable attempt failed gets cancelled and no retry", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  auto a = f.on_result(timeout, l, false, true);
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::cancelled);
  CHECK(f.attempts() == 1);
}

// --- Leader redirect: what a classifier made of a method's error answer ---

namespace {
const auto user_error = make_error_code(errc::remote_error);
failover_advice at(std::size_t i) { return {failover_hint::kind::at, i}; }
const failover_advice elsewhere{failover_hint::kind::elsewhere};
const failover_advice stop{failover_hint::kind::stop};
}  // namespace

TEST_CASE("a redirect to an address sends the next attempt there, tried or not", "[fsm]") {
  list l{{1, true}, {2, true}, {3, true}};
  failover_fsm f(cfg(failover_order::primary_backup, 2), lb(failover_order::primary_backup), 0);
  CHECK(chosen(l, f.start(l, false)) == 1);
  CHECK(chosen(l, f.on_result(user_error, l, false, false, at(2))) == 3);
  CHECK(chosen(l, f.on_result(user_error, l, false, false, at(0))) == 1);  // back to the first: allowed
  CHECK(f.redirects() == 2);
  CHECK(f.attempts() == 3);
}

TEST_CASE("a redirect elsewhere, or to an address not added, goes to an address not tried", "[fsm]") {
  list l{{1, true}, {2, true}, {3, true}};
  failover_fsm f(cfg(failover_order::primary_backup, 2), lb(failover_order::primary_backup), 0);
  CHECK(chosen(l, f.start(l, false)) == 1);
  CHECK(chosen(l, f.on_result(user_error, l, false, false, elsewhere)) == 2);
  CHECK(chosen(l, f.on_result(user_error, l, false, false, at(failover_advice::npos))) == 3);
}

TEST_CASE("do-not-retry completes the call even after a retriable error", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::round_robin, 2), lb(failover_order::round_robin), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  CHECK(f.on_result(timeout, l, false, false, stop).step == failover_step::complete);
  CHECK(f.attempts() == 1);
}

TEST_CASE("a redirect loop fails with too_many_redirects once max_redirects were followed", "[fsm]") {
  auto c = cfg(failover_order::primary_backup, 10);
  c.max_redirects = 3;
  list l{{1, true}, {2, true}};
  failover_fsm f(c, lb(failover_order::primary_backup), 0);
  std::size_t i = f.start(l, false).index;
  failover_action a{failover_step::attempt, i};
  std::size_t attempts = 0;
  while (a.step == failover_step::attempt && attempts++ < 20) a = f.on_result(user_error, l, false, false, at(1 - a.index));
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::too_many_redirects);
  CHECK(f.attempts() == 4);  // the first and three redirects
}

TEST_CASE("a redirect past the retry limit returns the answer that asked for it", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::primary_backup, 1), lb(failover_order::primary_backup), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  CHECK(chosen(l, f.on_result(user_error, l, false, false, at(1))) == 2);
  CHECK(f.on_result(user_error, l, false, false, at(0)).step == failover_step::complete);
}

TEST_CASE("a redirect hint on a successful answer is ignored", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::primary_backup, 2), lb(failover_order::primary_backup), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  CHECK(f.on_result({}, l, false, false, at(1)).step == failover_step::complete);
}

TEST_CASE("a caller that cancelled as a redirect arrived gets cancelled", "[fsm]") {
  list l{{1, true}, {2, true}};
  failover_fsm f(cfg(failover_order::primary_backup, 2), lb(failover_order::primary_backup), 0);
  REQUIRE(f.start(l, false).step == failover_step::attempt);
  auto a = f.on_result(user_error, l, false, true, at(1));
  CHECK(a.step == failover_step::fail);
  CHECK(a.ec == errc::cancelled);
}

TEST_CASE("ejected addresses are left out of the choice while others remain, and used when none does", "[fsm]") {
  list l{{1, true}, {2, true}, {3, true}};
  l[0].ejected = true;
  failover_fsm f(cfg(failover_order::primary_backup, 3), lb(failover_order::primary_backup), 0);
  CHECK(chosen(l, f.start(l, false)) == 2);
  for (auto& c : l) c.ejected = true;
  failover_fsm g(cfg(failover_order::primary_backup, 3), lb(failover_order::primary_backup), 0);
  CHECK(chosen(l, g.start(l, false)) == 1);  // in list order, as for unhealthy ones
}
