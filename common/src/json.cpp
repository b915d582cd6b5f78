#include "ep/json.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace ep {

void JsonWriter::num(double v) {
  if (std::isfinite(v)) w_.Double(v);
  else w_.Null();
}

void JsonWriter::time(TimeNs t) {
  std::string s;
  s.reserve(24);
  append_rfc3339(s, t);
  str(s);
}

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return std::string(b.GetString(), b.GetSize());
}

Status json_error(std::size_t offset, std::string_view reason) {
  return Status::data("invalid JSON at byte " + std::to_string(offset) + ": " +
                      std::string(reason));
}

Status json_too_deep(std::size_t offset) {
  return json_error(offset, "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
}

namespace {

// Builds a Document through its SAX interface, stopping past kMaxJsonDepth.
class BoundedBuilder {
 public:
  explicit BoundedBuilder(rapidjson::Document& doc) : doc_(doc) {}
  using SizeType = rapidjson::SizeType;

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(std::int64_t i) { return doc_.Int64(i); }
  bool Uint64(std::uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  // Numbers arrive as text (kParseNumbersAsStringsFlag) and are converted here: RapidJSON
  // reads some numbers out of double range as infinity (then no writer can serialise the
  // document again) or, with kParseFullPrecisionFlag, as an unrelated tiny number, and
  // reads long mantissas with an error of one ulp. Here every number is rounded correctly
  // (std::from_chars), integers keep their integer type, and a number out of double range
  // is an error.
  bool RawNumber(const char* s, SizeType n, bool /*copy*/);
  bool String(const char* s, SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool Key(const char* s, SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool StartObject() { return depth.enter() && doc_.StartObject(); }
  bool EndObject(SizeType n) {
    depth.leave();
    return doc_.EndObject(n);
  }
  bool StartArray() { return depth.enter() && doc_.StartArray(); }
  bool EndArray(SizeType n) {
    depth.leave();
    return doc_.EndArray(n);
  }

  JsonDepth depth;
  bool too_big = false;

 private:
  rapidjson::Document& doc_;
};

bool BoundedBuilder::RawNumber(const char* s, SizeType n, bool) {
  const char* end = s + n;
  if (std::find_if(s, end, [](char c) { return c == '.' || c == 'e' || c == 'E'; }) == end) {
    if (*s == '-') {
      std::int64_t i;
      if (auto r = std::from_chars(s, end, i); r.ec == std::errc() && r.ptr == end) return doc_.Int64(i);
    } else {
      std::uint64_t u;
      if (auto r = std::from_chars(s, end, u); r.ec == std::errc() && r.ptr == end) return doc_.Uint64(u);
    }
  }
  double d;
  auto r = std::from_chars(s, end, d);
  if (r.ec == std::errc::result_out_of_range) {
    // Overflow is an error; underflow reads as the nearest double (0 or subnormal).
    d = std::strtod(std::string(s, n).c_str(), nullptr);
    if (std::isinf(d)) {
      too_big = true;
      return false;
    }
  } else if (r.ec != std::errc() || r.ptr != end) {
    return false;  // cannot happen: the reader checked the number's syntax
  }
  return doc_.Double(d);
}

template <unsigned Flags, typename Stream>
Status parse_bounded(Stream& in, rapidjson::Document& doc) {
  // A Document reused line after line keeps every earlier line's nodes in its pool
  // allocator (parsing does not free them): empty the pool first, so a long stream runs
  // in constant memory.
  doc.SetNull();
  doc.GetAllocator().Clear();
  BoundedBuilder builder(doc);
  rapidjson::ParseResult r;
  auto parse = [&](rapidjson::Document&) {
    rapidjson::Reader reader;
    r = reader.Parse<kJsonParseFlags | Flags | rapidjson::kParseNumbersAsStringsFlag>(in, builder);
    return !r.IsError();
  };
  doc.Populate(parse);  // on error the document stays null
  if (!r.IsError()) return Status::ok();
  if (builder.depth.exceeded()) return json_too_deep(r.Offset());
  if (builder.too_big) return json_error(r.Offset(), rapidjson::GetParseError_En(rapidjson::kParseErrorNumberTooBig));
  return json_error(r.Offset(), rapidjson::GetParseError_En(r.Code()));
}

}  // namespace

template <unsigned Flags>
Status parse_json(std::string_view text, rapidjson::Document& doc) {
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  return parse_bounded<Flags>(in, doc);
}

template <unsigned Flags>
Status parse_json_insitu(char* text, rapidjson::Document& doc) {
  rapidjson::InsituStringStream in(text);
  return parse_bounded<Flags | rapidjson::kParseInsituFlag>(in, doc);
}

template Status parse_json<0>(std::string_view, rapidjson::Document&);
template Status parse_json<rapidjson::kParseFullPrecisionFlag>(std::string_view,
                                                               rapidjson::Document&);
template Status parse_json_insitu<0>(char*, rapidjson::Document&);
template Status parse_json_insitu<rapidjson::kParseFullPrecisionFlag>(char*,
                                                                      rapidjson::Document&);

std::string json_path(std::string_view parent, std::string_view key) {
  std::string p(parent);
  if (!p.empty()) p += '.';
  p += key;
  return p;
}

Result<std::string_view> get_string(const rapidjson::Value& obj, const char* key,
                                    std::string_view path) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull())
    return Status::data(json_path(path, key) + ": required");
  if (!it->value.IsString()) return Status::data(json_path(path, key) + ": not a string");
  return std::string_view(it->value.GetString(), it->value.GetStringLength());
}

std::optional<std::string_view> opt_string(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return std::nullopt;
  return std::string_view(it->value.GetString(), it->value.GetStringLength());
}

Result<double> get_number(const rapidjson::Value& obj, const char* key, std::string_view path) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull())
    return Status::data(json_path(path, key) + ": required");
  if (!it->value.IsNumber()) return Status::data(json_path(path, key) + ": not a finite number");
  double v = it->value.GetDouble();
  if (!std::isfinite(v)) return Status::data(json_path(path, key) + ": not a finite number");
  return v;
}

Result<TimeNs> get_time(const rapidjson::Value& obj, const char* key, std::string_view path) {
  auto s = get_string(obj, key, path);
  if (!s) return s.status();
  auto t = parse_rfc3339(*s);
  if (!t) return Status::data(json_path(path, key) + ": not an RFC 3339 timestamp");
  return *t;
}

// ---- Scanning without a parse (docs in ep/json.h)
namespace {
// The index of the first byte at or after i that is in the set, or s.size(). A table
// lookup per byte (string_view::find_first_of calls memchr over the set per byte).
struct ByteSet {
  bool in[256] = {};
  constexpr explicit ByteSet(std::string_view chars) {
    for (char c : chars) in[static_cast<unsigned char>(c)] = true;
  }
  size_t find(std::string_view s, size_t i) const {
    while (i < s.size() && !in[static_cast<unsigned char>(s[i])]) ++i;
    return i;
  }
};
constexpr ByteSet kStringStops("\"\\");
constexpr ByteSet kValueStops("\"{}[],");
}  // namespace

bool skip_json_string(std::string_view s, size_t& i) {  // at '"'; leaves i after the closing quote
  for (++i; (i = kStringStops.find(s, i)) < s.size(); ++i) {
    if (s[i] == '"') return ++i, true;
    ++i;  // the escaped character
  }
  return false;
}
bool skip_json_value(std::string_view s, size_t& i) {
  if (i >= s.size()) return false;
  if (s[i] == '"') return skip_json_string(s, i);
  int depth = 0;
  for (; (i = kValueStops.find(s, i)) < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      if (!skip_json_string(s, i)) return false;
      --i;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return true;
      if (--depth == 0) return ++i, true;
    } else if (c == ',' && depth == 0) {
      return true;
    }
  }
  i = s.size();
  return depth == 0;
}
// Stops once every key in `wanted` was seen (the rest of the line is not looked at).
bool top_level_members(std::string_view s, std::vector<JsonMember>& out, std::initializer_list<std::string_view> wanted) {
  out.clear();
  auto ws = [&](size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
  };
  size_t i = 0;
  ws(i);
  if (i >= s.size() || s[i++] != '{') return false;
  for (;;) {
    ws(i);
    if (i < s.size() && s[i] == '}' && out.empty()) return true;
    if (i >= s.size() || s[i] != '"') return false;
    size_t k = i;
    if (!skip_json_string(s, i)) return false;
    std::string_view key = s.substr(k + 1, i - k - 2);
    ws(i);
    if (i >= s.size() || s[i++] != ':') return false;
    ws(i);
    size_t v = i;
    if (!skip_json_value(s, i)) return false;
    size_t end = i;
    while (end > v && (s[end - 1] == ' ' || s[end - 1] == '\t')) --end;
    out.push_back({key, v, end});
    size_t seen = 0;
    for (auto w : wanted)
      for (const auto& m : out) seen += m.key == w;
    if (seen == wanted.size()) return true;
    ws(i);
    if (i >= s.size()) return false;
    if (s[i] == '}') return true;
    if (s[i++] != ',') return false;
  }
}

}  // namespace ep
