// The client side of a typed service: `co_await stub.add(1, 2)`.
//
// A stub is a thin, copyable view of a channel (client_stream, client_pool, failover_pool):
// each method encodes its arguments with the codec, makes the call with the action
// "Service.method", and decodes the answer into an api::result holding the value, the
// method's own error, or a framework error. The codec is any model of api::codec_for_method
// (api/codec.hpp); msgpack_codec is the default.
//
// A method returns a deferred operation, so that every Asio completion token works:
//   auto r = co_await cal.add(1, 2);                        // in a coroutine
//   auto f = cal.add(1, 2)(asio::use_future);               // from plain code: f.get()
//   cal.add(1, 2)([](api::result<std::int64_t> r) { ... }); // a callback
// The arguments are encoded at once (they may be temporaries); nothing is sent until the
// operation is launched.
#pragma once

#include <occams_rpc/api/codec.hpp>
#include <occams_rpc/api/error_codec.hpp>
#include <occams_rpc/api/method.hpp>
#include <occams_rpc/api/result.hpp>
#include <occams_rpc/codec/bytes.hpp>
#include <occams_rpc/codec/msgpack_codec.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/recycled_buffers.hpp>
#include <occams_rpc/session/balancer.hpp>
#include <occams_rpc/stream/call_response.hpp>
#include <occams_rpc/stream/client_stream.hpp>
#include <occams_rpc/stream/detail/call_deadline.hpp>
#include <occams_rpc/stream/detail/forwarding_handler.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace occams_rpc::api {

namespace asio = boost::asio;

/// Something a stub can call through: client_stream (and, later, client_pool, failover_pool).
template <class C>
concept channel = requires(C& c, proto::action a, std::span<const char> s, call_response r) {
  c.async_call(a, s, s, std::move(r), [](std::error_code, call_response) {});
  { c.get_executor() } -> std::convertible_to<asio::any_io_executor>;
};

namespace detail {

/// A `bytes` decoded as a view of the response takes the response buffer along: it outlives
/// the call, whose buffers go back to the pool.
inline void adopt_response(bytes& b, call_response& r) noexcept {
  const char* begin = r.msg.data();
  if (!b.owns() && !b.empty() && b.data() >= begin && b.end() <= begin + r.msg.size()) b.adopt(std::move(r.msg));
}

/// Turns a channel's (error, response) into the method's result.
template <class M, class Codec>
typename M::result_type decode_result(const Codec& codec, std::error_code ec, call_response& r) {
  using R = typename M::result_type;
  using T = typename M::value_type;
  using E = typename M::error_type;
  if (!ec) {
    T value{};
    if (!r.msg.empty())  // an empty msg means the default value (PROTOCOL.md)
      if (auto dec = codec.decode(r.msg.span(), value)) return R(dec);
    if constexpr (std::is_same_v<T, bytes>) adopt_response(value, r);
    return R(std::move(value));
  }
  if constexpr (!std::is_same_v<E, no_error>) {
    using EC = error_codec<E>;
    if constexpr (EC::kind == error_kind::code) {
      if (ec.category() == remote_category()) return R(fail(EC::from_code(static_cast<std::uint32_t>(ec.value()))));
    } else if (ec == errc::remote_error) {
      if constexpr (EC::kind == error_kind::string) {
        return R(fail(EC::from_string(r.msg.view())));
      } else {
        E e{};
        if (codec.decode(r.msg.span(), e)) return R(errc::decode);
        if constexpr (std::is_same_v<E, bytes>) adopt_response(e, r);
        return R(fail(std::move(e)));
      }
    }
  }
  return R(ec);
}

/// Reads a method's error answer for the failover hint its error type declares.
template <class M, class Codec>
failover_hint classify_error(std::error_code ec, std::span<const char> msg) {
  using E = typename M::error_type;
  using EC = error_codec<E>;
  if constexpr (EC::kind == error_kind::code) {
    if (ec.category() != remote_category()) return {};
    return failover_of(EC::from_code(static_cast<std::uint32_t>(ec.value())));
  } else {
    if (ec != errc::remote_error) return {};
    if constexpr (EC::kind == error_kind::string) {
      return failover_of(EC::from_string(std::string_view(msg.data(), msg.size())));
    } else {
      E e{};
      if (Codec{}.decode(msg, e)) return {};  // undecodable: the usual rules
      return failover_of(e);
    }
  }
}

/// The classifier of M's error type, or null when it declares no failover hint.
template <class M, class Codec>
constexpr failover_classifier classifier_for() {
  using E = typename M::error_type;
  if constexpr (!std::is_same_v<E, no_error> && declares_failover<E> && std::is_default_constructible_v<Codec>)
    return &classify_error<M, Codec>;
  else
    return nullptr;
}

/// Decodes a typed call's response, then completes the user's handler. It owns the encoded
/// request, which the write batch may reference until the call completes. The channel gets it
/// inside a forwarding_handler: to Asio, that is the user's handler (executor, allocator and
/// cancellation slot).
template <class M, class Codec>
struct typed_decode {
  Codec codec;
  byte_buffer request;
  std::chrono::steady_clock::time_point deadline;  // the call's (read by the channel), or none
  std::optional<std::uint64_t> key;                 // the call's hashed key (a failover_pool reads it)
  static constexpr failover_classifier classifier = classifier_for<M, Codec>();
  // The response by reference: it is the channel's (moved out of its pending entry), no copy.
  template <class Handler>
  void operator()(Handler&& handler, std::error_code ec, call_response&& r) {
    auto result = decode_result<M>(codec, ec, r);
    // Before the caller resumes and makes its next call (a `bytes` result may have taken the
    // msg buffer; it gives it back when destroyed).
    occams_rpc::detail::recycled_buffers::give(std::move(r.msg));
    occams_rpc::detail::recycled_buffers::give(std::move(r.blob));
    occams_rpc::detail::recycled_buffers::give(std::move(request));
    std::move(handler)(std::move(result));
  }
};

template <class P>
inline constexpr bool is_byte_vector = std::is_same_v<P, std::vector<char>> || std::is_same_v<P, std::vector<unsigned char>>;

/// Whether an argument of type A may be given for a parameter of type P: anything P can be
/// made from, and bytes as a std::span<const char> for a byte vector (sent without a copy).
template <class P, class A>
inline constexpr bool accepts =
    std::is_constructible_v<P, A&&> || (is_byte_vector<P> && std::is_convertible_v<A&&, std::span<const char>>);

/// An argument as the codec should see it: unchanged when it already has the parameter's
/// type; text for a string and bytes for a byte vector as views (no copy), if the codec
/// encodes views as the values they stand for; else converted.
template <class Codec, class P, class A>
decltype(auto) as_param(A&& a) {
  constexpr bool views = encodes_views_as_values<Codec>;
  if constexpr (std::is_same_v<std::remove_cvref_t<A>, P>) return static_cast<const P&>(a);
  else if constexpr (views && std::is_same_v<P, std::string> && std::is_convertible_v<A&&, std::string_view>)
    return std::string_view(std::forward<A>(a));
  else if constexpr (is_byte_vector<P> && std::is_convertible_v<A&&, std::span<const char>>) {
    if constexpr (views) return std::span<const char>(std::forward<A>(a));
    else {
      std::span<const char> s(std::forward<A>(a));
      return P(s.begin(), s.end());
    }
  } else return P(std::forward<A>(a));
}

template <class Args, class... A>
struct args_match : std::false_type {};
template <class... P, class... A>
  requires(sizeof...(P) == sizeof...(A))
struct args_match<std::tuple<P...>, A...> : std::bool_constant<(accepts<P, A> && ...)> {};

}  // namespace detail

template <class Stub>
Stub with_deadline(Stub stub, std::optional<std::chrono::steady_clock::time_point> deadline);
template <class Stub>
Stub with_key(Stub stub, std::string_view key);
template <class Stub, std::integral K>
Stub with_key(Stub stub, K key);

template <class Channel, class Codec = msgpack_codec>
class stub_base {
  static_assert(channel<Channel>, "occams_rpc: a stub's channel must have async_call(action, msg, blob, call_response, token) and get_executor(), like client_stream");

 public:
  using channel_type = Channel;

  /// The channel must outlive the stub and the calls made through it.
  explicit stub_base(Channel& ch, Codec codec = {}) : channel_(&ch), codec_(std::move(codec)) {}

  Channel& channel() const noexcept { return *channel_; }

  template <class Stub>
  friend Stub with_deadline(Stub stub, std::optional<std::chrono::steady_clock::time_point> deadline);
  template <class Stub>
  friend Stub with_key(Stub stub, std::string_view key);
  template <class Stub, std::integral K>
  friend Stub with_key(Stub stub, K key);

  /// Calls method M (a type from the service, e.g. CalService::add) with `args`.
  /// Completion signature: void(M::result_type).
  template <class M, class... A>
  auto call(A&&... args) const {
    static_assert(sizeof...(A) == M::arity,
                  "occams_rpc: wrong number of arguments for this method (a completion token is not an "
                  "argument: give it to the returned operation, e.g. stub.add(1, 2)(asio::use_future))");
    static_assert(detail::args_match<typename M::args_tuple, A...>::value,
                  "occams_rpc: an argument does not convert to the method's parameter type");
    if constexpr (detail::check_codec<Codec, M>()) {  // else its static_assert said why
      byte_buffer request = occams_rpc::detail::recycled_buffers::take();
      std::error_code ec = encode<M>(request, std::index_sequence_for<A...>{}, std::forward<A>(args)...);
      return asio::async_initiate<const asio::deferred_t&, void(typename M::result_type)>(
          initiate<M>{channel_, codec_, deadline_, key_}, asio::deferred, std::move(request), ec);
    }
  }

 private:
  template <class M, std::size_t... I, class... A>
  std::error_code encode(byte_buffer& into, std::index_sequence<I...>, A&&... args) const {
    using params = typename M::args_tuple;
    return codec_.encode_args(into, detail::as_param<Codec, std::tuple_element_t<I, params>>(std::forward<A>(args))...);
  }

  template <class M>
  struct initiate {
    Channel* channel;
    Codec codec;
    std::chrono::steady_clock::time_point deadline;
    std::optional<std::uint64_t> key;

    // `request` by reference: a deferred operation launched as an rvalue moves it straight into
    // the completion; one launched as an lvalue gives a const one, copied.
    template <class Handler, class Buffer>
    void operator()(Handler&& handler, Buffer&& request, std::error_code encode_error) const {
      using R = typename M::result_type;
      if (encode_error) {
        auto ex = asio::get_associated_executor(handler, channel->get_executor());
        asio::post(ex, [h = std::forward<Handler>(handler), encode_error]() mutable { std::move(h)(R(encode_error)); });
        return;
      }
      // Built in place: the completion is moved only by the channel. The encoded request
      // moves with it (the same heap memory), so it stays valid until the call completes, as
      // the channel requires.
      occams_rpc::detail::forwarding_handler<std::decay_t<Handler>, detail::typed_decode<M, Codec>> completion{
          std::forward<Handler>(handler), {codec, std::forward<Buffer>(request), deadline, key}};
      auto msg = completion.adapt.request.span();
      channel->async_call(proto::action(M::action), msg, {}, call_response{.msg = occams_rpc::detail::recycled_buffers::take()},
                          std::move(completion));
    }
  };

  Channel* channel_;
  Codec codec_;
  std::chrono::steady_clock::time_point deadline_ = occams_rpc::detail::no_deadline;
  std::optional<std::uint64_t> key_;
};

/// A copy of `stub` whose calls carry `deadline` (none: call_timeout alone): each times out
/// at the sooner of the two, and with the deadline extension on tells the server its
/// remaining time. A handler passes its own on in one line:
/// `co_await api::with_deadline(cal, req.deadline()).add(1, 2);`
template <class Stub>
Stub with_deadline(Stub stub, std::optional<std::chrono::steady_clock::time_point> deadline) {
  static_assert(requires { typename Stub::channel_type; }, "occams_rpc: with_deadline takes a stub");
  stub.deadline_ = deadline.value_or(occams_rpc::detail::no_deadline);
  return stub;
}

/// A copy of `stub` whose calls carry `key`: over a failover_pool with
/// failover_order::consistent_hash, calls with the same key go to the same address (see
/// docs/pools.md). Other channels and policies ignore it. The key is hashed here, once:
/// `co_await api::with_key(kv, user_id).get(user_id);`
template <class Stub>
Stub with_key(Stub stub, std::string_view key) {
  static_assert(requires { typename Stub::channel_type; }, "occams_rpc: with_key takes a stub");
  stub.key_ = session::hash_key(key);
  return stub;
}
template <class Stub, std::integral K>
Stub with_key(Stub stub, K key) {
  static_assert(requires { typename Stub::channel_type; }, "occams_rpc: with_key takes a stub");
  stub.key_ = session::hash_key(static_cast<std::uint64_t>(key));
  return stub;
}

/// The stub of `Service` over `Channel`: `api::stub<CalService> cal(stream);`.
template <class Service, class Channel = client_stream, class Codec = msgpack_codec>
using stub = typename Service::template stub<Channel, Codec>;

}  // namespace occams_rpc::api
