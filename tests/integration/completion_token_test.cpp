// Asio's completion-token conventions on every channel: a handler's bound cancellation slot
// reaches the call in flight, and a handler bound to a strand runs on that strand, through a
// client_stream, a client_pool and a failover_pool alike (and for async_connect and the
// pools' async_close).
#include "test_support.hpp"

#include <occams_rpc/stream/client_pool.hpp>
#include <occams_rpc/stream/failover_pool.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/strand.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace occams_rpc;
using namespace ::test;

OCCAMS_RPC_SERVICE(TokenService, (add, std::int64_t(std::int64_t, std::int64_t)));

namespace {

/// Calls that could only end by cancellation: the server holds them and no timeout is near.
constexpr client_config patient_client{.call_timeout = 60s, .connect_timeout = 5s, .timeout_tick = 20ms};
constexpr pool_config fast_pool{.health_check_period = 20ms, .reconnect_backoff = 10ms, .reconnect_backoff_max = 50ms};

/// One channel of each kind, to one address, made on the current coroutine's executor.
enum class channel_kind { stream, pool, failover };

struct any_channel {
  client_stream stream;
  std::unique_ptr<client_pool> pool;
  std::unique_ptr<failover_pool> failover;

  /// Runs `f(channel)` with the channel of this kind.
  template <class F>
  decltype(auto) visit(F&& f) {
    if (pool) return f(*pool);
    if (failover) return f(*failover);
    return f(stream);
  }
  asio::awaitable<void> close() {
    if (pool) co_await pool->async_close(tok);
    else if (failover) co_await failover->async_close(tok);
    else co_await stream.async_close(tok);
  }
};

asio::awaitable<any_channel> make_channel(channel_kind kind, const address& where) {
  auto ex = co_await asio::this_coro::executor;
  any_channel ch;
  if (kind == channel_kind::stream) ch.stream = co_await connect(where, patient_client);
  if (kind == channel_kind::pool) ch.pool = std::make_unique<client_pool>(ex, where, patient_client, fast_pool);
  if (kind == channel_kind::failover)
    ch.failover = std::make_unique<failover_pool>(ex, std::vector<address>{where}, patient_client,
                                                  failover_config{.pool = fast_pool});
  co_return ch;
}

struct adder {
  std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }
};

channel_kind any_channel_kind() {
  auto kind = GENERATE(channel_kind::stream, channel_kind::pool, channel_kind::failover);
  INFO((kind == channel_kind::stream ? "over a client_stream"
        : kind == channel_kind::pool ? "over a client_pool"
                                     : "over a failover_pool"));
  return kind;
}

}  // namespace

TEST_CASE("a typed call cancelled through its bound slot completes with cancelled on every channel", "[api][pool]") {
  channel_kind kind = any_channel_kind();
  auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                       asio::cancellation_type::total);
  INFO("cancellation type " << static_cast<int>(type));
  asio::io_context io;
  std::vector<server_request> held;
  server<holding_dispatch> srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    auto ch = co_await make_channel(kind, where);
    asio::cancellation_signal sig;
    std::optional<api::result<std::int64_t>> got;
    ch.visit([&](auto& channel) {
      api::stub<TokenService, std::remove_reference_t<decltype(channel)>> svc(channel);
      svc.add(1, 2)(asio::bind_cancellation_slot(sig.slot(), [&](api::result<std::int64_t> r) { got = std::move(r); }));
    });
    co_await wait_until([&] { return held.size() == 1; });  // in flight: the server holds it
    CHECK_FALSE(got.has_value());
    sig.emit(type);
    co_await wait_until([&] { return got.has_value(); });  // the 60 s call timeout is far off
    REQUIRE(got->has_framework_error());
    CHECK(got->framework_error() == make_error_code(errc::cancelled));
    CHECK(held.size() == 1);  // a failover_pool made no further attempt
    held.clear();
    co_await ch.close();
  });
}

TEST_CASE("a call's handler bound to a strand runs on that strand on every channel", "[api][pool]") {
  channel_kind kind = any_channel_kind();
  asio::io_context io;
  api::router routes;
  routes.add<TokenService>(adder{});
  server srv(io.get_executor(), std::move(routes));
  auto where = srv.listen(listen_address(true));
  auto strand = asio::make_strand(io);
  run(io, [&]() -> asio::awaitable<void> {
    auto ch = co_await make_channel(kind, where);
    std::optional<bool> typed_on_strand, raw_on_strand;
    ch.visit([&](auto& channel) {
      api::stub<TokenService, std::remove_reference_t<decltype(channel)>> svc(channel);
      svc.add(1, 2)(asio::bind_executor(strand, [&](api::result<std::int64_t> r) {
        CHECK(r.value() == 3);
        typed_on_strand = strand.running_in_this_thread();
      }));
      // The same method called raw: the arguments (1, 2) as msgpack, by hand.
      channel.async_call(action("TokenService.add"), text_bytes("\x92\x01\x02"), {}, {},
                         asio::bind_executor(strand, [&](std::error_code ec, call_response) {
                           CHECK_FALSE(ec);
                           raw_on_strand = strand.running_in_this_thread();
                         }));
    });
    co_await wait_until([&] { return typed_on_strand && raw_on_strand; });
    CHECK(*typed_on_strand);
    CHECK(*raw_on_strand);
    co_await ch.close();
  });
}

TEST_CASE("async_connect and the pools' async_close complete a strand-bound handler on its strand", "[stream][pool]") {
  asio::io_context io;
  std::vector<server_request> held;
  server<holding_dispatch> srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(true));
  auto strand = asio::make_strand(io);
  run(io, [&]() -> asio::awaitable<void> {
    std::optional<bool> connect_on_strand, pool_close_on_strand, failover_close_on_strand;
    client_stream stream;
    client_stream::async_connect(io.get_executor(), where, patient_client, {},
                                 asio::bind_executor(strand, [&](std::error_code ec, client_stream s) {
                                   CHECK_FALSE(ec);
                                   stream = std::move(s);
                                   connect_on_strand = strand.running_in_this_thread();
                                 }));
    client_pool pool(io.get_executor(), where, patient_client, fast_pool);
    failover_pool failover(io.get_executor(), {where}, patient_client, {.pool = fast_pool});
    pool.async_close(asio::bind_executor(strand, [&](std::error_code) { pool_close_on_strand = strand.running_in_this_thread(); }));
    failover.async_close(
        asio::bind_executor(strand, [&](std::error_code) { failover_close_on_strand = strand.running_in_this_thread(); }));
    co_await wait_until([&] { return connect_on_strand && pool_close_on_strand && failover_close_on_strand; });
    CHECK(*connect_on_strand);
    CHECK(*pool_close_on_strand);
    CHECK(*failover_close_on_strand);
    CHECK(stream.is_open());
    co_await stream.async_close(tok);
  });
}

TEST_CASE("async_connect cancelled through its bound slot completes with cancelled", "[stream]") {
  // Emitted on this thread right after the initiation, while the connect coroutine awaits the
  // socket: the cancellation comes first, even though a local connect is quick. Partial, which
  // co_spawn alone would filter out.
  asio::io_context io;
  std::vector<server_request> held;
  server<holding_dispatch> srv(io.get_executor(), holding_dispatch{&held});
  auto where = srv.listen(listen_address(true));
  run(io, [&]() -> asio::awaitable<void> {
    asio::cancellation_signal sig;
    std::optional<std::error_code> got;
    client_stream::async_connect(io.get_executor(), where, patient_client, {},
                                 asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, client_stream s) {
                                   got = ec;
                                   CHECK_FALSE(s);
                                 }));
    sig.emit(asio::cancellation_type::partial);
    co_await wait_until([&] { return got.has_value(); });
    CHECK(*got == make_error_code(errc::cancelled));
  });
}
