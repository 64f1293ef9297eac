#pragma once

#include <occams_rpc/naming/etcd_json.hpp>
#include <occams_rpc/naming/etcd_registration.hpp>
#include <occams_rpc/naming/url.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

namespace occams_rpc::naming {

OCCAMS_RPC_DECL etcd_registration::etcd_registration(boost::asio::any_io_executor ex, std::string_view etcd_url,
                                                     const address& self, const registration_config& rcfg,
                                                     const naming_config& cfg, logger log)
    : st_(std::make_shared<state>(ex)) {
  naming_url u;
  std::string why;
  if (auto ec = parse_naming_url(etcd_url, u, why)) throw std::system_error(ec, why);
  if (u.type != naming_url::kind::etcd)
    throw std::system_error(make_error_code(errc::invalid_address), "registration needs an etcd:// URL");
  if (rcfg.ttl_seconds < 1 || rcfg.weight == 0)
    throw std::system_error(make_error_code(errc::invalid_config), "registration: ttl_seconds >= 1, weight >= 1");
  st_->etcd = {u.host, u.port};
  st_->key = u.prefix + self.to_string();
  st_->value = etcd::endpoint_value({self, rcfg.weight});
  st_->rcfg = rcfg;
  if (st_->rcfg.keepalive_period.count() <= 0)
    st_->rcfg.keepalive_period = std::chrono::milliseconds(rcfg.ttl_seconds * 1000 / 3);
  st_->cfg = cfg;
  st_->log = std::move(log);
}

OCCAMS_RPC_DECL void etcd_registration::start() {
  boost::asio::post(st_->ex, [st = st_] {
    if (st->started || st->stopped) return;
    st->started = true;
    boost::asio::co_spawn(st->ex, run(st), boost::asio::detached);
  });
}

OCCAMS_RPC_DECL boost::asio::awaitable<void> etcd_registration::run(std::shared_ptr<state> st) {
  using clock = std::chrono::steady_clock;
  backoff wait(st->cfg.retry_backoff, st->cfg.retry_backoff_max);
  auto call = [st](std::string_view target, std::string body, std::string& out, std::string& why) {
    return detail::etcd_call(st->ex, st->etcd, target, std::move(body), st->cfg, st->abort_io, out, why);
  };
  auto sleep = [st](std::chrono::milliseconds d) -> boost::asio::awaitable<bool> {
    if (st->stopped) co_return false;
    st->timer.expires_after(d);
    co_await st->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return !st->stopped;
  };
  bool failing = false;
  auto report = [&](std::string_view what, const std::string& why) {
    if (!failing) st->log.warn("registration {}: {}: {}; retrying", st->key, what, why);
    else st->log.debug("registration {}: {}: {}", st->key, what, why);
    failing = true;
  };
  std::int64_t lease = 0;
  while (!st->stopped) {
    // 1. A lease, and the key under it.
    std::string out, why;
    std::int64_t ttl = 0;
    // One co_await per statement: GCC 12 mis-sequences co_await inside && chains.
    bool ok = co_await call("/v3/lease/grant", etcd::lease_grant_request(st->rcfg.ttl_seconds), out, why);
    ok = ok && etcd::parse_lease_grant(out, lease, ttl, why);
    if (ok) st->lease = lease;
    if (ok && !st->stopped) {
      ok = co_await call("/v3/kv/put", etcd::put_request(st->key, st->value, lease), out, why);
      ok = ok && etcd::parse_ok(out, why);
    }
    if (st->stopped) break;
    if (!ok) {
      report("cannot register", why);
      co_await sleep(wait.next());
      continue;
    }
    st->registered = true;
    wait.reset();
    st->log.info("registration {}: registered with lease {:x} (TTL {} s)", st->key, lease, ttl);
    failing = false;
    // 2. Keep it alive; a lease found gone (or surely expired) is granted again.
    auto last_ok = clock::now();
    while (co_await sleep(st->rcfg.keepalive_period)) {
      bool alive = co_await call("/v3/lease/keepalive", etcd::lease_id_request(lease), out, why);
      alive = alive && etcd::parse_keepalive(out, ttl, why);
      if (st->stopped) break;
      if (alive && ttl > 0) {
        if (failing) st->log.info("registration {}: keep-alive works again", st->key);
        failing = false;
        last_ok = clock::now();
        continue;
      }
      if (alive) {  // TTL 0: etcd no longer knows the lease (expired while unreachable, or restarted without it)
        st->log.warn("registration {}: lease {:x} is gone; registering again", st->key, lease);
        break;
      }
      report("keep-alive failed", why);
      if (clock::now() - last_ok > std::chrono::seconds(st->rcfg.ttl_seconds)) {
        st->log.warn("registration {}: no keep-alive for a whole TTL; registering again", st->key);
        break;
      }
    }
    st->registered = false;
  }
  st->registered = false;
  // 3. Deregister: the key goes with its lease (a failure is logged; the lease then expires).
  if (lease != 0) {
    std::string out, why;
    st->abort_io = nullptr;
    bool revoked = co_await call("/v3/lease/revoke", etcd::lease_id_request(lease), out, why);
    if (revoked && etcd::parse_ok(out, why))
      st->log.info("registration {}: lease {:x} revoked", st->key, lease);
    else st->log.warn("registration {}: revoke failed ({}); the key goes when its lease expires", st->key, why);
  }
  st->finished = true;
  st->done_timer.cancel();
}

}  // namespace occams_rpc::naming
