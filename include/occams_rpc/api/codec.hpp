// What the typed API needs from a codec, method by method: api::stub and api::router work with
// any codec that models codec_for_method for the methods they call or serve (msgpack_codec is
// only their default). docs/api.md, "Codecs", describes a codec for users.
#pragma once

#include <occams_rpc/api/error_codec.hpp>
#include <occams_rpc/api/result.hpp>
#include <occams_rpc/codec/codec.hpp>

#include <concepts>
#include <tuple>
#include <type_traits>

namespace occams_rpc::api {

namespace detail {
template <class C, class Tuple>
struct args_codec_for_tuple : std::false_type {};
template <class C, class... Args>
struct args_codec_for_tuple<C, std::tuple<Args...>> : std::bool_constant<args_codec_for<C, Args...>> {};

/// A method's error needs the codec only when error_codec says it travels encoded.
template <class C, class E>
inline constexpr bool error_codec_ok =
    std::is_same_v<E, no_error> || error_codec<E>::kind != error_kind::encoded ||
    (codec_for<C, E> && std::default_initializable<E>);
}  // namespace detail

/// Codec C can carry method M (an api::method): its arguments (encode_args on the client,
/// decode_args on the server), its value (encode on the server, decode on the client; a void
/// method's value is occams_rpc::unit) and, if error_codec<E> says it travels encoded, its
/// error. Stubs copy their codec into each call, so it must be copyable (and cheap to copy).
template <class C, class M>
concept codec_for_method = std::copy_constructible<C> &&
                           detail::args_codec_for_tuple<C, typename M::args_tuple>::value &&
                           codec_for<C, typename M::value_type> && detail::error_codec_ok<C, typename M::error_type>;

/// Whether the stub may give encode_args a view instead of a copy of an argument: a
/// std::string_view for a std::string parameter, a std::span<const char> for a
/// std::vector<char> or std::vector<unsigned char> one. A codec opts in with a member
/// `static constexpr bool encodes_views_as_values = true;`, promising that it encodes each view
/// exactly as the value it stands for. Without it the stub converts such arguments (a copy).
template <class C>
concept encodes_views_as_values = requires {
  requires C::encodes_views_as_values;
};

namespace detail {
/// The static_asserts behind stub and router: one readable message per missing piece, instead
/// of the errors from deep inside a call. Returns whether C fits M (the caller then stops).
template <class C, class M>
consteval bool check_codec() {
  static_assert(std::copy_constructible<C>, "occams_rpc: a codec must be copy-constructible (stubs copy it into each call)");
  static_assert(args_codec_for_tuple<C, typename M::args_tuple>::value,
                "occams_rpc: the codec cannot carry this method's arguments: it needs "
                "`std::error_code encode_args(byte_buffer&, const Args&...) const` and "
                "`std::error_code decode_args(std::span<const char>, std::tuple<Args...>&) const` for "
                "the method's argument types (see docs/api.md, \"Codecs\")");
  static_assert(codec_for<C, typename M::value_type>,
                "occams_rpc: the codec cannot carry this method's value type (occams_rpc::unit for a void "
                "method): it needs `std::error_code encode(const T&, byte_buffer&) const` and "
                "`std::error_code decode(std::span<const char>, T&) const` (see docs/api.md, \"Codecs\")");
  static_assert(error_codec_ok<C, typename M::error_type>,
                "occams_rpc: the codec cannot carry this method's error type, which travels encoded "
                "(error_kind::encoded): it needs encode and decode for it and the type must be "
                "default-constructible; or specialise api::error_codec for it (see docs/api.md)");
  return codec_for_method<C, M>;
}
}  // namespace detail

}  // namespace occams_rpc::api
