// The server side of typed services: a dispatch that routes "Service.method" to an
// implementation object's member function of the same name.
//
//   struct calculator {
//     std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }            // inline
//     asio::awaitable<std::int64_t> inc(std::int64_t n) { co_return n + 1; }         // coroutine
//     api::result<std::int64_t, std::string> div(std::int64_t a, std::int64_t b) {
//       if (b == 0) return api::fail(std::string("divide by zero"));
//       return a / b;
//     }
//   };
//   api::router routes;
//   routes.add<CalService>(calculator{});
//   server srv(ex, std::move(routes));
//
// A plain member function runs inline in the connection's reader (cheap work); one that returns
// asio::awaitable runs as its own coroutine, so a slow call never delays the others.
// The codec (msgpack_codec by default) is any model of api::codec_for_method for the methods
// served (api/codec.hpp): basic_router<my_codec>.
// Errors answered by the router itself: rpc_decode (a numeric, empty, dot-less or non-UTF-8
// action, or arguments that do not decode), rpc_service_notfound, rpc_method_notfound,
// rpc_internal_err (an exception escaped the implementation; only that call fails).
// enable_reflection() also serves `rpc_reflection.list`, the listing of every service's methods
// and signatures (api/reflection.hpp).
#pragma once

#include <occams_rpc/api/codec.hpp>
#include <occams_rpc/api/error_codec.hpp>
#include <occams_rpc/api/method.hpp>
#include <occams_rpc/api/reflection.hpp>
#include <occams_rpc/api/result.hpp>
#include <occams_rpc/codec/msgpack_codec.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/stream/server_request.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace occams_rpc::api {

namespace asio = boost::asio;

/// What an implementation's member function may take as its first parameter, before the
/// method's arguments: the call's deadline (the caller's, if its request carried one; see
/// docs/protocol.md, "v1 extensions"), to pass on with api::with_deadline(stub, ctx.deadline).
/// A coroutine method sees its call's cancellation (cancel frame, deadline passed, connection
/// died) through co_await asio::this_coro::cancellation_state.
struct call_context {
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

namespace detail {

template <class T>
struct awaitable_traits {
  static constexpr bool is_awaitable = false;
  using value_type = T;
};
template <class T, class Ex>
struct awaitable_traits<asio::awaitable<T, Ex>> {
  static constexpr bool is_awaitable = true;
  using value_type = T;
};

template <class M, class Impl, class Args>
struct implementation_of;
template <class M, class Impl, class... P>
struct implementation_of<M, Impl, std::tuple<P...>> {
  /// The member function may take a call_context first.
  static constexpr bool takes_context = requires(Impl& impl, call_context c, P&&... p) {
    M::invoke(impl, c, std::move(p)...);
  };
  static constexpr bool exists = takes_context || requires(Impl& impl, P&&... p) { M::invoke(impl, std::move(p)...); };
  static auto ret() {
    if constexpr (takes_context) return std::type_identity<decltype(M::invoke(std::declval<Impl&>(), std::declval<call_context>(), std::declval<P&&>()...))>{};
    else return std::type_identity<decltype(M::invoke(std::declval<Impl&>(), std::declval<P&&>()...))>{};
  }
  using return_type = typename decltype(ret())::type;
};

/// What an implementation of M may return (or co_return).
template <class M, class V>
inline constexpr bool valid_return =
    std::is_same_v<V, typename M::result_type> || std::is_convertible_v<V, typename M::value_type> ||
    (std::is_void_v<V> && std::is_same_v<typename M::value_type, unit>);

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

/// A hash for the router's "Service.method" table, a few instructions for a short name where
/// std::hash (murmur) takes ~60: eight bytes at a time. The keys are the router's own, so a
/// peer's choice of names can only make its own lookups miss.
struct action_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    constexpr std::uint64_t mul = 0xff51afd7ed558ccdull;
    std::uint64_t h = (s.size() + 1) * 0x9e3779b97f4a7c15ull;
    std::size_t n = s.size();
    const char* p = s.data();
    if (n >= 8) {
      std::uint64_t w;
      for (std::size_t i = 0; i + 8 < n; i += 8) {
        std::memcpy(&w, p + i, 8);
        h = (h ^ w) * mul;
      }
      std::memcpy(&w, p + n - 8, 8);  // the last eight (overlapping the loop's)
      h = (h ^ w) * mul;
    } else {
      std::uint64_t w = 0;
      for (std::size_t i = 0; i < n; ++i) w = (w << 8) | static_cast<unsigned char>(p[i]);
      h = (h ^ w) * mul;
    }
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};

/// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
inline bool is_valid_utf8(std::string_view s) noexcept {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  for (std::size_t i = 0; i < s.size();) {
    unsigned c = byte(i);
    std::size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 4;
    if (n == 4 || i + n >= s.size() + (n == 0)) return false;
    std::uint32_t cp = n == 0 ? c : c & (0x3f >> n);
    for (std::size_t k = 1; k <= n; ++k) {
      if ((byte(i + k) & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    static constexpr std::uint32_t min_for[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace detail

template <class Codec = msgpack_codec>
class basic_router {
 public:
  explicit basic_router(logger log = {}, Codec codec = {}) : log_(std::move(log)), codec_(std::move(codec)) {}

  /// Serves `Service` with `impl` (moved into the router). Returns *this.
  template <class Service, class Impl>
  basic_router& add(Impl impl) {
    return add<Service>(std::make_shared<Impl>(std::move(impl)));
  }

  /// Serves `Service` with a shared implementation object.
  template <class Service, class Impl>
  basic_router& add(std::shared_ptr<Impl> impl) {
    if (!impl) throw std::invalid_argument("occams_rpc: router::add needs an implementation object");
    if (Service::service_name.starts_with(reserved_service_prefix))
      throw std::invalid_argument("occams_rpc: service names starting with \"rpc_\" are the framework's");
    auto& entry = add_service<Service>();
    entry.impl = impl;
    add_methods<Impl>(entry, Service::service_name, impl.get(), typename Service::methods{});
    return *this;
  }

  /// Also serves `rpc_reflection.list` (api/reflection.hpp): the services of this router, the
  /// ones added later included. Returns *this.
  basic_router& enable_reflection() {
    using M = rpc_reflection::list;
    if constexpr (detail::check_codec<Codec, M>()) {  // else a static_assert said why
      add_method_entry(add_service<rpc_reflection>(), rpc_reflection::service_name, M::method_name,
                       method_entry{&answer_listing, nullptr});
    }
    return *this;
  }

  /// What this router serves (what rpc_reflection.list answers), in the order added.
  const std::vector<service_info>& services() const noexcept { return listing_; }

  /// The dispatch: routes one request.
  void operator()(server_request req) const {
    if (!req.has_string_action()) return req.respond_error(errc::decode);
    std::string_view act = req.action();
    // One lookup of the whole name for the methods served; the two-level search below only
    // tells the errors apart.
    if (auto hit = actions_.find(act); hit != actions_.end())
      return hit->second.invoke(*this, hit->second.impl, std::move(req));
    auto dot = act.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == act.size()) return req.respond_error(errc::decode);
    auto svc = services_.find(act.substr(0, dot));
    if (svc == services_.end())
      return req.respond_error(detail::is_valid_utf8(act) ? errc::service_not_found : errc::decode);
    auto m = svc->second.methods.find(act.substr(dot + 1));
    if (m == svc->second.methods.end())
      return req.respond_error(detail::is_valid_utf8(act) ? errc::method_not_found : errc::decode);
    m->second.invoke(*this, m->second.impl, std::move(req));
  }

  const logger& get_logger() const noexcept { return log_; }

 private:
  struct method_entry {
    void (*invoke)(const basic_router&, void* impl, server_request&&) = nullptr;
    void* impl = nullptr;
  };
  struct service_entry {
    std::shared_ptr<void> impl;
    detail::string_map<method_entry> methods;
  };

  template <class Service>
  service_entry& add_service() {
    auto [it, fresh] = services_.try_emplace(std::string(Service::service_name));
    if (!fresh) throw std::invalid_argument("occams_rpc: service " + std::string(Service::service_name) + " added twice");
    listing_.push_back(describe_service<Service>());
    return it->second;
  }

  static void answer_listing(const basic_router& self, void*, server_request&& req) {
    std::tuple<> none;
    if (self.codec_.decode_args(req.msg(), none)) return req.respond_error(errc::decode);
    self.respond_value(req, self.listing_);
  }

  template <class Impl, class... M>
  void add_methods(service_entry& s, std::string_view service, Impl* impl, method_list<M...>) {
    (add_method<M, Impl>(s, service, impl), ...);
  }

  template <class M, class Impl>
  void add_method(service_entry& s, std::string_view service, Impl* impl) {
    using impl_of = detail::implementation_of<M, Impl, typename M::args_tuple>;
    static_assert(impl_of::exists,
                  "occams_rpc: the implementation has no member function for a method of the service: "
                  "it must have the method's name and take the method's argument types (the method is "
                  "the M in the instantiation below)");
    if constexpr (impl_of::exists && detail::check_codec<Codec, M>()) {  // else a static_assert said why
      using ret = typename impl_of::return_type;
      static_assert(detail::valid_return<M, typename detail::awaitable_traits<ret>::value_type>,
                    "occams_rpc: an implementation must return the method's value type (or void for a "
                    "void method), api::result<value, error type>, or asio::awaitable of one of these");
      add_method_entry(s, service, M::method_name, method_entry{&invoke<M, Impl>, impl});
    }
  }

  /// Files a method under its service, and under its whole action name when the dispatch's
  /// split at the last dot finds it (a method name with a dot never matched; it still does not).
  void add_method_entry(service_entry& s, std::string_view service, std::string_view method, method_entry e) {
    s.methods[std::string(method)] = e;
    if (!service.empty() && !method.empty() && method.find('.') == std::string_view::npos)
      actions_[std::string(service) + '.' + std::string(method)] = e;
  }

  template <class M, class Impl>
  static void invoke(const basic_router& self, void* p, server_request&& req) {
    auto& impl = *static_cast<Impl*>(p);
    typename M::args_tuple args;
    if (self.codec_.decode_args(req.msg(), args)) return req.respond_error(errc::decode);
    using impl_of = detail::implementation_of<M, Impl, typename M::args_tuple>;
    using ret = typename impl_of::return_type;
    if constexpr (detail::awaitable_traits<ret>::is_awaitable) {
      auto ex = req.get_executor();
      // The coroutine's this_coro::cancellation_state follows the request's cancellation.
      auto done = req.bind_cancellation([](std::exception_ptr) {});  // run_coroutine catches all
      call_context ctx{req.deadline()};
      asio::co_spawn(ex, run_coroutine<M>(self, impl, ctx, std::move(args), std::move(req)), std::move(done));
    } else {
      call_context ctx{req.deadline()};
      auto call = [&](auto&... a) -> decltype(auto) {
        if constexpr (impl_of::takes_context) return M::invoke(impl, ctx, std::move(a)...);
        else return M::invoke(impl, std::move(a)...);
      };
      try {
        if constexpr (std::is_void_v<ret>) {
          std::apply(call, args);
          self.respond_value(req, unit{});
        } else {
          self.template respond<M>(req, std::apply(call, args));
        }
      } catch (...) {
        self.log_escaped(M::action);
      }
      if (req) req.respond_error(errc::internal);
    }
  }

  // The router outlives the coroutine: the server owns it, and each connection (kept alive by
  // the request this coroutine holds until it answers) shares that ownership.
  template <class M, class Impl>
  static asio::awaitable<void> run_coroutine(const basic_router& self, Impl& impl, call_context ctx,
                                             typename M::args_tuple args, server_request req) {
    try {
      auto call = [&](auto&... a) {
        if constexpr (detail::implementation_of<M, Impl, typename M::args_tuple>::takes_context)
          return M::invoke(impl, ctx, std::move(a)...);
        else
          return M::invoke(impl, std::move(a)...);
      };
      using ret = typename detail::awaitable_traits<decltype(std::apply(call, args))>::value_type;
      if constexpr (std::is_void_v<ret>) {
        co_await std::apply(call, args);
        self.respond_value(req, unit{});
      } else {
        self.template respond<M>(req, co_await std::apply(call, args));
      }
    } catch (...) {
      self.log_escaped(M::action);
    }
    if (req) req.respond_error(errc::internal);
  }

  /// Logs the exception being handled (one that escaped an implementation).
  void log_escaped(std::string_view action) const noexcept {
    try {
      throw;
    } catch (const std::exception& e) {
      log_.warn("{} threw: {}", action, e.what());
    } catch (...) {
      log_.warn("{} threw a non-standard exception", action);
    }
  }

  template <class M, class V>
  void respond(server_request& req, V&& v) const {
    if constexpr (std::is_same_v<std::decay_t<V>, typename M::result_type>) {
      if (v.has_value()) respond_value(req, *v);
      else if (v.has_error()) respond_user_error<typename M::error_type>(req, v.error());
      else respond_framework_error(req, v.framework_error());
    } else {
      respond_value(req, static_cast<const typename M::value_type&>(v));
    }
  }

  template <class T>
  void respond_value(server_request& req, const T& v) const {
    req.respond_with([&](byte_buffer& out) { return codec_.encode(v, out); });
  }

  template <class E>
  void respond_user_error(server_request& req, const E& e) const {
    using EC = error_codec<E>;
    if constexpr (EC::kind == error_kind::code) {
      req.respond_error_code(EC::to_code(e));
    } else if constexpr (EC::kind == error_kind::string) {
      // to_string may return a std::string: bound to a reference, that temporary lives until
      // the answer is written (a string_view initialised from it would dangle at once).
      const auto& owner = EC::to_string(e);
      std::string_view text = owner;
      if (from_wire_string(text))  // the client will read it as that framework error
        log_.warn("a method answered the user error \"{}\", which reads as a framework error", text);
      req.respond_error_string(text);
    } else {
      byte_buffer encoded;
      if (codec_.encode(e, encoded)) return req.respond_error(errc::encode);
      req.respond_error_string(encoded.view());
    }
  }

  static void respond_framework_error(server_request& req, std::error_code ec) {
    if (ec.category() == remote_category()) return req.respond_error_code(static_cast<std::uint32_t>(ec.value()));
    req.respond_error(to_wire_error(ec));
  }

  logger log_;
  Codec codec_;
  detail::string_map<service_entry> services_;
  std::unordered_map<std::string, method_entry, detail::action_hash, std::equal_to<>> actions_;  // "Service.method"
  std::vector<service_info> listing_;
};

using router = basic_router<>;

}  // namespace occams_rpc::api
