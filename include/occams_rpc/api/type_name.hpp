// api::type_name<T>: a short, language-neutral name of a type as it travels on the wire, for
// the reflection listing (api/reflection.hpp): `i64`, `string`, `bytes`, `[T]`, `{K: V}`,
// `T?`, `(A, B)`, `()`. Derived from the C++ type at compile time; a struct or enum is named
// by its C++ name (as the compiler spells it). Specialise api::type_name for your own name:
//
//   template <> struct occams_rpc::api::type_name<my_id> {
//     static std::string get() { return "my_id (u64)"; }
//   };
#pragma once

#include <occams_rpc/api/result.hpp>
#include <occams_rpc/codec/bytes.hpp>
#include <occams_rpc/codec/unit.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace occams_rpc::api {

template <class T>
struct type_name;

namespace detail {

/// The compiler's spelling of T (GCC and Clang put it in __PRETTY_FUNCTION__ after "T = ").
template <class T>
constexpr std::string_view compiler_type_name() noexcept {
  std::string_view p = __PRETTY_FUNCTION__;
  auto b = p.find("T = ");
  if (b == std::string_view::npos) return "?";
  b += 4;
  auto e = p.find_first_of(";]", b);
  return p.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
}

/// Without the anonymous namespaces, which say nothing to a reader of the listing.
inline std::string readable_name(std::string_view s) {
  std::string out;
  for (std::string_view anon : {std::string_view("{anonymous}::"), std::string_view("(anonymous namespace)::")}) {
    for (auto at = s.find(anon); at != std::string_view::npos; at = s.find(anon)) {
      out.append(s.substr(0, at));
      s.remove_prefix(at + anon.size());
    }
  }
  out.append(s);
  return out;
}

template <class T, template <class...> class Template>
inline constexpr bool is_instance_of = false;
template <template <class...> class Template, class... A>
inline constexpr bool is_instance_of<Template<A...>, Template> = true;

template <class T>
struct std_array_traits : std::false_type {};
template <class T, std::size_t N>
struct std_array_traits<std::array<T, N>> : std::true_type {
  using element = T;
  static constexpr std::size_t size = N;
};

template <class... T>
std::string list_names() {
  std::string out;
  ((out += (out.empty() ? "" : ", "), out += type_name<T>::get()), ...);
  return out;
}

template <class Tuple>
struct tuple_names;
template <template <class...> class Tuple, class... T>
struct tuple_names<Tuple<T...>> {
  static std::string get() { return list_names<T...>(); }
};

template <class T>
std::string default_type_name() {
  using namespace std::string_literals;
  if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_same_v<T, char>) return "i8";
  else if constexpr (std::is_integral_v<T>) return (std::is_signed_v<T> ? "i"s : "u"s) + std::to_string(8 * sizeof(T));
  else if constexpr (std::is_floating_point_v<T>) return "f" + std::to_string(8 * sizeof(T));
  else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) return "string";
  else if constexpr (std::is_same_v<T, bytes> || std::is_same_v<T, std::vector<char>> ||
                     std::is_same_v<T, std::vector<unsigned char>> || std::is_same_v<T, std::span<const char>>)
    return "bytes";
  else if constexpr (std::is_same_v<T, unit> || std::is_void_v<T>) return "()";
  else if constexpr (std::is_same_v<T, no_error>) return "";
  else if constexpr (is_instance_of<T, std::optional>) return type_name<typename T::value_type>::get() + "?";
  else if constexpr (is_instance_of<T, std::vector> || is_instance_of<T, std::list> || is_instance_of<T, std::deque> ||
                     is_instance_of<T, std::set> || is_instance_of<T, std::unordered_set>)
    return "[" + type_name<typename T::value_type>::get() + "]";
  else if constexpr (std_array_traits<T>::value)
    return "[" + type_name<typename std_array_traits<T>::element>::get() + "; " + std::to_string(std_array_traits<T>::size) + "]";
  else if constexpr (is_instance_of<T, std::map> || is_instance_of<T, std::unordered_map> || is_instance_of<T, std::multimap>)
    return "{" + type_name<typename T::key_type>::get() + ": " + type_name<typename T::mapped_type>::get() + "}";
  else if constexpr (is_instance_of<T, std::tuple> || is_instance_of<T, std::pair>) return "(" + tuple_names<T>::get() + ")";
  else return readable_name(compiler_type_name<T>());
}

}  // namespace detail

/// The name of T in the reflection listing; specialise it to choose another.
template <class T>
struct type_name {
  static std::string get() { return detail::default_type_name<T>(); }
};

/// A method's signature in the listing: `i64(i64, i64)`, `void(string)`, `[string]()`.
template <class M>
std::string signature_name() {
  using R = typename M::traits::return_type;
  return (std::is_void_v<R> ? std::string("void") : type_name<R>::get()) + "(" +
         detail::tuple_names<typename M::args_tuple>::get() + ")";
}

}  // namespace occams_rpc::api
