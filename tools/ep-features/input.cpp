#include "input.h"


#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>

#include "ep/json.h"

namespace ep::features {
namespace {

Status name_field(const rapidjson::Value& o, const char* key, std::string_view path,
                  std::string_view& out) {
  auto r = get_string(o, key, path);
  if (!r) return r.status();
  if (r->empty()) return Status::data(json_path(path, key) + ": empty");
  out = *r;
  return Status::ok();
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Scans a JSON string starting at the opening quote; false on escapes or control
// characters (left to RapidJSON). Eight bytes at a time where the line allows: the
// lowest byte that is '"', '\\' or below 0x20 is found with the "has zero byte" bit
// trick (exact for the lowest such byte; bytes >= 0x80 never match).
bool scan_string(std::string_view s, size_t& i, std::string_view& out) {
  size_t start = ++i;
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    auto zero_byte = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
    while (i + 8 <= s.size()) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      std::uint64_t hit = zero_byte(w ^ (kOnes * '"')) | zero_byte(w ^ (kOnes * '\\')) |
                          ((w - kOnes * 0x20) & ~w & kHigh);
      if (hit == 0) {
        i += 8;
        continue;
      }
      i += static_cast<size_t>(std::countr_zero(hit)) / 8;
      if (s[i] != '"') return false;
      out = s.substr(start, i - start);
      ++i;
      return true;
    }
  }
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      out = s.substr(start, i - start);
      ++i;
      return true;
    }
    if (c == '\\' || c < 0x20) return false;
    ++i;
  }
  return false;
}

// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool scan_number(std::string_view s, size_t& i, std::string_view& out) {
  size_t start = i;
  auto digit = [&](size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '9'; };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') ++i;
  else while (digit(i)) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  out = s.substr(start, i - start);
  return true;
}

bool scan_literal(std::string_view s, size_t& i) {
  for (std::string_view lit : {"true", "false", "null"}) {
    if (s.substr(i, lit.size()) == lit) {
      i += lit.size();
      return true;
    }
  }
  return false;
}

}  // namespace

bool parse_flat_point(std::string_view s, FlatPoint& out) { return parse_flat_point(s, out, nullptr); }

bool parse_flat_point(std::string_view s, FlatPoint& out, TsMemo* memo) {
  size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && is_ws(s[i])) ++i;
  };
  skip();
  if (i >= s.size() || s[i] != '{') return false;
  ++i;
  // Fields seen (first occurrence wins, as RapidJSON's FindMember does).
  enum : unsigned { kKind = 1, kTenant = 2, kDevice = 4, kMetric = 8, kTs = 16, kValue = 32 };
  unsigned seen = 0;
  std::string_view ts, value;
  skip();
  if (i < s.size() && s[i] == '}') return false;
  for (;;) {
    skip();
    std::string_view key;
    if (i >= s.size() || s[i] != '"' || !scan_string(s, i, key)) return false;
    skip();
    if (i >= s.size() || s[i] != ':') return false;
    ++i;
    skip();
    if (i >= s.size()) return false;
    char c = s[i];
    std::string_view str, num;
    bool is_str = false, is_num = false;
    if (c == '"') {
      if (!scan_string(s, i, str)) return false;
      is_str = true;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      if (!scan_number(s, i, num)) return false;
      is_num = true;
    } else if (!scan_literal(s, i)) {
      return false;  // nested object or array, or invalid: the DOM path decides
    }
    // First occurrence of a field wins (as RapidJSON's FindMember); it must have the
    // right type, else the DOM path reports the error.
    auto take = [&](unsigned bit, std::string_view& dst, bool ok) {
      if (seen & bit) return true;
      seen |= bit;
      dst = is_str ? str : num;
      return ok;
    };
    bool ok = true;
    if (key == "kind") {
      if (!(seen & kKind)) {
        seen |= kKind;
        ok = is_str && str == "point";  // batches and other kinds: DOM path
      }
    } else if (key == "tenant") ok = take(kTenant, out.tenant, is_str);
    else if (key == "device") ok = take(kDevice, out.device, is_str);
    else if (key == "metric") ok = take(kMetric, out.metric, is_str);
    else if (key == "ts") ok = take(kTs, ts, is_str);
    else if (key == "value") ok = take(kValue, value, is_num);
    if (!ok) return false;
    skip();
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == '}') {
      ++i;
      break;
    }
    return false;
  }
  skip();
  if (i != s.size()) return false;
  if (seen != (kKind | kTenant | kDevice | kMetric | kTs | kValue)) return false;
  if (out.tenant.empty() || out.device.empty() || out.metric.empty()) return false;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), out.value);
  if (ec != std::errc() || p != value.data() + value.size() || !std::isfinite(out.value))
    return false;
  if (memo && memo->len != 0 && ts == std::string_view(memo->text, memo->len)) {
    out.ts = memo->ns;
    return true;
  }
  auto t = parse_rfc3339(ts);
  if (!t) return false;
  out.ts = *t;
  if (memo && ts.size() <= sizeof memo->text) {
    std::memcpy(memo->text, ts.data(), ts.size());
    memo->len = ts.size();
    memo->ns = *t;
  }
  return true;
}

RecordParser::RecordParser(bool fast)
    : fast_(fast),
      arena_(new char[kArenaBytes]), pool_(arena_.get(), kArenaBytes), doc_(&pool_) {}

Status RecordParser::parse(std::string_view line, PointSink& sink) {
  FlatPoint fp;
  if (fast_ && parse_flat_point(line, fp, &ts_memo_)) {
    sink.on_point(fp.tenant, fp.device, fp.metric, fp.ts, fp.value);
    return Status::ok();
  }
  text_.assign(line);
  // Empties pool_ first: keeps the arena, frees only chunks a large line added.
  EP_RETURN_IF_ERROR(parse_json_insitu(text_.data(), doc_));
  if (!doc_.IsObject()) return Status::data("record is not a JSON object");
  auto kind = get_string(doc_, "kind");
  if (!kind) return kind.status();
  const rapidjson::Value& o = doc_;
  std::string_view tenant, device, metric;
  if (*kind == "point") {
    EP_RETURN_IF_ERROR(name_field(o, "tenant", {}, tenant));
    EP_RETURN_IF_ERROR(name_field(o, "device", {}, device));
    EP_RETURN_IF_ERROR(name_field(o, "metric", {}, metric));
    auto ts = get_time(o, "ts");
    if (!ts) return ts.status();
    auto value = get_number(o, "value");
    if (!value) return value.status();
    sink.on_point(tenant, device, metric, *ts, *value);
    return Status::ok();
  }
  if (*kind != "batch")
    return Status::data("kind: expected \"point\" or \"batch\", got \"" + std::string(*kind) + "\"");
  EP_RETURN_IF_ERROR(name_field(o, "tenant", {}, tenant));
  EP_RETURN_IF_ERROR(name_field(o, "device", {}, device));
  auto pts = o.FindMember("points");
  if (pts == o.MemberEnd() || !pts->value.IsArray()) return Status::data("points: required array");
  const auto& arr = pts->value;
  // Validate every point before handing any on: a batch is taken whole or not at all.
  // The field path is only spelled out for the error (no allocation per point).
  times_.resize(arr.Size());
  for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
    const auto& p = arr[i];
    auto where = [i] { return "points[" + std::to_string(i) + "]"; };
    if (!p.IsObject()) return Status::data(where() + ": not an object");
    if (!name_field(p, "metric", {}, metric)) return name_field(p, "metric", where(), metric);
    auto ts = get_time(p, "ts");
    if (!ts) return get_time(p, "ts", where()).status();
    if (!get_number(p, "value")) return get_number(p, "value", where()).status();
    times_[i] = *ts;
  }
  for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
    const auto& p = arr[i];
    const auto& m = p["metric"];
    sink.on_point(tenant, device, std::string_view(m.GetString(), m.GetStringLength()), times_[i],
                  p["value"].GetDouble());
  }
  return Status::ok();
}

}  // namespace ep::features
