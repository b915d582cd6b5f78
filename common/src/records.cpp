#include "ep/records.h"

#include <cmath>
#include <functional>

namespace ep {
namespace {

Status get_str(const rapidjson::Value& o, const char* key, std::string& out) {
  auto r = get_string(o, key);
  if (!r) return r.status();
  out.assign(r->data(), r->size());
  return Status::ok();
}
void opt_str(const rapidjson::Value& o, const char* key, std::string& out) {
  if (auto s = opt_string(o, key)) out.assign(s->data(), s->size());
}
Status get_ts(const rapidjson::Value& o, const char* key, TimeNs& out, std::string_view path = {}) {
  auto r = get_time(o, key, path);
  if (!r) return r.status();
  out = *r;
  return Status::ok();
}
Status get_num(const rapidjson::Value& o, const char* key, double& out, std::string_view path = {}) {
  auto r = get_number(o, key, path);
  if (!r) return r.status();
  out = *r;
  return Status::ok();
}
Status get_int(const rapidjson::Value& o, const char* key, std::int64_t& out, bool required) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd() || it->value.IsNull()) {
    if (required) return Status::data(std::string(key) + ": required");
    return Status::ok();
  }
  if (it->value.IsInt64()) {
    out = it->value.GetInt64();
    return Status::ok();
  }
  // A whole double within int64 (2^63 itself is not: the cast would overflow).
  if (it->value.IsNumber()) {
    double d = it->value.GetDouble();
    if (d == std::floor(d) && d >= -0x1p63 && d < 0x1p63) {
      out = static_cast<std::int64_t>(d);
      return Status::ok();
    }
  }
  return Status::data(std::string(key) + ": not an integer in the 64-bit range");
}
void series(JsonWriter& w, const std::string& t, const std::string& d, const std::string& m) {
  w.kv("tenant", t);
  w.kv("device", d);
  w.kv("metric", m);
}
Status get_series(const rapidjson::Value& o, std::string& t, std::string& d, std::string& m) {
  EP_RETURN_IF_ERROR(get_str(o, "tenant", t));
  EP_RETURN_IF_ERROR(get_str(o, "device", d));
  return get_str(o, "metric", m);
}
template <typename T>
std::string render(const T& r) {
  JsonWriter w;
  write_record(w, r);
  return w.take();
}

}  // namespace

size_t SeriesKeyHash::operator()(const SeriesKey& k) const {
  std::hash<std::string> h;
  size_t x = h(k.tenant);
  x ^= h(k.device) + 0x9e3779b97f4a7c15ULL + (x << 6) + (x >> 2);
  x ^= h(k.metric) + 0x9e3779b97f4a7c15ULL + (x << 6) + (x >> 2);
  return x;
}

Kind kind_from_name(std::string_view n) {
  if (n == "point") return Kind::kPoint;
  if (n == "batch") return Kind::kBatch;
  if (n == "window") return Kind::kWindow;
  if (n == "score") return Kind::kScore;
  if (n == "alert") return Kind::kAlert;
  if (n == "truth") return Kind::kTruth;
  return Kind::kUnknown;
}

Kind kind_of(const rapidjson::Value& obj) {
  if (!obj.IsObject()) return Kind::kUnknown;
  auto k = opt_string(obj, "kind");
  return k ? kind_from_name(*k) : Kind::kUnknown;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kBatch: return "batch";
    case Kind::kPoint: return "point";
    case Kind::kWindow: return "window";
    case Kind::kScore: return "score";
    case Kind::kAlert: return "alert";
    case Kind::kTruth: return "truth";
    case Kind::kUnknown: break;
  }
  return "unknown";
}


namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '/' || c == '-';
}

// Consumes a run of name characters; returns its length.
size_t name_run(std::string_view s, size_t at) {
  size_t i = at;
  while (i < s.size() && name_char(s[i])) ++i;
  return i - at;
}

// A label value as append_escaped writes it, from s[at] to its closing quote (exclusive).
// Returns the index of the closing quote, or npos.
size_t escaped_value_end(std::string_view s, size_t at) {
  for (size_t i = at; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') return i;
    if (c < 0x20 || c == 0x7f) return std::string_view::npos;
    if (c == '\\') {
      if (i + 1 >= s.size() || (s[i + 1] != '\\' && s[i + 1] != '"' && s[i + 1] != 'n'))
        return std::string_view::npos;
      ++i;
    }
  }
  return std::string_view::npos;
}

}  // namespace

bool valid_name(std::string_view s, size_t max) {
  return !s.empty() && s.size() <= max && name_run(s, 0) == s.size();
}

const char* metric_problem(std::string_view m, size_t max_len) {
  if (m.empty()) return "empty";
  if (m.size() > max_len) return "longer than the metric length limit";
  size_t n = name_run(m, 0);
  if (n == 0) return "must start with a name of [A-Za-z0-9._:/-]";
  if (n == m.size()) return n <= 128 ? "" : "name longer than 128 characters";
  if (n > 128) return "name longer than 128 characters";
  if (m[n] != '{') return "not a valid name ([A-Za-z0-9._:/-], then optional labels {k=\"v\",…})";
  if (m.back() != '}') return "labels must follow the name as {k=\"v\",…}";
  if (n + 2 == m.size()) return "empty label set";
  std::string_view prev;
  for (size_t i = n + 1; i < m.size() - 1;) {
    size_t k = name_run(m, i);
    if (k == 0) return "label name must be [A-Za-z0-9._:/-]";
    std::string_view key = m.substr(i, k);
    if (!prev.empty() && key <= prev) return "labels must be sorted by name, each once";
    prev = key;
    i += k;
    if (m.compare(i, 2, "=\"") != 0) return "label name must be followed by =\"";
    size_t end = escaped_value_end(m, i + 2);
    if (end == std::string_view::npos || end >= m.size() - 1) return "label value is not a closed, escaped string";
    i = end + 1;
    if (i == m.size() - 1) break;
    if (m[i] != ',') return "labels must be separated by ','";
    ++i;
  }
  return "";
}

bool valid_tenant(std::string_view s) {
  return valid_name(s) && s.find('/') == std::string_view::npos && s.front() != '.';
}

bool is_boolean_feature(std::string_view name) { return name == "stuck"; }

const double* Window::feature(std::string_view name) const {
  for (const auto& f : features)
    if (f.name == name) return &f.value;
  return nullptr;
}

// ---- Batch
Status parse_record(const rapidjson::Value& o, Batch& b) {
  if (!o.IsObject()) return Status::data("record is not a JSON object");
  EP_RETURN_IF_ERROR(get_str(o, "batch_id", b.batch_id));
  EP_RETURN_IF_ERROR(get_str(o, "tenant", b.tenant));
  EP_RETURN_IF_ERROR(get_str(o, "device", b.device));
  b.source.clear();
  opt_str(o, "source", b.source);
  EP_RETURN_IF_ERROR(get_ts(o, "received_at", b.received_at));
  b.sha256.clear();
  opt_str(o, "sha256", b.sha256);
  auto pts = o.FindMember("points");
  if (pts == o.MemberEnd() || !pts->value.IsArray()) return Status::data("points: required array");
  b.points.clear();
  b.points.reserve(pts->value.Size());
  std::string path;
  for (rapidjson::SizeType i = 0; i < pts->value.Size(); ++i) {
    const auto& p = pts->value[i];
    path = "points[" + std::to_string(i) + "]";
    if (!p.IsObject()) return Status::data(path + ": not an object");
    BatchPoint bp;
    auto m = get_string(p, "metric", path);
    if (!m) return m.status();
    bp.metric.assign(m->data(), m->size());
    EP_RETURN_IF_ERROR(get_ts(p, "ts", bp.ts, path));
    EP_RETURN_IF_ERROR(get_num(p, "value", bp.value, path));
    opt_str(p, "unit", bp.unit);
    b.points.push_back(std::move(bp));
  }
  b.raw.reset();
  b.archive.reset();
  if (auto r = opt_string(o, "raw")) b.raw = std::string(*r);
  if (auto a = opt_string(o, "archive")) b.archive = std::string(*a);
  return Status::ok();
}

void write_record(JsonWriter& w, const Batch& b) {
  w.start_object();
  w.kv("kind", "batch");
  w.kv("batch_id", b.batch_id);
  w.kv("tenant", b.tenant);
  w.kv("device", b.device);
  w.kv("source", b.source);
  w.kv_time("received_at", b.received_at);
  w.kv("sha256", b.sha256);
  w.key("points");
  w.start_array();
  for (const auto& p : b.points) {
    w.start_object();
    w.kv("metric", p.metric);
    w.kv_time("ts", p.ts);
    w.kv("value", p.value);
    if (!p.unit.empty()) w.kv("unit", p.unit);
    w.end_object();
  }
  w.end_array();
  if (b.raw) w.kv("raw", *b.raw);
  if (b.archive) w.kv("archive", *b.archive);
  w.end_object();
}

// ---- Point
Status parse_record(const rapidjson::Value& o, Point& p) {
  if (!o.IsObject()) return Status::data("record is not a JSON object");
  EP_RETURN_IF_ERROR(get_series(o, p.tenant, p.device, p.metric));
  EP_RETURN_IF_ERROR(get_ts(o, "ts", p.ts));
  EP_RETURN_IF_ERROR(get_num(o, "value", p.value));
  p.unit.clear();
  p.batch_id.clear();
  opt_str(o, "unit", p.unit);
  opt_str(o, "batch_id", p.batch_id);
  return Status::ok();
}

void write_record(JsonWriter& w, const Point& p) {
  w.start_object();
  w.kv("kind", "point");
  series(w, p.tenant, p.device, p.metric);
  w.kv_time("ts", p.ts);
  w.kv("value", p.value);
  if (!p.unit.empty()) w.kv("unit", p.unit);
  if (!p.batch_id.empty()) w.kv("batch_id", p.batch_id);
  w.end_object();
}

// ---- Window
Status parse_record(const rapidjson::Value& o, Window& win) {
  if (!o.IsObject()) return Status::data("record is not a JSON object");
  EP_RETURN_IF_ERROR(get_series(o, win.tenant, win.device, win.metric));
  EP_RETURN_IF_ERROR(get_ts(o, "start", win.start));
  EP_RETURN_IF_ERROR(get_ts(o, "end", win.end));
  win.n = win.expected = 0;
  EP_RETURN_IF_ERROR(get_int(o, "n", win.n, true));
  EP_RETURN_IF_ERROR(get_int(o, "expected", win.expected, false));
  win.features.clear();
  auto f = o.FindMember("features");
  if (f == o.MemberEnd() || !f->value.IsObject()) return Status::data("features: required object");
  for (auto it = f->value.MemberBegin(); it != f->value.MemberEnd(); ++it) {
    std::string name(it->name.GetString(), it->name.GetStringLength());
    double v;
    if (it->value.IsBool()) v = it->value.GetBool() ? 1 : 0;
    else if (it->value.IsNumber()) v = it->value.GetDouble();
    else if (it->value.IsNull()) v = std::nan("");
    else return Status::data("features." + name + ": not a number");
    win.features.push_back({std::move(name), v});
  }
  return Status::ok();
}

void write_record(JsonWriter& w, const Window& win) {
  w.start_object();
  w.kv("kind", "window");
  series(w, win.tenant, win.device, win.metric);
  w.kv_time("start", win.start);
  w.kv_time("end", win.end);
  w.kv("n", win.n);
  w.kv("expected", win.expected);
  w.key("features");
  w.start_object();
  for (const auto& f : win.features) {
    if (is_boolean_feature(f.name)) w.kv(f.name, f.value != 0);
    else w.kv(f.name, f.value);
  }
  w.end_object();
  w.end_object();
}

// ---- Score
Status parse_record(const rapidjson::Value& o, Score& s) {
  if (!o.IsObject()) return Status::data("record is not a JSON object");
  EP_RETURN_IF_ERROR(get_series(o, s.tenant, s.device, s.metric));
  EP_RETURN_IF_ERROR(get_ts(o, "start", s.start));
  EP_RETURN_IF_ERROR(get_ts(o, "end", s.end));
  EP_RETURN_IF_ERROR(get_num(o, "score", s.score));
  if (s.score < 0 || s.score > 1) return Status::data("score: not in [0,1]");
  auto a = o.FindMember("anomaly");
  if (a == o.MemberEnd() || !a->value.IsBool()) return Status::data("anomaly: required boolean");
  s.anomaly = a->value.GetBool();
  s.label = "normal";
  s.model.clear();
  s.status.clear();
  opt_str(o, "label", s.label);
  opt_str(o, "model", s.model);
  opt_str(o, "status", s.status);
  s.explanation.clear();
  auto ex = o.FindMember("explanation");
  if (ex != o.MemberEnd() && ex->value.IsArray()) {
    for (rapidjson::SizeType i = 0; i < ex->value.Size(); ++i) {
      const auto& e = ex->value[i];
      if (!e.IsObject()) return Status::data("explanation[" + std::to_string(i) + "]: not an object");
      Explanation x;
      opt_str(e, "feature", x.feature);
      auto num = [&](const char* k) {
        auto it = e.FindMember(k);
        return it != e.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : std::nan("");
      };
      x.value = num("value");
      x.baseline = num("baseline");
      x.z = num("z");
      s.explanation.push_back(std::move(x));
    }
  }
  return Status::ok();
}

void write_record(JsonWriter& w, const Score& s) {
  w.start_object();
  w.kv("kind", "score");
  series(w, s.tenant, s.device, s.metric);
  w.kv_time("start", s.start);
  w.kv_time("end", s.end);
  w.kv("score", s.score);
  w.kv("anomaly", s.anomaly);
  w.kv("label", s.label);
  w.kv("model", s.model);
  if (!s.status.empty()) w.kv("status", s.status);
  w.key("explanation");
  write_explanation(w, s.explanation);
  w.end_object();
}

void write_explanation(JsonWriter& w, const std::vector<Explanation>& ex) {
  w.start_array();
  for (const auto& e : ex) {
    w.start_object();
    w.kv("feature", e.feature);
    w.kv("value", e.value);
    w.kv("baseline", e.baseline);
    w.kv("z", e.z);
    w.end_object();
  }
  w.end_array();
}

// ---- Alert
Status parse_record(const rapidjson::Value& o, Alert& a) {
  if (!o.IsObject()) return Status::data("record is not a JSON object");
  EP_RETURN_IF_ERROR(get_str(o, "alert_id", a.alert_id));
  EP_RETURN_IF_ERROR(get_str(o, "rule", a.rule));
  EP_RETURN_IF_ERROR(get_series(o, a.tenant, a.device, a.metric));
  EP_RETURN_IF_ERROR(get_ts(o, "end", a.end));
  a.start = 0;
  if (o.HasMember("start")) EP_RETURN_IF_ERROR(get_ts(o, "start", a.start));
  EP_RETURN_IF_ERROR(get_num(o, "score", a.score));
  for (auto [k, dst] : {std::pair{"label", &a.label}, {"webhook", &a.webhook},
                        {"status", &a.status}, {"type", &a.type}, {"severity", &a.severity},
                        {"error", &a.error}}) {
    dst->clear();
    opt_str(o, k, *dst);
  }
  std::int64_t v = 0;
  EP_RETURN_IF_ERROR(get_int(o, "attempts", v, false));
  a.attempts = static_cast<int>(v);
  v = 0;
  EP_RETURN_IF_ERROR(get_int(o, "http_status", v, false));
  a.http_status = static_cast<int>(v);
  return Status::ok();
}

void write_record(JsonWriter& w, const Alert& a) {
  w.start_object();
  w.kv("kind", "alert");
  w.kv("alert_id", a.alert_id);
  w.kv("rule", a.rule);
  series(w, a.tenant, a.device, a.metric);
  if (a.start) w.kv_time("start", a.start);
  w.kv_time("end", a.end);
  w.kv("score", a.score);
  w.kv("label", a.label);
  if (!a.type.empty()) w.kv("type", a.type);
  if (!a.severity.empty()) w.kv("severity", a.severity);
  w.kv("webhook", a.webhook);
  w.kv("status", a.status);
  w.kv("attempts", a.attempts);
  if (a.http_status) w.kv("http_status", a.http_status);
  else {
    w.key("http_status");
    w.null();
  }
  if (!a.error.empty()) w.kv("error", a.error);
  w.end_object();
}

// ---- Truth
Status parse_record(const rapidjson::Value& o, Truth& t) {
  if (!o.IsObject()) return Status::data("record is not a JSON object");
  EP_RETURN_IF_ERROR(get_series(o, t.tenant, t.device, t.metric));
  EP_RETURN_IF_ERROR(get_ts(o, "start", t.start));
  EP_RETURN_IF_ERROR(get_ts(o, "end", t.end));
  return get_str(o, "type", t.type);
}

void write_record(JsonWriter& w, const Truth& t) {
  w.start_object();
  w.kv("kind", "truth");
  series(w, t.tenant, t.device, t.metric);
  w.kv_time("start", t.start);
  w.kv_time("end", t.end);
  w.kv("type", t.type);
  w.end_object();
}

std::string to_ndjson(const Batch& r) { return render(r); }
std::string to_ndjson(const Point& r) { return render(r); }
std::string to_ndjson(const Window& r) { return render(r); }
std::string to_ndjson(const Score& r) { return render(r); }
std::string to_ndjson(const Alert& r) { return render(r); }
std::string to_ndjson(const Truth& r) { return render(r); }

std::vector<Point> points_of(const Batch& b) {
  std::vector<Point> out;
  out.reserve(b.points.size());
  for (const auto& p : b.points)
    out.push_back(Point{b.tenant, b.device, p.metric, p.ts, p.value, p.unit, b.batch_id});
  return out;
}

}  // namespace ep
