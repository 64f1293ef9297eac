// metrics::exporter's bodies (metrics/exporter.hpp).
#pragma once

#include <occams_rpc/core/error.hpp>
#include <occams_rpc/metrics/exporter.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <fmt/format.h>

#include <list>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace occams_rpc::metrics {

namespace exporter_detail {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto tok = asio::as_tuple(asio::use_awaitable);
}  // namespace exporter_detail

struct exporter::state {
  boost::asio::any_io_executor ex;
  const registry* reg;
  exporter_config cfg;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors;
  std::list<boost::beast::tcp_stream*> open;  // on the executor only
  std::atomic<bool> closed{false};
  std::chrono::steady_clock::time_point last_refusal_log{};
  std::size_t refused_since_log = 0;
};

namespace exporter_detail {

inline std::string peer_of(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string("an unknown peer") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

inline http::response<http::string_body> answer(http::status status, std::string body, const char* type) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, type);
  res.keep_alive(false);
  res.body() = std::move(body);
  return res;
}

/// One scrape connection: one request, one answer, then close.
inline asio::awaitable<void> serve(std::shared_ptr<exporter::state> st, tcp::socket socket) {
  std::string peer = peer_of(socket);
  beast::tcp_stream stream(std::move(socket));
  auto me = st->open.insert(st->open.end(), &stream);
  struct unlist {
    exporter::state& st;
    std::list<beast::tcp_stream*>::iterator it;
    ~unlist() { st.open.erase(it); }
  } guard{*st, me};

  // The buffer never grows past the header limit (+1, so that the parser's limit speaks first).
  beast::flat_buffer buffer(st->cfg.max_header_bytes + 1);
  http::request_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(st->cfg.max_header_bytes));
  parser.body_limit(0);
  stream.expires_after(st->cfg.timeout);
  auto [ec, n] = co_await http::async_read(stream, buffer, parser, tok);
  if (st->closed.load()) co_return;

  http::response<http::string_body> res;
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    st->cfg.log.debug("metrics: request from {} answered 431: header larger than {} bytes", peer,
                      st->cfg.max_header_bytes);
    res = answer(http::status::request_header_fields_too_large, "request header too large\n", "text/plain");
  } else if (ec == http::error::unexpected_body || ec == http::error::body_limit) {
    st->cfg.log.debug("metrics: request from {} answered 400: it has a body", peer);
    res = answer(http::status::bad_request, "a scrape request has no body\n", "text/plain");
  } else if (ec) {
    st->cfg.log.debug("metrics: connection from {} closed: {}", peer,
                      ec == beast::error::timeout ? std::string("no whole request within the timeout") : ec.message());
    co_return;
  } else {
    const auto& req = parser.get();
    std::string_view target = req.target();
    target = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get) {
      res = answer(http::status::method_not_allowed, "only GET\n", "text/plain");
      res.set(http::field::allow, "GET");
    } else if (target != "/metrics") {
      res = answer(http::status::not_found, "not found: the metrics are at /metrics\n", "text/plain");
    } else {
      res = answer(http::status::ok, st->reg->scrape(), "text/plain; version=0.0.4; charset=utf-8");
    }
  }
  res.prepare_payload();
  stream.expires_after(st->cfg.timeout);
  auto [wec, wn] = co_await http::async_write(stream, res, tok);
  if (wec && !st->closed.load()) st->cfg.log.debug("metrics: answer to {} not written: {}", peer, wec.message());
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

inline void refuse(exporter::state& st, tcp::socket& s) {
  ++st.refused_since_log;
  auto now = std::chrono::steady_clock::now();
  if (now - st.last_refusal_log >= std::chrono::seconds{1}) {
    st.cfg.log.warn("metrics: closed {} scrape connection(s) at once (the last from {}): {} already open (max_connections)",
                    st.refused_since_log, peer_of(s), st.open.size());
    st.last_refusal_log = now;
    st.refused_since_log = 0;
  }
  boost::system::error_code ignored;
  s.close(ignored);
}

inline asio::awaitable<void> accept_loop(std::shared_ptr<exporter::state> st, tcp::acceptor& a) {
  asio::steady_timer backoff(st->ex);
  for (;;) {
    auto [ec, s] = co_await a.async_accept(tok);
    if (st->closed.load()) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      st->cfg.log.warn("metrics: accept failed: {}; retrying in 100 ms", ec.message());  // e.g. out of fds
      backoff.expires_after(std::chrono::milliseconds{100});
      co_await backoff.async_wait(tok);
      continue;
    }
    if (st->open.size() >= st->cfg.max_connections) {
      refuse(*st, s);
      continue;
    }
    asio::co_spawn(st->ex, serve(st, std::move(s)), asio::detached);
  }
}

}  // namespace exporter_detail

OCCAMS_RPC_DECL std::optional<std::string> exporter_config::problem() const {
  if (max_connections < 1) return "exporter_config::max_connections must be at least 1";
  if (timeout.count() <= 0) return "exporter_config::timeout must be positive";
  if (max_header_bytes < 256 || max_header_bytes > (1u << 20)) return "exporter_config::max_header_bytes must be 256..1048576";
  return std::nullopt;
}

OCCAMS_RPC_DECL exporter::exporter(boost::asio::any_io_executor ex, const registry& r, exporter_config cfg)
    : st_(std::make_shared<state>()) {
  if (auto p = cfg.problem()) throw std::invalid_argument(*p);
  st_->ex = std::move(ex);
  st_->reg = &r;
  st_->cfg = std::move(cfg);
}

OCCAMS_RPC_DECL exporter::~exporter() { close(); }

OCCAMS_RPC_DECL address exporter::listen(const address& where) {
  using namespace exporter_detail;
  if (where.is_unix())
    throw std::system_error(make_error_code(errc::invalid_address), "metrics: the exporter listens on TCP only");
  tcp::resolver resolver(st_->ex);
  auto results = resolver.resolve(where.host, std::to_string(where.port), tcp::resolver::passive);
  auto a = std::make_unique<tcp::acceptor>(st_->ex);
  tcp::endpoint ep = results.begin()->endpoint();
  a->open(ep.protocol());
  a->set_option(asio::socket_base::reuse_address(true));
  a->bind(ep);
  a->listen();
  auto local = a->local_endpoint();
  tcp::acceptor& ref = *a;
  st_->acceptors.push_back(std::move(a));
  asio::co_spawn(st_->ex, accept_loop(st_, ref), asio::detached);
  return address::tcp(local.address().to_string(), local.port());
}

OCCAMS_RPC_DECL void exporter::close() {
  if (!st_ || st_->closed.exchange(true)) return;
  boost::asio::dispatch(st_->ex, [st = st_] {
    boost::system::error_code ignored;
    for (auto& a : st->acceptors) a->close(ignored);
    for (auto* s : st->open) s->socket().close(ignored);
  });
}

OCCAMS_RPC_DECL std::size_t exporter::connection_count() const noexcept { return st_->open.size(); }

}  // namespace occams_rpc::metrics
