// Transports are objects: a server and a pool use the very object they are given (its state
// included), listen_options reach the listener, and accept lands a connection on the executor
// its caller chose.
#include "test_support.hpp"

#include <occams_rpc/transport/memory_transport.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <mutex>
#include <thread>

using namespace occams_rpc;
using namespace test;

namespace {

/// What a counting_transport saw; shared by every copy of one transport object.
struct transport_counts {
  std::atomic<int> connects{0};
  std::atomic<int> client_starts{0};
  std::atomic<int> server_starts{0};
  std::atomic<int> accepts{0};
  std::atomic<int> listens{0};
  std::atomic<int> closes{0};
};

/// socket_transport with state: counts what the stream layer asks of it and tags the peers it
/// describes.
class counting_transport {
 public:
  using socket_type = socket_transport::socket_type;

  class listener {
   public:
    listener(socket_transport::listener inner, std::shared_ptr<transport_counts> counts)
        : inner_(std::move(inner)), counts_(std::move(counts)) {}
    asio::awaitable<std::error_code> accept(socket_type& s) {
      auto ec = co_await inner_.accept(s);
      if (!ec) ++counts_->accepts;
      co_return ec;
    }
    address local_address() const { return inner_.local_address(); }
    void close() { inner_.close(); }

   private:
    socket_transport::listener inner_;
    std::shared_ptr<transport_counts> counts_;
  };
  using listener_type = listener;

  counting_transport(std::string tag, std::shared_ptr<transport_counts> counts)
      : tag_(std::move(tag)), counts_(std::move(counts)) {}

  asio::awaitable<std::error_code> connect(asio::any_io_executor ex, const address& to,
                                           std::chrono::milliseconds timeout, socket_type& s) const {
    ++counts_->connects;
    co_return co_await inner_.connect(ex, to, timeout, s);
  }
  listener listen(asio::any_io_executor ex, const address& where, const listen_options& options) const {
    ++counts_->listens;
    return listener(inner_.listen(std::move(ex), where, options), counts_);
  }
  asio::awaitable<std::error_code> start(socket_type& s, transport_role role) const {
    ++(role == transport_role::client ? counts_->client_starts : counts_->server_starts);
    co_return co_await inner_.start(s, role);
  }
  void close(socket_type& s) const noexcept {
    ++counts_->closes;
    inner_.close(s);
  }
  void shutdown_send(socket_type& s) const noexcept { inner_.shutdown_send(s); }
  std::size_t available(socket_type& s) const noexcept { return inner_.available(s); }
  std::string describe_peer(const socket_type& s) const { return tag_ + ":" + inner_.describe_peer(s); }

 private:
  socket_transport inner_;
  std::string tag_;
  std::shared_ptr<transport_counts> counts_;
};
static_assert(transport<counting_transport>);

struct echo_numeric {
  void operator()(server_request req) { req.respond(req.msg(), req.blob()); }
};

/// A logger keeping every line (the server logs on its own executor; the test reads after).
struct captured_log {
  std::mutex mutex;
  std::vector<std::string> lines;
  logger make() {
    return logger(log_level::debug, [this](log_level, std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(line);
    });
  }
  bool contains(std::string_view part) {
    std::lock_guard lock(mutex);
    return std::any_of(lines.begin(), lines.end(), [&](auto& l) { return l.find(part) != std::string::npos; });
  }
};

}  // namespace

TEST_CASE("a server and a client_pool use the transport object they are given, state and all",
          "[stream][transport]") {
  asio::io_context io;
  auto server_counts = std::make_shared<transport_counts>();
  auto client_counts = std::make_shared<transport_counts>();
  captured_log server_log;
  basic_server<echo_numeric, counting_transport> srv(io.get_executor(), echo_numeric{}, {}, server_log.make(),
                                                     counting_transport("tagged-server", server_counts));
  auto where = srv.listen(listen_address(unix_transport()));
  CHECK(server_counts->listens == 1);
  pool_config pcfg;
  pcfg.connections = 2;
  {
    basic_client_pool<counting_transport> pool(io.get_executor(), where, {}, pcfg, {},
                                               counting_transport("tagged-client", client_counts));
    run(io, [&]() -> asio::awaitable<void> {
      for (int i = 0; i < 10; ++i) {
        auto [ec, r] = co_await pool.async_call(1, text_bytes("hi"), {}, {}, tok);
        REQUIRE_FALSE(ec);
        CHECK(str(r.msg) == "hi");
      }
      co_await wait_until([&] { return pool.healthy_connections() == 2 && srv.connection_count() == 2; });
      co_await pool.async_close(tok);
      co_await wait_until([&] { return srv.connection_count() == 0; });
    });
  }
  // The pool's transport made and started both its connections, and closed them.
  CHECK(client_counts->connects == 2);
  CHECK(client_counts->client_starts == 2);
  CHECK(client_counts->server_starts == 0);
  CHECK(client_counts->closes >= 2);
  // The server's accepted, started (as a server) and closed them, and described the peers.
  CHECK(server_counts->accepts == 2);
  CHECK(server_counts->server_starts == 2);
  CHECK(server_counts->client_starts == 0);
  CHECK(server_counts->connects == 0);
  CHECK(server_counts->closes >= 2);
  CHECK(server_log.contains("accepted a connection from tagged-server:"));
}

TEST_CASE("a client_stream connects through the transport object passed to async_connect",
          "[stream][transport]") {
  asio::io_context io;
  auto counts = std::make_shared<transport_counts>();
  basic_server<echo_numeric, counting_transport> srv(io.get_executor(), echo_numeric{}, {}, {},
                                                     counting_transport("s", counts));
  auto where = srv.listen(listen_address(false));
  run(io, [&]() -> asio::awaitable<void> {
    auto [ec, client] = co_await basic_client_stream<counting_transport>::async_connect(
        counting_transport("c", counts), co_await asio::this_coro::executor, where, {}, {}, tok);
    REQUIRE_FALSE(ec);
    auto [cec, r] = co_await client.async_call(1, text_bytes("x"), {}, {}, tok);
    REQUIRE_FALSE(cec);
    co_await client.async_close(tok);
  });
  CHECK(counts->connects == 1);
  CHECK(counts->client_starts == 1);
  CHECK(counts->server_starts == 1);
  CHECK(counts->accepts == 1);
  CHECK(counts->closes >= 1);  // the client's close went through the object it was given
}

TEST_CASE("listen_options.reuse_port lets two listeners bind the same TCP port; without it the second fails",
          "[stream][transport]") {
  asio::io_context io;
  socket_transport t;
  auto first = t.listen(io.get_executor(), address::tcp("127.0.0.1", 0), {.reuse_port = true});
  address shared = first.local_address();
  REQUIRE(shared.port != 0);
  auto second = t.listen(io.get_executor(), shared, {.reuse_port = true});
  CHECK(second.local_address().port == shared.port);
  CHECK_THROWS(t.listen(io.get_executor(), shared, {}));

  // Two servers on one port: every connection is accepted by one of them and served.
  basic_server<echo_numeric> a(io.get_executor(), echo_numeric{});
  auto where = a.listen(address::tcp("127.0.0.1", 0), {.backlog = 64, .reuse_port = true});
  basic_server<echo_numeric> b(io.get_executor(), echo_numeric{});
  CHECK(b.listen(where, {.reuse_port = true}).port == where.port);
  first.close();
  second.close();
  run(io, [&]() -> asio::awaitable<void> {
    std::vector<client_stream> clients;
    for (int i = 0; i < 8; ++i) {
      clients.push_back(co_await connect(where));
      auto [ec, r] = co_await clients.back().async_call(1, text_bytes("x"), {}, {}, tok);
      REQUIRE_FALSE(ec);
    }
    CHECK(a.accepted_count() + b.accepted_count() == 8);
  });
}

namespace {

/// Accepts on a listener run by `listener_io` onto a socket made on `conn_io`, both contexts
/// running; checks the connection's executor and that its reads complete on conn_io's thread.
template <class Transport>
void accept_onto_other_context(Transport t, const address& where) {
  asio::io_context listener_io, conn_io;
  auto guard = asio::make_work_guard(conn_io);
  std::thread conn_thread([&] { conn_io.run(); });
  auto l = t.listen(listener_io.get_executor(), where, {});
  typename Transport::socket_type accepted(conn_io.get_executor());
  bool read_on_conn_thread = false;
  std::string got;
  char buf[4] = {};
  run(listener_io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    typename Transport::socket_type client(ex);
    auto cec = co_await t.connect(ex, l.local_address(), 2s, client);
    REQUIRE_FALSE(cec);
    auto aec = co_await l.accept(accepted);
    REQUIRE_FALSE(aec);
    CHECK(accepted.get_executor() == asio::any_io_executor(conn_io.get_executor()));
    co_await asio::async_write(client, asio::buffer(std::string_view("ping")), asio::deferred);
    // The accepted connection's read, started on its own context, completes there.
    std::atomic<bool> done{false};
    asio::post(conn_io, [&] {
      asio::async_read(accepted, asio::buffer(buf), [&](boost::system::error_code ec, std::size_t n) {
        read_on_conn_thread = !ec && conn_io.get_executor().running_in_this_thread() &&
                              !listener_io.get_executor().running_in_this_thread();
        got.assign(buf, n);
        done = true;
      });
    });
    co_await wait_until([&] { return done.load(); });
    t.close(client);
  });
  asio::post(conn_io, [&] { t.close(accepted); });
  guard.reset();
  conn_thread.join();
  CHECK(read_on_conn_thread);
  CHECK(got == "ping");
}

}  // namespace

TEST_CASE("accept puts the connection on the executor its caller chose, not the listener's",
          "[stream][transport]") {
  SECTION("TCP") { accept_onto_other_context(socket_transport{}, address::tcp("127.0.0.1", 0)); }
  SECTION("Unix socket") { accept_onto_other_context(socket_transport{}, parse_address(listen_address(true))); }
  SECTION("memory") { accept_onto_other_context(memory_transport{}, address::tcp("memory-accept-test", 0)); }
}
