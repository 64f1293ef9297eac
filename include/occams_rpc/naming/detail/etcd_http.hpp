// One HTTP/1.1 POST to etcd's JSON gateway over Boost.Beast, its response body split into
// messages: a unary response is one message; a streaming one (/v3/watch) is one JSON object
// per line. Every step is bounded: connect + request + response headers within
// request_timeout (a unary call's whole body too), a streaming body's silence by `idle`, the
// header by max_header_bytes, each message by `max_message` bytes.
#pragma once

#include <occams_rpc/detail/config.hpp>
#include <occams_rpc/naming/config.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace occams_rpc::naming::detail {

struct etcd_target {
  std::string host;
  std::uint16_t port = 0;
};

struct post_options {
  std::chrono::milliseconds timeout;               ///< connect, request, headers (and whole body unless idle)
  std::optional<std::chrono::milliseconds> idle;   ///< streaming: the longest silence in the body
  std::size_t max_header = 16 * 1024;
  std::size_t max_message = 4 << 20;
};

/// Returns false, with the reason in `why`, when the exchange failed (I/O, timeout, a limit, a
/// status other than 200). `on_message` returns false to stop reading (a success). On an
/// idle timeout, `idle_expired` is set (and false is returned). `stream` is the caller's so
/// that it can close it to abort.
OCCAMS_RPC_DECL boost::asio::awaitable<bool> etcd_post(boost::beast::tcp_stream& stream, const etcd_target& where,
                                                       std::string_view target, std::string body,
                                                       const post_options& opt,
                                                       const std::function<bool(std::string_view)>& on_message,
                                                       std::string& why, bool* idle_expired = nullptr);

/// A unary call: the whole response body (one message) into `out`; aborts through `abort_io`
/// (set while in flight, cleared after).
OCCAMS_RPC_DECL boost::asio::awaitable<bool> etcd_call(boost::asio::any_io_executor ex, const etcd_target& where,
                                                       std::string_view target, std::string body,
                                                       const naming_config& cfg, std::function<void()>& abort_io,
                                                       std::string& out, std::string& why);

}  // namespace occams_rpc::naming::detail

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/naming/detail/impl/etcd_http.ipp>
#endif
