#include "fixture.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "ep/crypto.h"
#include "ep/keys.h"
#include "ep/schema.h"
#include "server.h"

namespace ep::api::test {

static std::string env_or(const char* name, const char* dflt) {
  const char* v = std::getenv(name);
  return v && *v ? v : dflt;
}

std::string db_url_for(const std::string& name) {
  // Host, port, user and password come from PGHOST etc.; only the database is named.
  return "dbname=" + name;
}

static pg::Conn must_connect(const std::string& url) {
  auto c = pg::Conn::connect(url, "ep-api-test");
  if (!c) {
    std::cerr << "ep-api tests: Postgres unreachable (" << c.status().message()
              << "); run under pg_virtualenv\n";
    std::abort();
  }
  return std::move(*c);
}

static void must(const Status& s, const char* what) {
  if (!s.is_ok()) {
    std::cerr << "ep-api tests: " << what << ": " << s.message() << "\n";
    std::abort();
  }
}

static std::string one(pg::Conn& c, const std::string& sql,
                       std::initializer_list<pg::Param> p = {}) {
  auto r = c.exec(sql, p);
  must(r.status(), sql.c_str());
  if (r->empty()) {
    std::cerr << "ep-api tests: no row from " << sql << "\n";
    std::abort();
  }
  return r->str(0, 0);
}

Env& Env::get() {
  static Env* env = new Env();  // lives until exit; the destructor runs via atexit below
  return *env;
}

Env::Env() {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  admin_url_ = db_url_for(env_or("PGDATABASE", "postgres"));
  db_name_ = "ep_api_test_" + std::to_string(::getpid()) + "_" + crypto::random_base62(6);
  for (char& ch : db_name_) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  {
    pg::Conn admin = must_connect(admin_url_);
    must(admin.run("CREATE DATABASE " + db_name_), "create database");
  }
  db_url_ = db_url_for(db_name_);
  pg::Conn c = must_connect(db_url_);
  must(schema::migrate(c).status(), "migrate");
  seed_data(c);

  Options o;
  o.db_url = db_url_;
  o.pepper = kPepper;
  o.key_cache_ttl = 0;  // revocation tests see changes at once
  api_ = std::make_unique<Api>(o);
  must(api_->check_database(), "check_database");
  http::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.threads = 2;
  so.max_body_bytes = 64 << 10;
  auto s = http::Server::listen(so, make_handler(*api_));
  must(s.status(), "listen");
  server_ = std::move(*s);
  thread_ = std::thread([this] { server_->run(); });
  std::atexit([] { delete &Env::get(); });
}

Env::~Env() {
  server_->stop();
  thread_.join();
  server_.reset();
  api_.reset();
  auto admin = pg::Conn::connect(admin_url_, "ep-api-test");
  if (admin) (void)admin->run("DROP DATABASE IF EXISTS " + db_name_ + " WITH (FORCE)");
}

void Env::seed_data(pg::Conn& c) {
  Seed& s = seed_;
  s.acme_id = one(c, "INSERT INTO tenants (slug) VALUES ('acme') RETURNING tenant_id::text");
  s.globex_id = one(c, "INSERT INTO tenants (slug) VALUES ('globex') RETURNING tenant_id::text");
  auto add_key = [&](const std::string& tenant, bool revoked) {
    std::string key = keys::generate_key();
    auto parsed = keys::parse_key(key);
    must(c.run("INSERT INTO api_keys (tenant_id, prefix, hash, revoked_at) VALUES ($1, $2, $3, "
               "CASE WHEN $4 THEN now() END)",
               {tenant, std::string(parsed->prefix), keys::hash_key(kPepper, key), revoked}),
         "insert key");
    return key;
  };
  s.acme_key = add_key(s.acme_id, false);
  s.acme_revoked_key = add_key(s.acme_id, true);
  s.globex_key = add_key(s.globex_id, false);

  auto device = [&](const std::string& t, const char* ext) {
    return one(
        c, "INSERT INTO devices (tenant_id, external_id) VALUES ($1, $2) RETURNING device_id::text",
        {t, ext});
  };
  auto metric = [&](const std::string& t, const std::string& d, const char* name,
                    const char* unit) {
    return one(c,
               "INSERT INTO metrics (tenant_id, device_id, name, unit) VALUES ($1, $2, $3, $4) "
               "RETURNING metric_id::text",
               {t, d, name, unit});
  };
  s.acme_dev1 = device(s.acme_id, "meter-1");
  s.acme_dev2 = device(s.acme_id, "meter-2");
  s.globex_dev = device(s.globex_id, "g-1");
  s.acme_voltage = metric(s.acme_id, s.acme_dev1, "voltage", "V");
  s.acme_current = metric(s.acme_id, s.acme_dev2, "current", "A");
  s.globex_temp = metric(s.globex_id, s.globex_dev, "temp", "C");

  // Six hours of voltage every 10 s up to now (truncated to 5 min), a spike to 300 V in
  // the window starting 3 h before the end.
  std::string end = one(c,
                        "SELECT date_trunc('hour', now()) + "
                        "floor(extract(minute FROM now()) / 5) * interval '5 minutes'");
  must(c.run("INSERT INTO datapoints (tenant_id, metric_id, ts, value) "
             "SELECT $1, $2, ts, CASE WHEN ts >= $3::timestamptz - interval '3 hours' "
             "  AND ts < $3::timestamptz - interval '175 minutes' THEN 300 "
             "  ELSE 230 + sin(extract(epoch FROM ts) / 600) END "
             "FROM generate_series($3::timestamptz - interval '6 hours', "
             "  $3::timestamptz - interval '10 seconds', interval '10 seconds') ts",
             {s.acme_id, s.acme_voltage, end}),
       "voltage points");
  s.voltage_points = 6 * 360;
  must(c.run("INSERT INTO datapoints (tenant_id, metric_id, ts, value) "
             "SELECT $1, $2, ts, 5 FROM generate_series($3::timestamptz - interval '1 hour', "
             "  $3::timestamptz - interval '1 minute', interval '1 minute') ts",
             {s.acme_id, s.acme_current, end}),
       "current points");
  must(c.run("INSERT INTO datapoints (tenant_id, metric_id, ts, value) "
             "SELECT $1, $2, ts, 20 FROM generate_series($3::timestamptz - interval '1 hour', "
             "  $3::timestamptz - interval '1 minute', interval '1 minute') ts",
             {s.globex_id, s.globex_temp, end}),
       "globex points");
  // Scores: every 5-min window of voltage; the spike window anomalous.
  must(
      c.run("INSERT INTO anomaly_scores (tenant_id, metric_id, window_start, window_end, score, "
            "  anomaly, label, model, explanation) "
            "SELECT $1, $2, ws, ws + interval '5 minutes', "
            "  CASE WHEN ws = $3::timestamptz - interval '3 hours' THEN 0.93 ELSE 0.31 END, "
            "  ws = $3::timestamptz - interval '3 hours', "
            "  CASE WHEN ws = $3::timestamptz - interval '3 hours' THEN 'spike' ELSE 'normal' END, "
            "  'acme/meter-1/voltage@2', "
            "  CASE WHEN ws = $3::timestamptz - interval '3 hours' "
            "    THEN '[{\"feature\":\"max\",\"value\":300,\"baseline\":231.0,\"z\":9.7}]'::jsonb "
            "    ELSE '[]'::jsonb END "
            "FROM generate_series($3::timestamptz - interval '6 hours', "
            "  $3::timestamptz - interval '5 minutes', interval '5 minutes') ws",
            {s.acme_id, s.acme_voltage, end}),
      "voltage scores");
  s.spike_start = one(c,
                      "SELECT to_char(($1::timestamptz - interval '3 hours') AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                      {end});
  s.spike_end = one(c,
                    "SELECT to_char(($1::timestamptz - interval '175 minutes') AT TIME ZONE 'UTC', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                    {end});
  must(c.run("INSERT INTO anomaly_scores VALUES ($1, $2, $3::timestamptz - interval '35 minutes', "
             "$3::timestamptz - interval '30 minutes', 0.71, true, 'drop', 'fallback', '', '[]', "
             "now())",
             {s.acme_id, s.acme_current, end}),
       "current score");
  must(c.run("INSERT INTO anomaly_scores VALUES ($1, $2, $3::timestamptz - interval '15 minutes', "
             "$3::timestamptz - interval '10 minutes', 0.88, true, 'spike', 'fallback', '', '[]', "
             "now())",
             {s.globex_id, s.globex_temp, end}),
       "globex score");

  auto hook = [&](const std::string& t, const char* name) {
    return one(
        c,
        "INSERT INTO webhooks (tenant_id, name, url, secret) VALUES ($1, $2, "
        "'http://127.0.0.1:9/hook', 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0') RETURNING webhook_id::text",
        {t, name});
  };
  s.acme_hook = hook(s.acme_id, "ops");
  s.globex_hook = hook(s.globex_id, "gops");
  auto rule = [&](const std::string& t, const char* name, const std::string& h) {
    return one(c,
               "INSERT INTO alert_rules (tenant_id, name, min_score, labels, webhook_id) "
               "VALUES ($1, $2, 0.6, '{spike,drop}', $3) RETURNING rule_id::text",
               {t, name, h});
  };
  s.acme_rule = rule(s.acme_id, "high-score", s.acme_hook);
  s.globex_rule = rule(s.globex_id, "g-rule", s.globex_hook);
  must(c.run("INSERT INTO alert_events (tenant_id, alert_id, webhook_id, rule_id, metric_id, "
             "window_end, "
             "  score, label, status, attempts, http_status, payload, created_at) VALUES "
             "($1, 'al-1', $2, $3, $4, $5::timestamptz - interval '175 minutes', 0.93, 'spike', "
             "  'delivered', 1, 200, '{}', now() - interval '2 hours'), "
             "($1, 'al-2', $2, $3, $6, $5::timestamptz - interval '30 minutes', 0.71, 'drop', "
             "  'failed', 3, 500, '{}', now() - interval '1 hour')",
             {s.acme_id, s.acme_hook, s.acme_rule, s.acme_voltage, end, s.acme_current}),
       "alert events");
  must(c.run("UPDATE alert_events SET error = 'HTTP 500' WHERE alert_id = 'al-2'"), "alert error");
  must(c.run("INSERT INTO alert_attempts (tenant_id, alert_id, webhook_id, attempt, http_status, "
             "  error, duration_ms) VALUES ($1, 'al-1', $2, 1, 200, NULL, 12), "
             "($1, 'al-2', $2, 1, 500, 'HTTP 500', 30), ($1, 'al-2', $2, 2, 500, 'HTTP 500', 31), "
             "($1, 'al-2', $2, 3, 500, 'HTTP 500', 29)",
             {s.acme_id, s.acme_hook}),
       "alert attempts");
  must(c.run("INSERT INTO alert_events (tenant_id, alert_id, webhook_id, rule_id, metric_id, "
             "window_end, score, label, status, attempts, payload) VALUES ($1, 'g-al', $2, $3, $4, "
             "now(), 0.88, 'spike', 'delivered', 1, '{}')",
             {s.globex_id, s.globex_hook, s.globex_rule, s.globex_temp}),
       "globex alert");
  must(
      c.run("INSERT INTO models (tenant_id, name, version, metric_id, artefact, sha256, threshold, "
            "  meta, active) VALUES "
            "($1, 'meter-1/voltage', 1, $2, '\\x00', 'aa', 0.6, '{\"trees\":100,\"windows\":50}', "
            "false), "
            "($1, 'meter-1/voltage', 2, $2, '\\x0001', 'bb', 0.62, "
            "'{\"trees\":100,\"windows\":72}', true), "
            "($3, 'g-1/temp', 1, $4, '\\x00', 'cc', 0.5, '{}', true)",
            {s.acme_id, s.acme_voltage, s.globex_id, s.globex_temp}),
      "models");
  must(c.run("INSERT INTO ingest_batches (tenant_id, batch_id, device_id, received_at, source, "
             "points, "
             "  status, error, loaded_at) "
             "SELECT $1, gen_random_uuid(), $2, now() - i * interval '1 minute', 'http', 10, "
             "  CASE WHEN i = 3 THEN 'failed' ELSE 'loaded' END, "
             "  CASE WHEN i = 3 THEN 'COPY failed' END, now() FROM generate_series(1, 5) i",
             {s.acme_id, s.acme_dev1}),
       "batches");
  must(c.run("INSERT INTO ingest_batches (tenant_id, batch_id, received_at, points, status) "
             "VALUES ($1, gen_random_uuid(), now(), 7, 'received')",
             {s.globex_id}),
       "globex batch");
  must(c.run("INSERT INTO usage_daily VALUES ($1, current_date - 1, 1000, 10, 50, 1), "
             "($1, current_date, 2000, 20, 70, 2), ($2, current_date, 5, 1, 1, 0)",
             {s.acme_id, s.globex_id}),
       "usage");
}

static size_t write_cb(char* p, size_t sz, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, sz * n);
  return sz * n;
}
static size_t header_cb(char* p, size_t sz, size_t n, void* ud) {
  std::string line(p, sz * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string k = line.substr(0, colon);
    for (char& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(ud))[k] = v;
  }
  return sz * n;
}

Reply Env::call(const std::string& method, const std::string& path, const std::string& key,
                const std::string& body, const std::string& content_type) {
  Reply r;
  CURL* h = curl_easy_init();
  std::string url = base() + path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_slist* hdrs = nullptr;
  if (!key.empty()) hdrs = curl_slist_append(hdrs, ("X-API-Key: " + key).c_str());
  if (!body.empty()) {
    hdrs = curl_slist_append(hdrs, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
  CURLcode rc = curl_easy_perform(h);
  EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc) << " " << method << " " << path;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return r;
}

}  // namespace ep::api::test
