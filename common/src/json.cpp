#include "ep/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/encodedstream.h>

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

namespace {

// Builds a Document from SAX events like Document::Parse, but converts numbers itself:
// RapidJSON 1.1 reads some numbers out of double range as infinity (default mode; then
// no writer can serialise the document again) or as an unrelated tiny number
// (kParseFullPrecisionFlag), and reads long mantissas with an error of one ulp. Here
// every number is rounded correctly (std::from_chars), integers keep their integer
// type, and a number out of double range is an error.
class ExactNumbers : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ExactNumbers> {
 public:
  explicit ExactNumbers(rapidjson::Document& doc) : doc_(doc) {}
  bool too_big = false;

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool StartObject() { return doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) { return doc_.EndObject(n); }
  bool StartArray() { return doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return doc_.EndArray(n); }

  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
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

 private:
  rapidjson::Document& doc_;
};

template <unsigned kFlags, typename Stream>
Status parse_exact(Stream& in, rapidjson::Document& doc) {
  rapidjson::Reader reader;
  ExactNumbers h(doc);
  rapidjson::ParseResult result;
  auto generate = [&](rapidjson::Document&) {
    result = reader.Parse<kFlags | rapidjson::kParseNumbersAsStringsFlag>(in, h);
    return !result.IsError();
  };
  doc.Populate(generate);
  if (!result.IsError()) return Status::ok();
  doc.SetNull();
  rapidjson::ParseErrorCode code =
      h.too_big ? rapidjson::kParseErrorNumberTooBig : result.Code();
  return Status::data("invalid JSON at byte " + std::to_string(result.Offset()) + ": " +
                      rapidjson::GetParseError_En(code));
}

}  // namespace

Status parse_json(std::string_view text, rapidjson::Document& doc) {
  // A Document reused line after line keeps every earlier line's nodes in its pool
  // allocator (Parse does not free them): empty the pool first, so a long stream runs in
  // constant memory.
  doc.SetNull();
  doc.GetAllocator().Clear();
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  return parse_exact<rapidjson::kParseDefaultFlags>(in, doc);
}

Status parse_json_insitu(char* text, rapidjson::Document& doc) {
  rapidjson::InsituStringStream in(text);
  return parse_exact<rapidjson::kParseInsituFlag>(in, doc);
}

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

}  // namespace ep
