// The socket of tls_transport: an ssl::stream over the generic stream socket of
// socket_transport (TCP or Unix), made empty from an executor as the stream layer makes every
// socket, and filled by the transport's accept or connect.
#pragma once

#include <occams_rpc/transport/socket_transport.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <memory>
#include <string>
#include <utility>

namespace occams_rpc {

class tls_socket {
 public:
  using next_layer_type = socket_transport::socket_type;
  using stream_type = asio::ssl::stream<next_layer_type>;
  using executor_type = asio::any_io_executor;

  /// An empty socket: reads and writes need the stream that accept or connect put in.
  explicit tls_socket(executor_type ex) : ex_(std::move(ex)) {}
  tls_socket(tls_socket&&) noexcept = default;
  tls_socket& operator=(tls_socket&&) noexcept = default;

  const executor_type& get_executor() const noexcept { return ex_; }

  /// As ssl::stream::async_read_some (decrypted bytes). Precondition: has_stream().
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& bufs, Token&& token) {
    return stream_->async_read_some(bufs, std::forward<Token>(token));
  }
  /// As ssl::stream::async_write_some (bytes to encrypt). Precondition: has_stream().
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& bufs, Token&& token) {
    return stream_->async_write_some(bufs, std::forward<Token>(token));
  }
  /// Shuts the socket under TLS down (the server's graceful shutdown ends its reads this way:
  /// the next read fails, and the requests already read are still answered).
  void shutdown(asio::socket_base::shutdown_type what, boost::system::error_code& ec) {
    if (stream_) stream_->next_layer().shutdown(what, ec);
  }

  bool has_stream() const noexcept { return stream_ != nullptr; }
  stream_type& stream() noexcept { return *stream_; }
  const stream_type& stream() const noexcept { return *stream_; }
  next_layer_type& next_layer() noexcept { return stream_->next_layer(); }
  const next_layer_type& next_layer() const noexcept { return stream_->next_layer(); }

 private:
  friend class tls_transport;

  executor_type ex_;
  // Shared: a close_notify still being sent keeps the stream alive after the connection let go.
  std::shared_ptr<stream_type> stream_;
  bool established_ = false;        // the handshake succeeded
  bool send_close_notify_ = false;  // shutdown_send() asked for a graceful close
  std::string failure_;             // OpenSSL's reason of a start step failed with tls_handshake_failed
};

}  // namespace occams_rpc
