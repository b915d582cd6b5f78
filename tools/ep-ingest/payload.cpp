#include "payload.h"

#include <optional>

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <charconv>
#include <cmath>
#include <cstring>

#include "ep/json.h"

namespace ep::ingest {

const char* reject_name(RejectKind k) {
  switch (k) {
    case RejectKind::kNone: return "none";
    case RejectKind::kInvalidJson: return "invalid_json";
    case RejectKind::kInvalidPayload: return "invalid_payload";
    case RejectKind::kTooLarge: return "payload_too_large";
  }
  return "invalid_payload";
}

const char* check_name(std::string_view s, const Limits& limits) {
  if (s.empty()) return "empty";
  if (s.size() > limits.max_name_len) return "longer than the name limit";
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
    if (!ok) return "invalid character (allowed: A-Z a-z 0-9 . _ : / -)";
  }
  return "";
}

const char* check_unit(std::string_view s, const Limits& limits) {
  return s.size() > limits.max_unit_len ? "longer than the unit limit" : "";
}

const char* check_ts(TimeNs ts, const Limits& limits, TimeNs now) {
  if (!limits.time_bounds) return "";
  if (ts < now - limits.max_age) return "too far in the past (use --no-time-bounds for backfill)";
  if (ts > now + limits.max_skew) return "too far in the future";
  return "";
}

std::string limit_detail(const char* reason, const Limits& limits) {
  // Name the configured limit so the sender knows what to fix.
  std::string r(reason);
  if (r == "longer than the name limit") return "longer than " + std::to_string(limits.max_name_len) + " bytes";
  if (r == "longer than the unit limit") return "longer than " + std::to_string(limits.max_unit_len) + " bytes";
  return r;
}

namespace {

// SAX handler: a small state machine over the payload's fixed shape. Returning false
// stops the parse; err/kind then say why.
class PayloadHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, PayloadHandler> {
 public:
  PayloadHandler(const Limits& limits, TimeNs now, Payload& out)
      : limits_(limits), now_(now), out_(out) {}

  std::string err;
  RejectKind kind = RejectKind::kNone;
  // Set when the parse stopped at kMaxJsonDepth (the caller knows the byte offset).
  bool nested_too_deep() const { return depth_.exceeded(); }

  // RapidJSON stops on numbers beyond double range (1e999) before calling us; when that
  // happens at a metric's value, it is a non-finite value, not a syntax error.
  bool at_value() const { return skip_ == 0 && !skip_next_ && state_ == State::kMetricValue && field_ == Field::kValue; }
  std::string value_path() const { return metric_path(Field::kValue); }

  bool Null() { return scalar(Type::kNull, 0, {}); }
  bool Bool(bool) { return scalar(Type::kBool, 0, {}); }
  bool Int(int i) { return integer(i); }
  bool Uint(unsigned u) { return integer(u); }
  bool Int64(int64_t i) { return integer(i); }
  bool Uint64(uint64_t u) { return u > INT64_MAX ? scalar(Type::kNumber, static_cast<double>(u), {}) : integer(static_cast<int64_t>(u)); }
  bool Double(double d) {
    int_ = std::nullopt;
    return scalar(Type::kNumber, d, {});
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return scalar(Type::kString, 0, std::string_view(s, n));
  }

  bool StartObject() {
    if (!depth_.enter()) return too_deep();
    if (skip_ > 0 || skip_next_) return enter_skip();
    switch (state_) {
      case State::kStart: state_ = State::kRootKey; return true;
      case State::kRootValue: return bad_root_type();
      case State::kMetrics:
        if (out_.points.size() >= limits_.max_points) {
          kind = RejectKind::kTooLarge;
          err = "metrics: more than " + std::to_string(limits_.max_points) + " points";
          return false;
        }
        out_.points.emplace_back();
        seen_ = 0;
        state_ = State::kMetricKey;
        return true;
      case State::kMetricValue: return bad_metric_type(Type::kObject);
      default: return fail_shape();
    }
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (skip_ > 0) return true;
    std::string_view k(s, n);
    if (state_ == State::kRootKey) {
      if (k == "device_external_id") field_ = Field::kDevice;
      else if (k == "metrics") field_ = Field::kMetrics;
      else return skip_value(State::kRootKey);
      if (root_seen_ & bit(field_)) return duplicate(field_name(field_));
      root_seen_ |= bit(field_);
      state_ = State::kRootValue;
      return true;
    }
    // State::kMetricKey
    if (k == "name") field_ = Field::kName;
    else if (k == "ts") field_ = Field::kTs;
    else if (k == "value") field_ = Field::kValue;
    else if (k == "unit") field_ = Field::kUnit;
    else return skip_value(State::kMetricKey);
    if (seen_ & bit(field_)) return duplicate(metric_path(field_));
    seen_ |= bit(field_);
    state_ = State::kMetricValue;
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    depth_.leave();
    if (skip_ > 0) return leave_skip();
    if (state_ == State::kMetricKey) {
      for (Field f : {Field::kName, Field::kTs, Field::kValue}) {
        if (!(seen_ & bit(f))) return invalid(metric_path(f) + ": required");
      }
      state_ = State::kMetrics;
      return true;
    }
    // End of the root object.
    if (!(root_seen_ & bit(Field::kDevice))) return invalid("device_external_id: required");
    if (!(root_seen_ & bit(Field::kMetrics))) return invalid("metrics: required");
    if (out_.points.empty()) return invalid("metrics: empty");
    state_ = State::kDone;
    return true;
  }
  bool StartArray() {
    if (!depth_.enter()) return too_deep();
    if (skip_ > 0 || skip_next_) return enter_skip();
    switch (state_) {
      case State::kStart: return invalid("payload: not a JSON object");
      case State::kRootValue:
        if (field_ != Field::kMetrics) return bad_root_type();
        state_ = State::kMetrics;
        return true;
      case State::kMetrics:
        return invalid("metrics[" + std::to_string(out_.points.size()) + "]: not an object");
      case State::kMetricValue: return bad_metric_type(Type::kArray);
      default: return fail_shape();
    }
  }
  bool EndArray(rapidjson::SizeType) {
    depth_.leave();
    if (skip_ > 0) return leave_skip();
    state_ = State::kRootKey;  // only the metrics array is ever entered
    return true;
  }

 private:
  enum class State { kStart, kRootKey, kRootValue, kMetrics, kMetricKey, kMetricValue, kDone };
  enum class Field { kDevice, kMetrics, kName, kTs, kValue, kUnit };
  enum class Type { kNull, kBool, kNumber, kString, kObject, kArray };
  static unsigned bit(Field f) { return 1u << static_cast<unsigned>(f); }
  static const char* field_name(Field f) {
    switch (f) {
      case Field::kDevice: return "device_external_id";
      case Field::kMetrics: return "metrics";
      case Field::kName: return "name";
      case Field::kTs: return "ts";
      case Field::kValue: return "value";
      case Field::kUnit: return "unit";
    }
    return "?";
  }
  std::string metric_path(Field f) const {
    return "metrics[" + std::to_string(out_.points.size() - 1) + "]." + field_name(f);
  }

  bool invalid(std::string msg) {
    kind = RejectKind::kInvalidPayload;
    err = std::move(msg);
    return false;
  }
  bool too_deep() {
    kind = RejectKind::kInvalidJson;
    return false;
  }
  bool duplicate(const std::string& path) { return invalid(path + ": duplicate field"); }
  bool fail_shape() { return invalid("payload: unexpected structure"); }
  bool bad_root_type() {
    return invalid(field_ == Field::kDevice ? "device_external_id: not a string"
                                            : "metrics: not an array");
  }
  bool bad_metric_type(Type t) {
    if (field_ == Field::kValue) return invalid(metric_path(field_) + ": not a number");
    if (field_ == Field::kUnit && t == Type::kNull) return true;
    return invalid(metric_path(field_) + ": not a string");
  }

  // An unknown key: its value (scalar or nested) is skipped, then `back` resumes.
  bool skip_value(State back) {
    skip_next_ = true;
    state_ = back;
    return true;
  }
  bool enter_skip() {
    skip_next_ = false;
    ++skip_;
    return true;
  }
  bool leave_skip() {
    --skip_;
    return true;
  }

  // Integers keep their exact value for an epoch ts (nanoseconds exceed a double's 53 bits).
  bool integer(int64_t i) {
    int_ = i;
    return scalar(Type::kNumber, static_cast<double>(i), {});
  }
  bool epoch_ts(double num, PayloadPoint& p) {
    if (limits_.epoch_unit == 0)
      return invalid(metric_path(field_) + ": a number needs its unit (?precision=s|ms|us|ns, or an RFC 3339 string)");
    auto ts = int_ ? epoch_to_ns(*int_, limits_.epoch_unit) : epoch_to_ns(num, limits_.epoch_unit);
    if (!ts) return invalid(metric_path(field_) + ": out of range");
    if (const char* why = check_ts(*ts, limits_, now_); *why) return invalid(metric_path(field_) + ": " + why);
    p.ts = *ts;
    return true;
  }

  bool scalar(Type t, double num, std::string_view str) {
    if (skip_ > 0) return true;
    if (skip_next_) {
      skip_next_ = false;
      return true;
    }
    switch (state_) {
      case State::kStart: return invalid("payload: not a JSON object");
      case State::kRootValue: {
        if (field_ != Field::kDevice || t != Type::kString) return bad_root_type();
        if (const char* why = check_name(str, limits_); *why)
          return invalid("device_external_id: " + limit_detail(why, limits_));
        out_.device = str;
        state_ = State::kRootKey;
        return true;
      }
      case State::kMetrics:
        return invalid("metrics[" + std::to_string(out_.points.size()) + "]: not an object");
      case State::kMetricValue: {
        state_ = State::kMetricKey;
        PayloadPoint& p = out_.points.back();
        switch (field_) {
          case Field::kName:
            if (t != Type::kString) return bad_metric_type(t);
            if (const char* why = check_name(str, limits_); *why)
              return invalid(metric_path(field_) + ": " + limit_detail(why, limits_));
            p.metric = str;
            return true;
          case Field::kTs: {
            if (t == Type::kNumber) return epoch_ts(num, p);
            if (t != Type::kString) return bad_metric_type(t);
            auto ts = parse_rfc3339(str);
            if (!ts) return invalid(metric_path(field_) + ": not an RFC 3339 timestamp");
            if (const char* why = check_ts(*ts, limits_, now_); *why)
              return invalid(metric_path(field_) + ": " + why);
            p.ts = *ts;
            return true;
          }
          case Field::kValue:
            if (t != Type::kNumber) return bad_metric_type(t);
            if (!std::isfinite(num)) return invalid(metric_path(field_) + ": not a finite number");
            p.value = num;
            return true;
          case Field::kUnit:
            if (t == Type::kNull) return true;
            if (t != Type::kString) return bad_metric_type(t);
            if (const char* why = check_unit(str, limits_); *why)
              return invalid(metric_path(field_) + ": " + limit_detail(why, limits_));
            p.unit = str;
            return true;
          default: return fail_shape();
        }
      }
      default: return fail_shape();
    }
  }

  const Limits& limits_;
  TimeNs now_;
  Payload& out_;
  State state_ = State::kStart;
  Field field_ = Field::kDevice;
  unsigned root_seen_ = 0, seen_ = 0;
  int skip_ = 0;
  bool skip_next_ = false;
  std::optional<int64_t> int_;  // the last number, when it was an integer
  JsonDepth depth_;
};

}  // namespace

namespace {

// No byte with the high bit set (8 bytes at a time).
bool is_ascii(std::string_view s) {
  std::uint64_t any = 0;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    any |= w;
  }
  for (; i < s.size(); ++i) any |= static_cast<unsigned char>(s[i]);
  return (any & 0x8080808080808080ull) == 0;
}

}  // namespace

Status parse_payload(std::string_view body, const Limits& limits, TimeNs now, Payload& out) {
  out.device = {};
  out.points.clear();
  out.reject = RejectKind::kNone;
  out.more_follows = false;
  auto fail = [&](RejectKind k, std::string msg) {
    out.reject = k;
    out.device = {};
    out.points.clear();
    return Status::data(std::move(msg));
  };
  if (body.size() > limits.max_body_bytes)
    return fail(RejectKind::kTooLarge,
                "body: larger than " + std::to_string(limits.max_body_bytes) + " bytes");
  if (const void* nul = std::memchr(body.data(), '\0', body.size()))
    return fail(RejectKind::kInvalidJson,
                json_error(static_cast<const char*>(nul) - body.data(), "NUL byte").message());
  // In-situ parsing: strings are decoded in place in our copy and the views point there.
  out.storage.assign(body);
  out.storage.push_back('\0');
  rapidjson::InsituStringStream is(out.storage.data());
  PayloadHandler h(limits, now, out);
  rapidjson::Reader reader;
  constexpr unsigned kFlags = kJsonParseFlags | rapidjson::kParseInsituFlag | rapidjson::kParseNanAndInfFlag;
  // UTF-8 is checked string by string only where it can be wrong: an all-ASCII body
  // (the usual one) is valid UTF-8 as it is.
  rapidjson::ParseResult r = is_ascii(body) ? reader.Parse<kFlags>(is, h)
                                            : reader.Parse<kFlags | rapidjson::kParseValidateEncodingFlag>(is, h);
  if (!r) {
    bool more = r.Code() == rapidjson::kParseErrorDocumentRootNotSingular && !out.points.empty();
    if (h.nested_too_deep()) return fail(h.kind, json_too_deep(r.Offset()).message());
    if (r.Code() == rapidjson::kParseErrorTermination) return fail(h.kind, std::move(h.err));
    if (r.Code() == rapidjson::kParseErrorNumberTooBig && h.at_value())
      return fail(RejectKind::kInvalidPayload, h.value_path() + ": not a finite number");
    Status st = fail(RejectKind::kInvalidJson, json_error(r.Offset(), rapidjson::GetParseError_En(r.Code())).message());
    out.more_follows = more;
    return st;
  }
  if (out.points.empty()) {
    // A scalar root never reaches EndObject.
    return fail(RejectKind::kInvalidPayload, "payload: not a JSON object");
  }
  return Status::ok();
}

// ---- CSV

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07;
    else return false;
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

// Splits into at most max fields (max = too many); returns the field count or -1 for a
// malformed quote. Quoted fields are unescaped into storage.
int split_csv(std::string_view line, char delim, std::vector<std::string_view>& f, size_t max,
              std::string& storage, std::string& err) {
  size_t i = 0;
  f.clear();
  storage.clear();
  // Reserve once so views into storage stay valid while appending.
  storage.reserve(line.size());
  auto count = [&] { return static_cast<int>(f.size()); };
  for (;;) {
    if (f.size() == max) return count();
    // Skip leading blanks before a possible quote.
    size_t j = i;
    while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
    if (j < line.size() && line[j] == '"') {
      size_t start = storage.size();
      size_t k = j + 1;
      for (;;) {
        if (k >= line.size()) {
          err = "field " + std::to_string(f.size() + 1) + " (byte " + std::to_string(j + 1) + "): unterminated quote";
          return -1;
        }
        if (line[k] == '"') {
          if (k + 1 < line.size() && line[k + 1] == '"') {
            storage.push_back('"');
            k += 2;
            continue;
          }
          ++k;
          break;
        }
        storage.push_back(line[k++]);
      }
      f.push_back(std::string_view(storage.data() + start, storage.size() - start));
      while (k < line.size() && (line[k] == ' ' || line[k] == '\t')) ++k;
      if (k == line.size()) return count();
      if (line[k] != delim) {
        err = "field " + std::to_string(f.size()) + " (byte " + std::to_string(k + 1) + "): text after closing quote";
        return -1;
      }
      i = k + 1;
      continue;
    }
    size_t comma = line.find(delim, i);
    if (comma == std::string_view::npos) {
      f.push_back(trim(line.substr(i)));
      return count();
    }
    f.push_back(trim(line.substr(i, comma - i)));
    i = comma + 1;
  }
}

namespace {
size_t skip_blank(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  return i;
}
}  // namespace

bool is_payload_array(std::string_view body) {
  size_t i = skip_blank(body, 0);
  return i < body.size() && body[i] == '[';
}

Status split_payloads(std::string_view body, const std::function<void(size_t, std::string_view)>& each) {
  size_t i = skip_blank(body, 0);
  if (i >= body.size() || body[i] != '[') {
    size_t n = 0;
    for (size_t at = 0; at < body.size();) {
      size_t nl = body.find('\n', at);
      std::string_view line = body.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
      at = nl == std::string_view::npos ? body.size() : nl + 1;
      if (skip_blank(line, 0) < line.size()) each(n++, line);
    }
    return Status::ok();
  }
  i = skip_blank(body, i + 1);
  if (i < body.size() && body[i] == ']') return Status::data("payloads: empty array");
  for (size_t n = 0;; ++n) {
    size_t start = i;
    if (!skip_json_value(body, i) || i == start)
      return json_error(start, "payloads[" + std::to_string(n) + "]: not a complete JSON value");
    each(n, body.substr(start, i - start));
    i = skip_blank(body, i);
    if (i < body.size() && body[i] == ',') {
      i = skip_blank(body, i + 1);
      continue;
    }
    if (i < body.size() && body[i] == ']' && skip_blank(body, i + 1) == body.size()) return Status::ok();
    return json_error(i, "payloads: expected ',' or the closing ']'");
  }
}

}  // namespace ep::ingest
