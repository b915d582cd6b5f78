// Routes that change things: devices and metrics (POST), alert rules and webhooks
// (full CRUD, webhook secret rotation). Bodies are JSON objects; an unknown field is
// an error naming it, so a typo never silently does nothing.
#include <cmath>
#include <regex>

#include "ep/crypto.h"
#include "ep/json.h"
#include "routes.h"
#include "util.h"

namespace ep::api {
namespace {

Result<rapidjson::Document> parse_body(const Ctx& c, std::initializer_list<const char*> known) {
  rapidjson::Document doc;
  if (c.req.body.empty()) return Status::usage("body: a JSON object is required");
  std::string_view ct = c.req.header("content-type");
  if (!ct.empty() && !ct.starts_with("application/json"))
    return Status::usage("Content-Type: must be application/json");
  EP_RETURN_IF_ERROR(parse_json(c.req.body, doc).with_context("body"));
  if (!doc.IsObject()) return Status::usage("body: not a JSON object");
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string_view k(it->name.GetString(), it->name.GetStringLength());
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) return Status::usage(std::string(k) + ": unknown field");
  }
  return doc;
}

bool has(const rapidjson::Value& o, const char* k) { return o.HasMember(k); }

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char ch : s)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == ':' ||
          ch == '/' || ch == '-'))
      return false;
  return true;
}

Result<std::string> req_name(const rapidjson::Value& o, const char* k) {
  if (!has(o, k)) return Status::usage(std::string(k) + ": required");
  if (!o[k].IsString()) return Status::usage(std::string(k) + ": not a string");
  std::string v = o[k].GetString();
  if (!valid_name(v)) return Status::usage(std::string(k) + ": must match [A-Za-z0-9._:/-]{1,128}");
  return v;
}

Result<std::optional<std::string>> opt_str_field(const rapidjson::Value& o, const char* k,
                                                 size_t max_len) {
  if (!has(o, k) || o[k].IsNull()) return std::optional<std::string>();
  if (!o[k].IsString()) return Status::usage(std::string(k) + ": not a string");
  std::string v = o[k].GetString();
  if (v.size() > max_len)
    return Status::usage(std::string(k) + ": longer than " + std::to_string(max_len));
  return std::optional<std::string>(v);
}

Result<std::optional<double>> opt_num(const rapidjson::Value& o, const char* k, double lo,
                                      double hi, bool integer = false) {
  if (!has(o, k)) return std::optional<double>();
  if (!o[k].IsNumber()) return Status::usage(std::string(k) + ": not a number");
  double v = o[k].GetDouble();
  if (!std::isfinite(v) || v < lo || v > hi)
    return Status::usage(std::string(k) + ": out of range");
  if (integer && v != std::floor(v)) return Status::usage(std::string(k) + ": not an integer");
  return std::optional<double>(v);
}

Result<std::optional<bool>> opt_bool(const rapidjson::Value& o, const char* k) {
  if (!has(o, k)) return std::optional<bool>();
  if (!o[k].IsBool()) return Status::usage(std::string(k) + ": not a boolean");
  return std::optional<bool>(o[k].GetBool());
}

// A device/metric glob as alert rules use it: names plus '*' and '?'.
bool valid_glob(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char ch : s)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) ||
          std::string_view("._:/-*?").find(ch) != std::string_view::npos))
      return false;
  return true;
}

bool valid_url(std::string_view u) {
  static const std::regex re(R"(^https?://[^\s/?#@]+(:[0-9]{1,5})?(/[^\s]*)?$)");
  return u.size() <= 2048 && std::regex_match(u.begin(), u.end(), re);
}

std::string new_secret() {
  unsigned char b[24];
  crypto::random_bytes(b, sizeof b);
  return "whsec_" + crypto::base64(std::string_view(reinterpret_cast<char*>(b), sizeof b));
}

// Runs a statement that is one row of the tenant's, or not found.
Status need_row(const Result<pg::Rows>& r, const std::string& what) {
  if (!r.is_ok()) return r.status();
  if (r->empty()) return Status::not_found(what + " not found");
  return Status::ok();
}

Status conflict_or(const Status& s, const std::string& what) {
  if (s.code() == Code::kConflict) return Status::conflict(what);
  return s;
}

}  // namespace

// ---- devices, metrics ----

Result<Response> create_device(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_TRY(body, parse_body(c, {"external_id"}));
  EP_TRY(ext, req_name(body, "external_id"));
  auto r = c.db.exec(
      "INSERT INTO devices (tenant_id, external_id) VALUES ($1, $2) ON CONFLICT DO NOTHING "
      "RETURNING device_id::text",
      {c.tenant.id, ext});
  if (!r) return r.status();
  if (r->empty()) return Status::conflict("external_id: device " + ext + " already exists");
  c.params = {r->str(0, 0)};
  EP_TRY(resp, get_device(c));
  resp.status = 201;
  resp.headers.emplace_back("Location", "/v1/devices/" + c.params[0]);
  return std::move(resp);
}

Result<Response> create_metric(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_TRY(body, parse_body(c, {"device_id", "name", "unit", "expected_interval_sec"}));
  if (!has(body, "device_id") || !body["device_id"].IsString() ||
      !is_uuid(body["device_id"].GetString()))
    return Status::usage("device_id: required, a UUID");
  std::string device_id = body["device_id"].GetString();
  EP_TRY(name, req_name(body, "name"));
  EP_TRY(unit, opt_str_field(body, "unit", 16));
  EP_TRY(interval, opt_num(body, "expected_interval_sec", 0.001, 86400.0 * 365));
  auto dev = c.db.exec("SELECT 1 FROM devices WHERE tenant_id = $1 AND device_id = $2",
                       {c.tenant.id, device_id});
  if (!dev) return dev.status();
  if (dev->empty()) return Status::usage("device_id: no such device");
  auto r = c.db.exec(
      "INSERT INTO metrics (tenant_id, device_id, name, unit, expected_interval) "
      "VALUES ($1, $2, $3, coalesce($4, ''), make_interval(secs => $5::float8)) "
      "ON CONFLICT DO NOTHING RETURNING metric_id::text",
      {c.tenant.id, device_id, name, unit, interval});
  if (!r) return r.status();
  if (r->empty())
    return Status::conflict("name: metric " + name + " already exists on this device");
  c.params = {r->str(0, 0)};
  EP_TRY(resp, get_metric(c));
  resp.status = 201;
  resp.headers.emplace_back("Location", "/v1/metrics/" + c.params[0]);
  return std::move(resp);
}

// ---- alert rules ----

static constexpr const char* kRuleSelect =
    "SELECT rule_id::text, name, device, metric, min_score, array_to_json(labels)::text, "
    "       consecutive, extract(epoch FROM cooldown)::float8, webhook_id::text, enabled, "
    "created_at "
    "FROM alert_rules ";

static void write_rule(JsonWriter& w, const pg::Rows& r, int i) {
  w.start_object();
  w.kv("rule_id", r.str(i, 0));
  w.kv("name", r.str(i, 1));
  w.kv("device", r.str(i, 2));
  w.kv("metric", r.str(i, 3));
  w.kv("min_score", r.get_double(i, 4));
  w.key("labels");
  w.raw(r.get(i, 5));
  w.kv("consecutive", r.get_int(i, 6));
  w.kv("cooldown_sec", r.get_double(i, 7));
  kv_nullable_str(w, "webhook_id", r, i, 8);
  w.kv("enabled", r.get_bool(i, 9));
  w.kv_time("created_at", r.get_ts(i, 10));
  w.end_object();
}

Result<Response> list_rules(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {"limit", "cursor"}));
  EP_TRY(limit, q_limit(c));
  pg::Param after = nullptr;
  if (auto cur = q_str(c, "cursor")) {
    EP_TRY(f, decode_cursor(*cur, 1));
    after = f[0];
  }
  auto rows = c.db.exec(std::string(kRuleSelect) +
                            "WHERE tenant_id = $1 AND ($2::text IS NULL OR name > $2) "
                            "ORDER BY name LIMIT $3",
                        {c.tenant.id, after, limit + 1});
  if (!rows) return rows.status();
  return page_response(
      *rows, limit, [&](JsonWriter& w, int i) { write_rule(w, *rows, i); },
      [&](int i) { return encode_cursor({rows->str(i, 1)}); });
}

Result<Response> get_rule(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_RETURN_IF_ERROR(path_uuid(c.params[0], "alert rule"));
  auto rows = c.db.exec(std::string(kRuleSelect) + "WHERE tenant_id = $1 AND rule_id = $2",
                        {c.tenant.id, c.params[0]});
  EP_RETURN_IF_ERROR(need_row(rows, "alert rule " + c.params[0]));
  JsonWriter w;
  write_rule(w, *rows, 0);
  return json_response(200, w.take());
}

// The validated fields of a rule body; absent fields stay nullopt (PATCH keeps them).
struct RuleFields {
  std::optional<std::string> name, device, metric, labels_json, webhook_id;
  bool webhook_null = false;
  std::optional<double> min_score, consecutive, cooldown;
  std::optional<bool> enabled;
};

static Result<RuleFields> rule_fields(const Ctx& c, const rapidjson::Value& b) {
  RuleFields f;
  if (has(b, "name")) {
    EP_TRY(n, req_name(b, "name"));
    f.name = n;
  }
  for (const char* k : {"device", "metric"}) {
    EP_TRY(g, opt_str_field(b, k, 128));
    if (g && !valid_glob(*g)) return Status::usage(std::string(k) + ": not a name or glob");
    (std::string_view(k) == "device" ? f.device : f.metric) = g;
  }
  EP_TRY(ms, opt_num(b, "min_score", 0, 1));
  f.min_score = ms;
  EP_TRY(cons, opt_num(b, "consecutive", 1, 1000, true));
  f.consecutive = cons;
  EP_TRY(cd, opt_num(b, "cooldown_sec", 0, 86400.0 * 30));
  f.cooldown = cd;
  EP_TRY(en, opt_bool(b, "enabled"));
  f.enabled = en;
  if (has(b, "labels")) {
    if (!b["labels"].IsArray()) return Status::usage("labels: not an array");
    JsonWriter w;
    w.start_array();
    size_t i = 0;
    for (const auto& v : b["labels"].GetArray()) {
      if (!v.IsString() || !is_label(v.GetString()))
        return Status::usage("labels[" + std::to_string(i) + "]: not one of " + labels_list());
      w.str(v.GetString());
      ++i;
    }
    w.end_array();
    f.labels_json = w.take();
  }
  if (has(b, "webhook_id")) {
    if (b["webhook_id"].IsNull()) {
      f.webhook_null = true;
    } else {
      if (!b["webhook_id"].IsString() || !is_uuid(b["webhook_id"].GetString()))
        return Status::usage("webhook_id: not a UUID");
      f.webhook_id = b["webhook_id"].GetString();
      // Another tenant's webhook is as unknown as a missing one.
      auto r = c.db.exec("SELECT 1 FROM webhooks WHERE tenant_id = $1 AND webhook_id = $2",
                         {c.tenant.id, *f.webhook_id});
      if (!r) return r.status();
      if (r->empty()) return Status::usage("webhook_id: no such webhook");
    }
  }
  return f;
}

static constexpr std::initializer_list<const char*> kRuleKeys = {
    "name",        "device",       "metric",     "min_score", "labels",
    "consecutive", "cooldown_sec", "webhook_id", "enabled"};

Result<Response> create_rule(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_TRY(body, parse_body(c, kRuleKeys));
  if (!has(body, "name")) return Status::usage("name: required");
  EP_TRY(f, rule_fields(c, body));
  auto r = c.db.exec(
      "INSERT INTO alert_rules (tenant_id, name, device, metric, min_score, labels, consecutive, "
      "  cooldown, webhook_id, enabled) "
      "SELECT $1, $2, coalesce($3, '*'), coalesce($4, '*'), coalesce($5::float8, 0.5), "
      "  coalesce(ARRAY(SELECT json_array_elements_text($6::json)), '{}'), coalesce($7::int, 1), "
      "  coalesce(make_interval(secs => $8::float8), interval '15 minutes'), $9::uuid, "
      "  coalesce($10::bool, true) "
      "RETURNING rule_id::text",
      {c.tenant.id, f.name, f.device, f.metric, f.min_score, f.labels_json,
       f.consecutive ? pg::Param(static_cast<std::int64_t>(*f.consecutive)) : pg::Param(nullptr),
       f.cooldown, f.webhook_id, f.enabled});
  if (!r) return conflict_or(r.status(), "name: an alert rule named " + *f.name + " exists");
  c.params = {r->str(0, 0)};
  EP_TRY(resp, get_rule(c));
  resp.status = 201;
  resp.headers.emplace_back("Location", "/v1/alert-rules/" + c.params[0]);
  return std::move(resp);
}

Result<Response> update_rule(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_RETURN_IF_ERROR(path_uuid(c.params[0], "alert rule"));
  EP_TRY(body, parse_body(c, kRuleKeys));
  EP_TRY(f, rule_fields(c, body));
  auto r = c.db.exec(
      "UPDATE alert_rules SET name = coalesce($3, name), device = coalesce($4, device), "
      "  metric = coalesce($5, metric), min_score = coalesce($6::float8, min_score), "
      "  labels = CASE WHEN $7::json IS NULL THEN labels "
      "                ELSE ARRAY(SELECT json_array_elements_text($7::json)) END, "
      "  consecutive = coalesce($8::int, consecutive), "
      "  cooldown = coalesce(make_interval(secs => $9::float8), cooldown), "
      "  webhook_id = CASE WHEN $11::bool THEN NULL ELSE coalesce($10::uuid, webhook_id) END, "
      "  enabled = coalesce($12::bool, enabled) "
      "WHERE tenant_id = $1 AND rule_id = $2 RETURNING 1",
      {c.tenant.id, c.params[0], f.name, f.device, f.metric, f.min_score, f.labels_json,
       f.consecutive ? pg::Param(static_cast<std::int64_t>(*f.consecutive)) : pg::Param(nullptr),
       f.cooldown, f.webhook_id, f.webhook_null, f.enabled});
  if (!r) return conflict_or(r.status(), "name: another alert rule has this name");
  if (r->empty()) return Status::not_found("alert rule " + c.params[0] + " not found");
  return get_rule(c);
}

Result<Response> delete_rule(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_RETURN_IF_ERROR(path_uuid(c.params[0], "alert rule"));
  auto r = c.db.exec("DELETE FROM alert_rules WHERE tenant_id = $1 AND rule_id = $2 RETURNING 1",
                     {c.tenant.id, c.params[0]});
  EP_RETURN_IF_ERROR(need_row(r, "alert rule " + c.params[0]));
  Response resp;
  resp.status = 204;
  resp.content_type.clear();
  return resp;
}

// ---- webhooks ----

static constexpr const char* kHookSelect =
    "SELECT webhook_id::text, name, url, enabled, timeout_ms, max_attempts, created_at, "
    "       left(secret, 10) "
    "FROM webhooks ";

// The secret itself only when just created or rotated; otherwise a hint of its start.
static void write_hook(JsonWriter& w, const pg::Rows& r, int i, const std::string* secret) {
  w.start_object();
  w.kv("webhook_id", r.str(i, 0));
  w.kv("name", r.str(i, 1));
  w.kv("url", r.str(i, 2));
  w.kv("enabled", r.get_bool(i, 3));
  w.kv("timeout_ms", r.get_int(i, 4));
  w.kv("max_attempts", r.get_int(i, 5));
  w.kv_time("created_at", r.get_ts(i, 6));
  w.kv("secret_hint", r.str(i, 7) + "…");
  if (secret) w.kv("secret", *secret);
  w.end_object();
}

Result<Response> list_webhooks(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {"limit", "cursor"}));
  EP_TRY(limit, q_limit(c));
  pg::Param after = nullptr;
  if (auto cur = q_str(c, "cursor")) {
    EP_TRY(f, decode_cursor(*cur, 1));
    after = f[0];
  }
  auto rows = c.db.exec(std::string(kHookSelect) +
                            "WHERE tenant_id = $1 AND ($2::text IS NULL OR name > $2) "
                            "ORDER BY name LIMIT $3",
                        {c.tenant.id, after, limit + 1});
  if (!rows) return rows.status();
  return page_response(
      *rows, limit, [&](JsonWriter& w, int i) { write_hook(w, *rows, i, nullptr); },
      [&](int i) { return encode_cursor({rows->str(i, 1)}); });
}

static Result<Response> render_hook(Ctx& c, const std::string* secret, int status) {
  auto rows = c.db.exec(std::string(kHookSelect) + "WHERE tenant_id = $1 AND webhook_id = $2",
                        {c.tenant.id, c.params[0]});
  EP_RETURN_IF_ERROR(need_row(rows, "webhook " + c.params[0]));
  JsonWriter w;
  write_hook(w, *rows, 0, secret);
  Response r = json_response(status, w.take());
  if (secret) r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

Result<Response> get_webhook(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_RETURN_IF_ERROR(path_uuid(c.params[0], "webhook"));
  return render_hook(c, nullptr, 200);
}

static constexpr std::initializer_list<const char*> kHookKeys = {"name", "url", "enabled",
                                                                 "timeout_ms", "max_attempts"};

Result<Response> create_webhook(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_TRY(body, parse_body(c, kHookKeys));
  EP_TRY(name, req_name(body, "name"));
  EP_TRY(url, opt_str_field(body, "url", 2048));
  if (!url || !valid_url(*url)) return Status::usage("url: required, an http:// or https:// URL");
  EP_RETURN_IF_ERROR(c.opts.egress.check_url(*url).with_context("url"));
  EP_TRY(en, opt_bool(body, "enabled"));
  EP_TRY(to, opt_num(body, "timeout_ms", 1, 120000, true));
  EP_TRY(ma, opt_num(body, "max_attempts", 1, 100, true));
  std::string secret = new_secret();
  auto r = c.db.exec(
      "INSERT INTO webhooks (tenant_id, name, url, secret, enabled, timeout_ms, max_attempts) "
      "VALUES ($1, $2, $3, $4, coalesce($5::bool, true), coalesce($6::int, 5000), "
      "        coalesce($7::int, 5)) RETURNING webhook_id::text",
      {c.tenant.id, name, *url, secret, en,
       to ? pg::Param(static_cast<std::int64_t>(*to)) : pg::Param(nullptr),
       ma ? pg::Param(static_cast<std::int64_t>(*ma)) : pg::Param(nullptr)});
  if (!r) return conflict_or(r.status(), "name: a webhook named " + name + " exists");
  c.params = {r->str(0, 0)};
  EP_TRY(resp, render_hook(c, &secret, 201));
  resp.headers.emplace_back("Location", "/v1/webhooks/" + c.params[0]);
  return std::move(resp);
}

Result<Response> update_webhook(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_RETURN_IF_ERROR(path_uuid(c.params[0], "webhook"));
  EP_TRY(body, parse_body(c, kHookKeys));
  std::optional<std::string> name;
  if (has(body, "name")) {
    EP_TRY(n, req_name(body, "name"));
    name = n;
  }
  EP_TRY(url, opt_str_field(body, "url", 2048));
  if (url && !valid_url(*url)) return Status::usage("url: not an http:// or https:// URL");
  if (url) EP_RETURN_IF_ERROR(c.opts.egress.check_url(*url).with_context("url"));
  EP_TRY(en, opt_bool(body, "enabled"));
  EP_TRY(to, opt_num(body, "timeout_ms", 1, 120000, true));
  EP_TRY(ma, opt_num(body, "max_attempts", 1, 100, true));
  auto r = c.db.exec(
      "UPDATE webhooks SET name = coalesce($3, name), url = coalesce($4, url), "
      "  enabled = coalesce($5::bool, enabled), timeout_ms = coalesce($6::int, timeout_ms), "
      "  max_attempts = coalesce($7::int, max_attempts) "
      "WHERE tenant_id = $1 AND webhook_id = $2 RETURNING 1",
      {c.tenant.id, c.params[0], name, url, en,
       to ? pg::Param(static_cast<std::int64_t>(*to)) : pg::Param(nullptr),
       ma ? pg::Param(static_cast<std::int64_t>(*ma)) : pg::Param(nullptr)});
  if (!r) return conflict_or(r.status(), "name: another webhook has this name");
  if (r->empty()) return Status::not_found("webhook " + c.params[0] + " not found");
  return render_hook(c, nullptr, 200);
}

Result<Response> delete_webhook(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_RETURN_IF_ERROR(path_uuid(c.params[0], "webhook"));
  auto r = c.db.exec("DELETE FROM webhooks WHERE tenant_id = $1 AND webhook_id = $2 RETURNING 1",
                     {c.tenant.id, c.params[0]});
  EP_RETURN_IF_ERROR(need_row(r, "webhook " + c.params[0]));
  Response resp;
  resp.status = 204;
  resp.content_type.clear();
  return resp;
}

// Rotation replaces the secret at once; the response is the only place it appears.
Result<Response> rotate_webhook(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_RETURN_IF_ERROR(path_uuid(c.params[0], "webhook"));
  std::string secret = new_secret();
  auto r = c.db.exec(
      "UPDATE webhooks SET secret = $3 WHERE tenant_id = $1 AND webhook_id = $2 RETURNING 1",
      {c.tenant.id, c.params[0], secret});
  EP_RETURN_IF_ERROR(need_row(r, "webhook " + c.params[0]));
  return render_hook(c, &secret, 200);
}

}  // namespace ep::api
