#pragma once

#include <occams_rpc/naming/detail/base64.hpp>
#include <occams_rpc/naming/endpoint_text.hpp>
#include <occams_rpc/naming/etcd_json.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>

namespace occams_rpc::naming::etcd {

namespace detail {
namespace json = boost::json;

inline std::string_view view(const json::string& s) { return {s.data(), s.size()}; }

/// The gateway writes int64 as a string; a number is accepted too. Absent: 0.
inline bool get_int(const json::object& o, std::string_view name, std::int64_t& out) {
  out = 0;
  const json::value* v = o.if_contains(name);
  if (!v) return true;
  if (auto* i = v->if_int64()) return out = *i, true;
  if (auto* u = v->if_uint64()) return *u <= INT64_MAX && (out = static_cast<std::int64_t>(*u), true);
  if (auto* s = v->if_string()) {
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), out);
    return ec == std::errc{} && end == s->data() + s->size();
  }
  return false;
}

inline bool get_bool(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v && v->is_bool() && v->get_bool();
}

inline bool get_b64(const json::object& o, std::string_view name, std::string& out, std::string& why) {
  out.clear();
  const json::value* v = o.if_contains(name);
  if (!v) return true;
  const json::string* s = v->if_string();
  std::optional<std::string> bytes;
  if (s) bytes = naming::detail::base64_decode(view(*s));
  if (!bytes) return why = "'" + std::string(name) + "' is not base64", false;
  out = std::move(*bytes);
  return true;
}

/// Parses `body` into an object; an error object ({"error":..., "message":...}) fails.
inline const json::object* parse_object(std::string_view body, json::value& holder, std::string& why) {
  boost::system::error_code ec;
  holder = json::parse(body, ec);
  if (ec) return why = "not JSON (" + ec.message() + "): '" + std::string(body.substr(0, 200)) + "'", nullptr;
  const json::object* o = holder.if_object();
  if (!o) return why = "not a JSON object", nullptr;
  if (const json::value* e = o->if_contains("error")) {
    // 3.4 unary: {"error":"msg","code":N,"message":"msg"}; streams: {"error":{"message":...}}.
    why = "etcd error: ";
    if (e->is_string()) why += view(e->get_string());
    else if (auto* eo = e->if_object(); eo && eo->if_contains("message") && (*eo).at("message").is_string())
      why += view(eo->at("message").get_string());
    else why += json::serialize(*e);
    return nullptr;
  }
  return o;
}

inline bool get_kv(const json::value& v, key_value& out, std::string& why) {
  const json::object* o = v.if_object();
  if (!o) return why = "a kv is not an object", false;
  return get_b64(*o, "key", out.key, why) && get_b64(*o, "value", out.value, why) &&
         (get_int(*o, "mod_revision", out.mod_revision) || (why = "bad mod_revision", false));
}

inline bool get_header_revision(const json::object& o, std::int64_t& rev, std::string& why) {
  rev = 0;
  const json::value* h = o.if_contains("header");
  if (!h || !h->is_object()) return why = "no header", false;
  if (!get_int(h->get_object(), "revision", rev)) return why = "bad header.revision", false;
  return true;
}

inline std::string object_string(std::initializer_list<std::pair<std::string_view, json::value>> fields) {
  json::object o;
  for (auto& [k, v] : fields) o[k] = v;
  return json::serialize(o);
}
}  // namespace detail

OCCAMS_RPC_DECL std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  // The smallest key greater than every key with this prefix: the last byte below 0xff, plus one.
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

OCCAMS_RPC_DECL std::string range_request(std::string_view prefix) {
  using naming::detail::base64_encode;
  return detail::object_string({{"key", base64_encode(prefix).c_str()},
                                {"range_end", base64_encode(prefix_range_end(prefix)).c_str()}});
}

OCCAMS_RPC_DECL std::string watch_request(std::string_view prefix, std::int64_t start_revision) {
  using naming::detail::base64_encode;
  boost::json::object create;
  create["key"] = base64_encode(prefix);
  create["range_end"] = base64_encode(prefix_range_end(prefix));
  create["start_revision"] = std::to_string(start_revision);
  boost::json::object o;
  o["create_request"] = std::move(create);
  return boost::json::serialize(o);
}

OCCAMS_RPC_DECL std::string put_request(std::string_view key, std::string_view value, std::int64_t lease) {
  using naming::detail::base64_encode;
  return detail::object_string(
      {{"key", base64_encode(key).c_str()}, {"value", base64_encode(value).c_str()}, {"lease", std::to_string(lease).c_str()}});
}

OCCAMS_RPC_DECL std::string lease_grant_request(std::int64_t ttl_seconds) {
  return detail::object_string({{"TTL", std::to_string(ttl_seconds).c_str()}, {"ID", "0"}});
}

OCCAMS_RPC_DECL std::string lease_id_request(std::int64_t lease) {
  return detail::object_string({{"ID", std::to_string(lease).c_str()}});
}

OCCAMS_RPC_DECL bool parse_range_response(std::string_view body, range_result& out, std::string& why) {
  boost::json::value holder;
  auto* o = detail::parse_object(body, holder, why);
  if (!o || !detail::get_header_revision(*o, out.revision, why)) return false;
  out.kvs.clear();
  if (const auto* kvs = o->if_contains("kvs")) {
    if (!kvs->is_array()) return why = "kvs is not an array", false;
    for (auto& v : kvs->get_array()) {
      key_value kv;
      if (!detail::get_kv(v, kv, why)) return false;
      out.kvs.push_back(std::move(kv));
    }
  }
  return true;
}

OCCAMS_RPC_DECL bool parse_watch_message(std::string_view body, watch_message& out, std::string& why) {
  boost::json::value holder;
  auto* top = detail::parse_object(body, holder, why);
  if (!top) return false;
  const auto* r = top->if_contains("result");
  if (!r || !r->is_object()) return why = "no result", false;
  const auto& o = r->get_object();
  out = {};
  if (!detail::get_header_revision(o, out.revision, why)) return false;
  out.created = detail::get_bool(o, "created");
  out.canceled = detail::get_bool(o, "canceled");
  if (!detail::get_int(o, "compact_revision", out.compact_revision)) return why = "bad compact_revision", false;
  if (const auto* reason = o.if_contains("cancel_reason"); reason && reason->is_string())
    out.cancel_reason = detail::view(reason->get_string());
  if (const auto* events = o.if_contains("events")) {
    if (!events->is_array()) return why = "events is not an array", false;
    for (auto& v : events->get_array()) {
      const auto* e = v.if_object();
      if (!e) return why = "an event is not an object", false;
      watch_event ev;
      if (const auto* type = e->if_contains("type")) {
        if (type->is_string() && detail::view(type->get_string()) == "DELETE") ev.deleted = true;
        else if (!(type->is_string() && detail::view(type->get_string()) == "PUT"))
          return why = "unknown event type " + boost::json::serialize(*type), false;
      }
      const auto* kv = e->if_contains("kv");
      if (!kv || !detail::get_kv(*kv, ev.kv, why)) return why = why.empty() ? "an event has no kv" : why, false;
      out.events.push_back(std::move(ev));
    }
  }
  return true;
}

OCCAMS_RPC_DECL bool parse_lease_grant(std::string_view body, std::int64_t& lease, std::int64_t& ttl, std::string& why) {
  boost::json::value holder;
  auto* o = detail::parse_object(body, holder, why);
  if (!o) return false;
  if (!detail::get_int(*o, "ID", lease) || !detail::get_int(*o, "TTL", ttl) || lease == 0)
    return why = "no lease ID/TTL in " + std::string(body.substr(0, 200)), false;
  if (const auto* e = o->if_contains("error"); e && e->is_string() && !e->get_string().empty())
    return why = std::string(detail::view(e->get_string())), false;
  return true;
}

OCCAMS_RPC_DECL bool parse_keepalive(std::string_view body, std::int64_t& ttl, std::string& why) {
  boost::json::value holder;
  auto* o = detail::parse_object(body, holder, why);
  if (!o) return false;
  const auto* r = o->if_contains("result");
  if (!r || !r->is_object()) return why = "no result", false;
  if (!detail::get_int(r->get_object(), "TTL", ttl)) return why = "bad TTL", false;
  return true;
}

OCCAMS_RPC_DECL bool parse_ok(std::string_view body, std::string& why) {
  boost::json::value holder;
  return detail::parse_object(body, holder, why) != nullptr;
}

OCCAMS_RPC_DECL std::string endpoint_value(const endpoint& ep) {
  boost::json::object o;
  o["addr"] = ep.where.to_string();
  o["weight"] = ep.weight;
  return boost::json::serialize(o);
}

OCCAMS_RPC_DECL bool parse_endpoint_value(std::string_view value, endpoint& out, std::string& why) {
  std::string_view addr = value;
  std::int64_t weight = 1;
  boost::json::value holder;
  if (!value.empty() && value.front() == '{') {
    boost::system::error_code ec;
    holder = boost::json::parse(value, ec);
    const boost::json::object* o = ec ? nullptr : holder.if_object();
    if (!o) return why = "value is neither an address nor a JSON object", false;
    const auto* a = o->if_contains("addr");
    if (!a || !a->is_string()) return why = "value has no \"addr\" string", false;
    addr = detail::view(a->get_string());
    if (o->if_contains("weight")) {
      const auto* w = o->if_contains("weight");
      if (!w->is_int64() && !w->is_uint64()) return why = "\"weight\" is not an integer", false;
      weight = w->is_int64() ? w->get_int64() : static_cast<std::int64_t>(std::min<std::uint64_t>(w->get_uint64(), max_weight + 1));
      if (weight < 0 || weight > static_cast<std::int64_t>(max_weight))
        return why = "\"weight\" out of 0.." + std::to_string(max_weight), false;
    }
  }
  endpoint ep;
  if (parse_address(addr, ep.where)) return why = "bad address '" + std::string(addr.substr(0, 200)) + "'", false;
  ep.weight = weight == 0 ? 1 : static_cast<std::uint32_t>(weight);
  out = std::move(ep);
  return true;
}

}  // namespace occams_rpc::naming::etcd
