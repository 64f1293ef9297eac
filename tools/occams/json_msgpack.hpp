// JSON <-> msgpack for the `occams` command-line tool (docs/cli.md, "JSON and msgpack").
//
// JSON's own types map to msgpack's directly (null, bool, integers, floats as float64, str,
// array, map with string keys). What JSON lacks has a one-key object form, read and written:
//   {"$bin": "BASE64"}            msgpack bin
//   {"$ext": [TYPE, "BASE64"]}    msgpack ext, TYPE in -128..127
//   {"$map": [[KEY, VALUE], ...]} a map whose keys are not all strings (or that would read as
//                                 one of these forms: one key starting with '$')
//   {"$str": "BASE64"}            a str that is not valid UTF-8
//   {"$float": "nan" | "inf" | "-inf"}  a float JSON cannot write
// Any other object of one key starting with '$' is refused, so that a typo is not sent as a map.
#pragma once

#include <boost/json/value.hpp>

#include <msgpack.hpp>

#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace occams_cli {

/// Bad input: the message says what is wrong and where.
struct conversion_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Parses JSON text into the msgpack bytes of one value. Throws conversion_error.
std::string json_to_msgpack(std::string_view json);

/// The msgpack bytes of one value (all of `bytes`, nothing after it) as one line of JSON.
/// Throws conversion_error when the bytes are not exactly one msgpack value.
std::string msgpack_to_json(std::span<const char> bytes);

/// The value-level halves of the two above.
void pack_json(const boost::json::value& v, msgpack::packer<msgpack::sbuffer>& out);
boost::json::value to_json(const msgpack::object& o);

/// Standard base64 with padding (RFC 4648); decode refuses anything else.
std::string base64_encode(std::string_view bytes);
std::string base64_decode(std::string_view text);

}  // namespace occams_cli
