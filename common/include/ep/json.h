#pragma once
// Thin helpers over RapidJSON: a writer that builds one record per string, and typed
// field getters whose errors name the field ("metrics[3].value: not a finite number").
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep {

class JsonWriter {
 public:
  JsonWriter() : w_(buf_) {}
  void start_object() { w_.StartObject(); }
  void end_object() { w_.EndObject(); }
  void start_array() { w_.StartArray(); }
  void end_array() { w_.EndArray(); }
  void key(std::string_view k) { w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
  void str(std::string_view v) { w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size())); }
  void num(double v);  // non-finite values are written as null
  void num(std::int64_t v) { w_.Int64(v); }
  void boolean(bool v) { w_.Bool(v); }
  void null() { w_.Null(); }
  void time(TimeNs t);  // RFC 3339 UTC ms
  // Splices an already-serialised JSON value.
  void raw(std::string_view json) {
    w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
  }
  void kv(std::string_view k, std::string_view v) { key(k); str(v); }
  void kv(std::string_view k, const char* v) { key(k); str(v); }
  void kv(std::string_view k, const std::string& v) { key(k); str(v); }
  void kv(std::string_view k, double v) { key(k); num(v); }
  void kv(std::string_view k, std::int64_t v) { key(k); num(v); }
  void kv(std::string_view k, int v) { key(k); num(static_cast<std::int64_t>(v)); }
  void kv(std::string_view k, bool v) { key(k); boolean(v); }
  void kv_time(std::string_view k, TimeNs t) { key(k); time(t); }

  std::string_view view() const { return {buf_.GetString(), buf_.GetSize()}; }
  std::string take() { return std::string(view()); }
  void clear() {
    buf_.Clear();
    w_.Reset(buf_);
  }

 private:
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_;
};

// Serialises any RapidJSON value compactly.
std::string to_json(const rapidjson::Value& v);

// Deepest nesting of arrays and objects any parse accepts (`[[1]]` is 2 deep; a scalar
// is 0). EdgePulse's records, payloads, state and model files nest at most 4 deep; 64
// leaves room for unknown fields while bounding every later walk over a parsed value
// (serialising, copying), so no input can exhaust the stack.
inline constexpr int kMaxJsonDepth = 64;

// Flags every parse uses: RapidJSON's iterative parser keeps its state on the heap, so
// depth never turns into recursion (the recursive parser overflows the stack on
// `[[[[…` long before running out of input).
inline constexpr unsigned kJsonParseFlags = rapidjson::kParseIterativeFlag;

// Nesting counter for SAX handlers: enter() at StartObject/StartArray returns false
// (stop the parse) past kMaxJsonDepth; leave() at EndObject/EndArray.
class JsonDepth {
 public:
  bool enter() {
    if (depth_ == kMaxJsonDepth) {
      exceeded_ = true;
      return false;
    }
    ++depth_;
    return true;
  }
  void leave() { --depth_; }
  bool exceeded() const { return exceeded_; }

 private:
  int depth_ = 0;
  bool exceeded_ = false;
};

// The error of every JSON parse: "invalid JSON at byte N: <reason>".
Status json_error(std::size_t offset, std::string_view reason);
// The error of a parse stopped by JsonDepth: "invalid JSON at byte N: nesting deeper
// than 64 levels".
Status json_too_deep(std::size_t offset);

// Parses a whole document (kJsonParseFlags | Flags, e.g. rapidjson::kParseFullPrecisionFlag;
// instantiated for 0 and that flag), at most kMaxJsonDepth deep. doc is emptied first,
// its pool allocator too, so a document reused line after line runs in constant memory.
template <unsigned Flags = 0>
Status parse_json(std::string_view text, rapidjson::Document& doc);
// The same for a NUL-terminated buffer parsed in place (RapidJSON's insitu mode): strings
// in doc point into `text`, which is modified and must outlive doc; no string copies.
template <unsigned Flags = 0>
Status parse_json_insitu(char* text, rapidjson::Document& doc);

extern template Status parse_json<0>(std::string_view, rapidjson::Document&);
extern template Status parse_json<rapidjson::kParseFullPrecisionFlag>(std::string_view,
                                                                      rapidjson::Document&);
extern template Status parse_json_insitu<0>(char*, rapidjson::Document&);
extern template Status parse_json_insitu<rapidjson::kParseFullPrecisionFlag>(char*,
                                                                             rapidjson::Document&);

// Typed getters. `path` names the field in errors, e.g. "metrics[3].value".
// Missing required fields return an error "<path>: required".
Result<std::string_view> get_string(const rapidjson::Value& obj, const char* key,
                                    std::string_view path = {});
std::optional<std::string_view> opt_string(const rapidjson::Value& obj, const char* key);
Result<double> get_number(const rapidjson::Value& obj, const char* key, std::string_view path = {});
Result<TimeNs> get_time(const rapidjson::Value& obj, const char* key, std::string_view path = {});

std::string json_path(std::string_view parent, std::string_view key);

// ---- Scanning a JSON object line without a parse (no document, no allocation beyond out)
// A top-level member: its key as written (still escaped) and the span of its value.
struct JsonMember {
  std::string_view key;
  size_t value_begin = 0, value_end = 0;
};
// The top-level members of the object in s, up to the one where every key in `wanted`
// has been seen (the rest of s is not looked at). False when s does not look like one
// object: then the caller parses it properly. Values are skipped, not validated.
bool top_level_members(std::string_view s, std::vector<JsonMember>& out,
                       std::initializer_list<std::string_view> wanted);
// Moves i (at the first byte of a value) past the value: a string, an array or object
// (nested ones included), or a scalar up to the next ',' '}' or ']'. False when s ends first.
bool skip_json_value(std::string_view s, size_t& i);
// Moves i (at a '"') past the closing quote of the string.
bool skip_json_string(std::string_view s, size_t& i);

}  // namespace ep
