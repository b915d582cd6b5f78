#include "ep/json.h"

#include <rapidjson/error/en.h>

#include <cmath>

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
Status parse_status(const rapidjson::Document& doc) {
  if (doc.HasParseError()) {
    return Status::data("invalid JSON at byte " + std::to_string(doc.GetErrorOffset()) + ": " +
                        rapidjson::GetParseError_En(doc.GetParseError()));
  }
  return Status::ok();
}
}  // namespace

Status parse_json(std::string_view text, rapidjson::Document& doc) {
  // A Document reused line after line keeps every earlier line's nodes in its pool
  // allocator (Parse does not free them): empty the pool first, so a long stream runs in
  // constant memory.
  doc.SetNull();
  doc.GetAllocator().Clear();
  doc.Parse(text.data(), text.size());
  return parse_status(doc);
}

Status parse_json_insitu(char* text, rapidjson::Document& doc) {
  doc.ParseInsitu(text);
  return parse_status(doc);
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
