#include "state.h"

#include <cerrno>
#include <sys/stat.h>

#include "ep/fsutil.h"
#include "ep/json.h"

namespace ep::alert {
namespace {

constexpr int kStateVersion = 1;

void write_time_or_null(JsonWriter& w, std::string_view k, TimeNs t) {
  w.key(k);
  if (t == kNever) w.null();
  else w.num(static_cast<std::int64_t>(t));
}

// Field readers for the state document; errors name the path.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  Status str(const rapidjson::Value& o, const char* k, std::string& out) const {
    auto it = o.FindMember(k);
    if (it == o.MemberEnd() || !it->value.IsString()) return bad(k, "string required");
    out.assign(it->value.GetString(), it->value.GetStringLength());
    return Status::ok();
  }
  Status i64(const rapidjson::Value& o, const char* k, std::int64_t& out, bool nullable) const {
    auto it = o.FindMember(k);
    if (it == o.MemberEnd()) return bad(k, "required");
    if (nullable && it->value.IsNull()) {
      out = kNever;
      return Status::ok();
    }
    if (!it->value.IsInt64()) return bad(k, "integer required");
    out = it->value.GetInt64();
    return Status::ok();
  }
  Status boolean(const rapidjson::Value& o, const char* k, bool& out) const {
    auto it = o.FindMember(k);
    if (it == o.MemberEnd() || !it->value.IsBool()) return bad(k, "boolean required");
    out = it->value.GetBool();
    return Status::ok();
  }
  Status bad(std::string_view field, std::string_view reason) const {
    return Status::data(path_ + ": " + ctx_ + std::string(field) + ": " + std::string(reason));
  }
  void set_ctx(std::string c) { ctx_ = std::move(c) + "."; }

 private:
  std::string path_;
  std::string ctx_;
};

Status read_series(const Reader& r, const rapidjson::Value& o, State& s) {
  std::string rule, tenant, device, metric;
  EP_RETURN_IF_ERROR(r.str(o, "rule", rule));
  EP_RETURN_IF_ERROR(r.str(o, "tenant", tenant));
  EP_RETURN_IF_ERROR(r.str(o, "device", device));
  EP_RETURN_IF_ERROR(r.str(o, "metric", metric));
  SeriesState st;
  std::int64_t consecutive = 0;
  EP_RETURN_IF_ERROR(r.i64(o, "last_end", st.last_end, true));
  EP_RETURN_IF_ERROR(r.i64(o, "consecutive", consecutive, false));
  st.consecutive = static_cast<int>(consecutive);
  EP_RETURN_IF_ERROR(r.boolean(o, "firing", st.firing));
  EP_RETURN_IF_ERROR(r.boolean(o, "notified", st.notified));
  EP_RETURN_IF_ERROR(r.i64(o, "last_notified", st.last_notified, true));
  EP_RETURN_IF_ERROR(r.boolean(o, "held", st.held));
  EP_RETURN_IF_ERROR(r.i64(o, "normal_since", st.normal_since, true));
  auto f = o.FindMember("fires");
  if (f == o.MemberEnd() || !f->value.IsArray()) return r.bad("fires", "array required");
  for (const auto& v : f->value.GetArray()) {
    if (!v.IsInt64()) return r.bad("fires", "integers required");
    st.fires.push_back(v.GetInt64());
  }
  s.series[State::series_key(rule, tenant, device, metric)] = std::move(st);
  return Status::ok();
}

Status read_delivery(const Reader& r, const rapidjson::Value& o, State& s) {
  Delivery d;
  for (auto [k, dst] : {std::pair{"alert_id", &d.alert_id}, {"webhook", &d.webhook},
                        {"type", &d.type}, {"rule", &d.rule}, {"tenant", &d.tenant},
                        {"device", &d.device}, {"metric", &d.metric}, {"label", &d.label},
                        {"severity", &d.severity}, {"body", &d.body}, {"error", &d.error}})
    EP_RETURN_IF_ERROR(r.str(o, k, *dst));
  std::int64_t attempts = 0, http = 0;
  EP_RETURN_IF_ERROR(r.i64(o, "start", d.start, false));
  EP_RETURN_IF_ERROR(r.i64(o, "end", d.end, false));
  EP_RETURN_IF_ERROR(r.i64(o, "created", d.created, false));
  EP_RETURN_IF_ERROR(r.i64(o, "attempts", attempts, false));
  EP_RETURN_IF_ERROR(r.i64(o, "next_attempt", d.next_attempt, false));
  EP_RETURN_IF_ERROR(r.i64(o, "http_status", http, false));
  EP_RETURN_IF_ERROR(r.boolean(o, "failed", d.failed));
  auto sc = o.FindMember("score");
  if (sc == o.MemberEnd() || !sc->value.IsNumber()) return r.bad("score", "number required");
  d.score = sc->value.GetDouble();
  d.attempts = static_cast<int>(attempts);
  d.http_status = static_cast<int>(http);
  s.deliveries[d.key()] = std::move(d);
  return Status::ok();
}

}  // namespace

std::string State::series_key(std::string_view rule, std::string_view tenant,
                              std::string_view device, std::string_view metric) {
  std::string k;
  k.reserve(rule.size() + tenant.size() + device.size() + metric.size() + 3);
  k.append(rule).push_back('\x1f');
  k.append(tenant).push_back('\x1f');
  k.append(device).push_back('\x1f');
  k.append(metric);
  return k;
}

std::string serialize_state(const State& s, TimeNs now) {
  JsonWriter w;
  w.start_object();
  w.kv("kind", "ep-alert-state");
  w.kv("version", kStateVersion);
  w.kv_time("saved_at", now);
  w.key("series");
  w.start_array();
  // Sorted so that the file is stable and diffable.
  std::map<std::string_view, const SeriesState*> sorted;
  for (const auto& [k, v] : s.series) sorted.emplace(k, &v);
  for (const auto& [k, st] : sorted) {
    std::string_view parts[4];
    size_t pos = 0;
    for (int i = 0; i < 4; ++i) {
      size_t next = i < 3 ? k.find('\x1f', pos) : k.size();
      parts[i] = k.substr(pos, next - pos);
      pos = next + 1;
    }
    w.start_object();
    w.kv("rule", parts[0]);
    w.kv("tenant", parts[1]);
    w.kv("device", parts[2]);
    w.kv("metric", parts[3]);
    write_time_or_null(w, "last_end", st->last_end);
    w.kv("consecutive", st->consecutive);
    w.kv("firing", st->firing);
    w.kv("notified", st->notified);
    write_time_or_null(w, "last_notified", st->last_notified);
    w.kv("held", st->held);
    write_time_or_null(w, "normal_since", st->normal_since);
    w.key("fires");
    w.start_array();
    for (TimeNs t : st->fires) w.num(static_cast<std::int64_t>(t));
    w.end_array();
    w.end_object();
  }
  w.end_array();
  w.key("deliveries");
  w.start_array();
  for (const auto& [k, d] : s.deliveries) {
    w.start_object();
    w.kv("alert_id", d.alert_id);
    w.kv("webhook", d.webhook);
    w.kv("type", d.type);
    w.kv("rule", d.rule);
    w.kv("tenant", d.tenant);
    w.kv("device", d.device);
    w.kv("metric", d.metric);
    w.kv("label", d.label);
    w.kv("severity", d.severity);
    w.kv("start", static_cast<std::int64_t>(d.start));
    w.kv("end", static_cast<std::int64_t>(d.end));
    w.kv("score", d.score);
    w.kv("created", static_cast<std::int64_t>(d.created));
    w.kv("attempts", d.attempts);
    w.kv("next_attempt", static_cast<std::int64_t>(d.next_attempt));
    w.kv("failed", d.failed);
    w.kv("http_status", d.http_status);
    w.kv("error", d.error);
    w.kv("body", d.body);
    w.end_object();
  }
  w.end_array();
  w.key("disabled_webhooks");
  w.start_array();
  for (const auto& [name, d] : s.disabled) {
    w.start_object();
    w.kv("name", name);
    w.kv("since", static_cast<std::int64_t>(d.since));
    w.kv("reason", d.reason);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.take();
}

Result<State> load_state(const std::string& path) {
  State s;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return s;
    return Status::io(path + ": " + std::strerror(errno));
  }
  auto text = fs::read_file(path);
  if (!text) return Status::io(text.status().message());
  rapidjson::Document doc;
  if (auto st2 = parse_json(*text, doc); !st2)
    return Status::data(path + ": not a state file: " + st2.message());
  Reader r(path);
  if (!doc.IsObject()) return r.bad("", "not a JSON object");
  std::int64_t version = 0;
  EP_RETURN_IF_ERROR(r.i64(doc, "version", version, false));
  if (version != kStateVersion)
    return r.bad("version", "unsupported state version " + std::to_string(version));
  for (auto [name, fn] : {std::pair{"series", &read_series}, {"deliveries", &read_delivery}}) {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd() || !it->value.IsArray()) return r.bad(name, "array required");
    size_t i = 0;
    for (const auto& o : it->value.GetArray()) {
      Reader ri(path);
      ri.set_ctx(std::string(name) + "[" + std::to_string(i++) + "]");
      if (!o.IsObject()) return ri.bad("", "object required");
      EP_RETURN_IF_ERROR(fn(ri, o, s));
    }
  }
  auto dis = doc.FindMember("disabled_webhooks");
  if (dis != doc.MemberEnd() && dis->value.IsArray()) {
    for (const auto& o : dis->value.GetArray()) {
      std::string name;
      DisabledWebhook d;
      EP_RETURN_IF_ERROR(r.str(o, "name", name));
      EP_RETURN_IF_ERROR(r.i64(o, "since", d.since, false));
      EP_RETURN_IF_ERROR(r.str(o, "reason", d.reason));
      s.disabled[name] = std::move(d);
    }
  }
  return s;
}

Status save_state(const std::string& path, const State& s, TimeNs now) {
  return fs::write_file_atomic(path, serialize_state(s, now) + "\n", false, 0600);
}

}  // namespace ep::alert
