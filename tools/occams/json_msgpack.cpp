// JSON <-> msgpack for `occams` (see json_msgpack.hpp for the forms).
#include "json_msgpack.hpp"

#include <occams_rpc/api/router.hpp>  // api::detail::is_valid_utf8
#include <occams_rpc/codec/msgpack_codec.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace occams_cli {

namespace json = boost::json;

namespace {

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool is_utf8(std::string_view s) { return occams_rpc::api::detail::is_valid_utf8(s); }

std::string_view as_view(const json::string& s) { return {s.data(), s.size()}; }

/// The base64 string of a one-key form, decoded.
std::string form_bytes(std::string_view form, const json::value& v) {
  if (!v.is_string()) throw conversion_error("{\"" + std::string(form) + "\": ...} takes a base64 string");
  try {
    return base64_decode(as_view(v.get_string()));
  } catch (const conversion_error& e) {
    throw conversion_error("{\"" + std::string(form) + "\": ...}: " + e.what());
  }
}

/// Packs a one-key object `{"$form": v}`.
void pack_form(std::string_view form, const json::value& v, msgpack::packer<msgpack::sbuffer>& out) {
  if (form == "$bin") {
    auto b = form_bytes(form, v);
    out.pack_bin(static_cast<std::uint32_t>(b.size()));
    out.pack_bin_body(b.data(), static_cast<std::uint32_t>(b.size()));
  } else if (form == "$str") {
    auto b = form_bytes(form, v);
    out.pack_str(static_cast<std::uint32_t>(b.size()));
    out.pack_str_body(b.data(), static_cast<std::uint32_t>(b.size()));
  } else if (form == "$ext") {
    const json::array* a = v.if_array();
    if (!a || a->size() != 2 || !(*a)[0].is_int64() || (*a)[0].get_int64() < -128 || (*a)[0].get_int64() > 127)
      throw conversion_error("{\"$ext\": [TYPE, \"BASE64\"]} takes a type in -128..127 and a base64 string");
    auto b = form_bytes(form, (*a)[1]);
    out.pack_ext(b.size(), static_cast<std::int8_t>((*a)[0].get_int64()));
    out.pack_ext_body(b.data(), static_cast<std::uint32_t>(b.size()));
  } else if (form == "$map") {
    const json::array* a = v.if_array();
    if (!a) throw conversion_error("{\"$map\": [[KEY, VALUE], ...]} takes an array of pairs");
    out.pack_map(static_cast<std::uint32_t>(a->size()));
    for (const auto& kv : *a) {
      const json::array* pair = kv.if_array();
      if (!pair || pair->size() != 2) throw conversion_error("{\"$map\": [[KEY, VALUE], ...]}: each entry is a [KEY, VALUE] pair");
      pack_json((*pair)[0], out);
      pack_json((*pair)[1], out);
    }
  } else if (form == "$float") {
    std::string_view s = v.is_string() ? as_view(v.get_string()) : std::string_view();
    if (s == "nan") out.pack_double(std::numeric_limits<double>::quiet_NaN());
    else if (s == "inf") out.pack_double(std::numeric_limits<double>::infinity());
    else if (s == "-inf") out.pack_double(-std::numeric_limits<double>::infinity());
    else throw conversion_error("{\"$float\": ...} takes \"nan\", \"inf\" or \"-inf\"");
  } else {
    throw conversion_error("unknown form {\"" + std::string(form) +
                           "\": ...}: the forms are $bin, $ext, $map, $str and $float; write a map with this "
                           "key as {\"$map\": [[\"" + std::string(form) + "\", VALUE]]}");
  }
}

json::value bytes_form(std::string_view form, std::string_view bytes) {
  return json::object{{form, base64_encode(bytes)}};
}

}  // namespace

void pack_json(const json::value& v, msgpack::packer<msgpack::sbuffer>& out) {
  switch (v.kind()) {
    case json::kind::null: out.pack_nil(); break;
    case json::kind::bool_: v.get_bool() ? out.pack_true() : out.pack_false(); break;
    case json::kind::int64: out.pack_int64(v.get_int64()); break;
    case json::kind::uint64: out.pack_uint64(v.get_uint64()); break;
    case json::kind::double_: out.pack_double(v.get_double()); break;
    case json::kind::string: {
      const auto& s = v.get_string();
      out.pack_str(static_cast<std::uint32_t>(s.size()));
      out.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
      break;
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      out.pack_array(static_cast<std::uint32_t>(a.size()));
      for (const auto& e : a) pack_json(e, out);
      break;
    }
    case json::kind::object: {
      const auto& o = v.get_object();
      if (o.size() == 1 && o.begin()->key().starts_with('$')) return pack_form(o.begin()->key(), o.begin()->value(), out);
      out.pack_map(static_cast<std::uint32_t>(o.size()));
      for (const auto& kv : o) {
        out.pack_str(static_cast<std::uint32_t>(kv.key().size()));
        out.pack_str_body(kv.key().data(), static_cast<std::uint32_t>(kv.key().size()));
        pack_json(kv.value(), out);
      }
      break;
    }
  }
}

json::value to_json(const msgpack::object& o) {
  namespace type = msgpack::type;
  switch (o.type) {
    case type::NIL: return nullptr;
    case type::BOOLEAN: return o.via.boolean;
    case type::POSITIVE_INTEGER: return o.via.u64;
    case type::NEGATIVE_INTEGER: return o.via.i64;
    case type::FLOAT32:
    case type::FLOAT64: {
      double d = o.via.f64;
      if (std::isnan(d)) return json::object{{"$float", "nan"}};
      if (std::isinf(d)) return json::object{{"$float", d > 0 ? "inf" : "-inf"}};
      return d;
    }
    case type::STR: {
      std::string_view s(o.via.str.ptr, o.via.str.size);
      if (!is_utf8(s)) return bytes_form("$str", s);
      return json::string(s);
    }
    case type::BIN: return bytes_form("$bin", {o.via.bin.ptr, o.via.bin.size});
    case type::EXT:
      return json::object{{"$ext", json::array{o.via.ext.type(), base64_encode({o.via.ext.data(), o.via.ext.size})}}};
    case type::ARRAY: {
      json::array a;
      a.reserve(o.via.array.size);
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) a.push_back(to_json(o.via.array.ptr[i]));
      return a;
    }
    case type::MAP: {
      const auto& m = o.via.map;
      // An object when every key is a UTF-8 string, no key repeats, and it cannot be read back
      // as one of the '$' forms; else the $map form, which keeps everything.
      bool plain = true;
      for (std::uint32_t i = 0; i < m.size && plain; ++i)
        plain = m.ptr[i].key.type == type::STR && is_utf8({m.ptr[i].key.via.str.ptr, m.ptr[i].key.via.str.size});
      if (plain && m.size == 1 && m.ptr[0].key.via.str.size > 0 && m.ptr[0].key.via.str.ptr[0] == '$') plain = false;
      if (plain) {
        json::object obj;
        obj.reserve(m.size);
        for (std::uint32_t i = 0; i < m.size; ++i)
          obj.emplace(std::string_view(m.ptr[i].key.via.str.ptr, m.ptr[i].key.via.str.size), to_json(m.ptr[i].val));
        if (obj.size() == m.size) return obj;
      }
      json::array pairs;
      pairs.reserve(m.size);
      for (std::uint32_t i = 0; i < m.size; ++i) pairs.push_back(json::array{to_json(m.ptr[i].key), to_json(m.ptr[i].val)});
      return json::object{{"$map", std::move(pairs)}};
    }
  }
  throw conversion_error("unknown msgpack type");
}

std::string json_to_msgpack(std::string_view text) {
  json::stream_parser p;
  boost::system::error_code ec;
  std::size_t used = p.write_some(text.data(), text.size(), ec);
  if (!ec) p.finish(ec);
  if (ec) throw conversion_error("bad JSON at byte " + std::to_string(used) + ": " + ec.message());
  if (used != text.size()) throw conversion_error("bad JSON at byte " + std::to_string(used) + ": text after the value");
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> out(buf);
  pack_json(p.release(), out);
  return std::string(buf.data(), buf.size());
}

std::string msgpack_to_json(std::span<const char> bytes) {
  std::size_t used = 0;
  msgpack::object_handle h;
  try {
    // Limits from the input's size: a forged length cannot make the decoder reserve more.
    h = msgpack::unpack(bytes.data(), bytes.size(), used, nullptr, nullptr, occams_rpc::detail::limits_for(bytes.size()));
  } catch (const std::exception& e) {
    throw conversion_error(std::string("not msgpack: ") + e.what());
  }
  if (used != bytes.size())
    throw conversion_error("not one msgpack value: " + std::to_string(bytes.size() - used) + " bytes after it");
  return json::serialize(to_json(h.get()));
}

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? alphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? alphabet[n & 63] : '=';
  }
  return out;
}

std::string base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) throw conversion_error("base64 length must be a multiple of 4");
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    std::uint32_t n = 0;
    int pad = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      char c = in[i + k];
      bool last_group = i + 4 == in.size();
      if (c == '=' && last_group && k >= 2 && (k == 3 || in[i + 3] == '=')) {
        ++pad;
        n <<= 6;
        continue;
      }
      auto at = alphabet.find(c);
      if (at == std::string_view::npos || pad) throw conversion_error("not base64 at character " + std::to_string(i + k));
      n = (n << 6) | static_cast<std::uint32_t>(at);
    }
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

}  // namespace occams_cli
