#include "api.h"

#include <exception>

#include "ep/json.h"
#include "ep/keys.h"
#include "ep/log.h"
#include "routes.h"

namespace ep::api {

// ---- Pool ----

Result<std::unique_ptr<pg::Conn>> Pool::take() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      if (c->connected()) return c;
    }
  }
  auto c = pg::Conn::connect(url_, "ep-api");
  if (!c) return c.status();
  return std::make_unique<pg::Conn>(std::move(*c));
}

void Pool::give(std::unique_ptr<pg::Conn> c) {
  if (!c || !c->connected() || c->broken() || c->in_transaction()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(c));
}

// ---- routing ----

namespace {

struct Route {
  const char* method;
  const char* pattern;  // "/v1/devices/{}"
  Handler handler;
};

// Every authenticated route; docs/ep-api.md and openapi.json list the same.
const Route kRoutes[] = {
    {"GET", "/v1/me", get_me},
    {"GET", "/v1/anomalies", get_anomalies},
    {"GET", "/v1/devices", list_devices},
    {"POST", "/v1/devices", create_device},
    {"GET", "/v1/devices/{}", get_device},
    {"GET", "/v1/metrics", list_metrics},
    {"POST", "/v1/metrics", create_metric},
    {"GET", "/v1/metrics/{}", get_metric},
    {"GET", "/v1/alert-rules", list_rules},
    {"POST", "/v1/alert-rules", create_rule},
    {"GET", "/v1/alert-rules/{}", get_rule},
    {"PATCH", "/v1/alert-rules/{}", update_rule},
    {"DELETE", "/v1/alert-rules/{}", delete_rule},
    {"GET", "/v1/webhooks", list_webhooks},
    {"POST", "/v1/webhooks", create_webhook},
    {"GET", "/v1/webhooks/{}", get_webhook},
    {"PATCH", "/v1/webhooks/{}", update_webhook},
    {"DELETE", "/v1/webhooks/{}", delete_webhook},
    {"POST", "/v1/webhooks/{}/rotate-secret", rotate_webhook},
    {"GET", "/v1/batches", list_batches},
    {"GET", "/v1/series", get_series},
    {"GET", "/v1/alerts", list_alerts},
    {"GET", "/v1/models", list_models},
    {"GET", "/v1/usage", get_usage},
};

// Matches path against pattern segment by segment; "{}" captures one segment.
bool match(std::string_view pattern, std::string_view path, std::vector<std::string>* params) {
  params->clear();
  while (true) {
    auto ps = pattern.find('/', 1);
    auto qs = path.find('/', 1);
    std::string_view pseg = pattern.substr(0, ps), qseg = path.substr(0, qs);
    if (pseg == "/{}") {
      if (qseg.size() < 2) return false;
      params->emplace_back(qseg.substr(1));
    } else if (pseg != qseg) {
      return false;
    }
    if (ps == std::string_view::npos || qs == std::string_view::npos)
      return ps == std::string_view::npos && qs == std::string_view::npos;
    pattern = pattern.substr(ps);
    path = path.substr(qs);
  }
}

Response asset_response(const Asset& a, bool head) {
  Response r;
  r.content_type = std::string(a.content_type);
  if (!head) r.body = std::string(a.body);
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (a.content_type.starts_with("text/html")) {
    // The dashboard loads nothing from elsewhere (works offline, no CDN).
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                           "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
    r.headers.emplace_back("X-Frame-Options", "DENY");
  }
  return r;
}

}  // namespace

Api::Api(Options opts, const Clock& clock)
    : opts_(std::move(opts)), clock_(clock), pool_(opts_.db_url, opts_.max_idle_connections) {}

Response Api::handle(const Request& req) {
  try {
    return dispatch(req);
  } catch (const std::exception& e) {
    log::emit(log::Level::kError, req.target, std::string("internal error: ") + e.what());
    return error_response(500, "internal", "internal error");
  }
}

Response Api::dispatch(const Request& req) {
  std::string_view path = req.path();
  bool head = req.method == "HEAD";
  std::string_view method = head ? std::string_view("GET") : std::string_view(req.method);

  if (path == "/v1/health") {
    if (method != "GET") return error_response(405, "method_not_allowed", "GET /v1/health");
    auto c = pool_.take();
    bool ok = false;
    if (c) {
      auto r = (*c)->exec("SELECT 1");
      ok = r.is_ok();
      pool_.give(std::move(*c));
    }
    JsonWriter w;
    w.start_object();
    w.kv("status", ok ? "ok" : "degraded");
    w.kv("database", ok ? "ok" : "unavailable");
    w.kv("version", EP_VERSION);
    w.end_object();
    return json_response(ok ? 200 : 503, w.take());
  }
  if (!path.starts_with("/v1/") || path == "/v1/openapi.json") {
    std::string_view p = path == "/" ? std::string_view("/index.html") : path;
    if (const Asset* a = find_asset(p)) {
      if (method != "GET") return error_response(405, "method_not_allowed", "GET only");
      return asset_response(*a, head);
    }
    return error_response(404, "not_found", "no such page: " + std::string(path));
  }

  auto query = parse_query(req.target);
  if (!query) return status_response(query.status());
  std::vector<std::string> params;
  bool path_known = false;
  for (const Route& r : kRoutes) {
    if (!match(r.pattern, path, &params)) continue;
    path_known = true;
    if (method != r.method) continue;
    bool write = method != "GET";
    return run_route(req, r.handler, write, std::move(params), *query);
  }
  if (path_known)
    return error_response(405, "method_not_allowed",
                          req.method + " is not allowed on " + std::string(path));
  return error_response(404, "not_found", "no such route: " + std::string(path));
}

Result<Tenant> Api::authenticate(const Request& req, pg::Conn& db) {
  std::string_view key = req.header("x-api-key");
  if (key.empty()) return Status(Code::kUsage, "missing X-API-Key header");
  auto parsed = keys::parse_key(key);
  if (!parsed) return Status(Code::kUsage, "malformed API key");
  std::string prefix(parsed->prefix);
  TimeNs now = clock_.now();
  CachedKey entry;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = key_cache_.find(prefix);
    if (it != key_cache_.end() && it->second.expires > now) {
      entry = it->second;
      cached = true;
    }
  }
  if (!cached) {
    // Runs as the login role (no tenant context yet): api_keys is looked up by prefix.
    auto rows = db.exec(
        "SELECT k.hash, t.tenant_id::text, t.slug, (k.revoked_at IS NULL AND NOT t.disabled) "
        "FROM api_keys k JOIN tenants t ON t.tenant_id = k.tenant_id WHERE k.prefix = $1",
        {prefix});
    if (!rows) return rows.status();
    if (!rows->empty()) {
      entry.hash = rows->str(0, 0);
      entry.tenant = {rows->str(0, 1), rows->str(0, 2)};
      entry.usable = rows->get_bool(0, 3);
    }
    entry.expires = now + opts_.key_cache_ttl;
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (key_cache_.size() > 100000) key_cache_.clear();  // bound memory under key spraying
    key_cache_[prefix] = entry;
  }
  // Hashed and compared whether or not the prefix exists or the key is usable (an empty
  // hash stands for "unknown"), so no path answers faster than another.
  bool match = keys::verify_key(opts_.pepper, key, entry.hash);
  if (!entry.usable || !match) return Status(Code::kUsage, "invalid or revoked API key");
  return entry.tenant;
}

Response Api::run_route(const Request& req, Handler h, bool write, std::vector<std::string> params,
                        const std::map<std::string, std::string>& query) {
  // One retry on a fresh connection when an idle pooled one turned out dead.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto taken = pool_.take();
    if (!taken) return status_response(taken.status());
    std::unique_ptr<pg::Conn> db = std::move(*taken);
    auto tenant = authenticate(req, *db);
    if (!tenant) {
      if (tenant.status().code() == Code::kUsage) {
        pool_.give(std::move(db));
        Response r = error_response(401, "unauthorized", tenant.status().message());
        r.headers.emplace_back("WWW-Authenticate", "ApiKey header=\"X-API-Key\"");
        return r;
      }
      if (db->broken() && attempt == 0) continue;
      return status_response(tenant.status());
    }
    Status st = db->begin(write ? "" : "READ ONLY");
    if (st.is_ok()) {
      // The tenant's row-level-security context for this transaction only.
      st = db->run("SELECT set_config('role', $1, true), set_config($2, $3, true)",
                   {opts_.rls_role, pg::kTenantSetting, tenant->id});
    }
    if (!st.is_ok()) {
      if (db->broken() && attempt == 0) continue;
      if (db->in_transaction()) (void)db->rollback();
      return status_response(st);
    }
    Ctx ctx{req, query, std::move(params), *tenant, *db, opts_, clock_.now()};
    Result<Response> res = h(ctx);
    if (res.is_ok()) {
      st = db->commit();
      if (st.is_ok()) {
        pool_.give(std::move(db));
        return std::move(*res);
      }
    } else {
      st = res.status();
      (void)db->rollback();
    }
    std::string context = req.method + " " + std::string(req.path());
    if (st.code() == Code::kUnavailable || st.code() == Code::kTemporary)
      unavailable_log_.error(st, context);
    else if (st.code() != Code::kNotFound && st.code() != Code::kUsage &&
             st.code() != Code::kData && st.code() != Code::kConflict)
      log::emit(log::Level::kError, context, st.message(), -1, st.code());
    pool_.give(std::move(db));
    return status_response(st);
  }
  return error_response(503, "unavailable", "database unavailable, retry later");
}

Status Api::check_database() {
  auto c = pool_.take();
  if (!c) return c.status();
  auto rows = (*c)->exec(
      "SELECT to_regclass('public.api_keys') IS NOT NULL, "
      "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1), "
      "(SELECT rolsuper OR pg_has_role(current_user, $1, 'MEMBER') FROM pg_roles "
      " WHERE rolname = current_user)",
      {opts_.rls_role});
  if (!rows) return rows.status();
  if (!rows->get_bool(0, 0))
    return Status::unavailable("database has no EdgePulse schema: run `ep-admin migrate --db URL`");
  if (rows->is_null(0, 2) || !rows->get_bool(0, 2))
    return Status::usage("this login cannot SET ROLE " + opts_.rls_role +
                         " (row-level security): GRANT " + opts_.rls_role + " TO <login role>");
  pool_.give(std::move(*c));
  return Status::ok();
}

}  // namespace ep::api
