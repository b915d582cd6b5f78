// Read-only routes: anomalies, devices, metrics, batches, alerts, models, usage.
// Every query names tenant_id explicitly AND runs under the tenant's RLS context
// (Api::run_route), so a mistake in one is caught by the other.
#include "ep/json.h"
#include "routes.h"
#include "util.h"

namespace ep::api {

Result<Response> get_me(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  auto rows = c.db.exec(
      "SELECT t.plan, p.points_per_minute, p.max_series, p.retention_days "
      "FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.tenant_id = $1",
      {c.tenant.id});
  if (!rows) return rows.status();
  JsonWriter w;
  w.start_object();
  w.kv("tenant", c.tenant.slug);
  w.kv("tenant_id", c.tenant.id);
  if (!rows->empty()) {
    w.key("plan");
    w.start_object();
    w.kv("name", rows->str(0, 0));
    w.kv("points_per_minute", rows->get_int(0, 1));
    w.kv("max_series", rows->get_int(0, 2));
    w.kv("retention_days", rows->get_int(0, 3));
    w.end_object();
  }
  w.end_object();
  return json_response(200, w.take());
}

Result<Response> get_anomalies(Ctx& c) {
  EP_RETURN_IF_ERROR(
      q_only(c, {"metric_id", "device_id", "label", "min_score", "from", "to", "limit", "cursor"}));
  EP_TRY(metric_id, q_uuid(c, "metric_id"));
  EP_TRY(device_id, q_uuid(c, "device_id"));
  EP_TRY(min_score, q_number(c, "min_score", 0, 1));
  EP_TRY(from, q_time(c, "from"));
  EP_TRY(to, q_time(c, "to"));
  EP_TRY(limit, q_limit(c));
  auto label = q_str(c, "label");
  if (label && !is_label(*label)) return Status::usage("label: not one of " + labels_list());
  pg::Param c_end = nullptr, c_metric = nullptr, c_start = nullptr;
  if (auto cur = q_str(c, "cursor")) {
    EP_TRY(f, decode_cursor(*cur, 3));
    auto end = parse_int(f[0]), start = parse_int(f[2]);
    if (!end || !is_uuid(f[1]) || !start) return Status::usage("cursor: malformed");
    c_end = pg::ts_param(*end);
    c_metric = f[1];
    c_start = pg::ts_param(*start);
  }
  auto rows = c.db.exec(
      // The page is chosen from anomaly_scores alone (its partial index, narrow rows; a
      // window end is shared by every series, so ties are many), then joined.
      "SELECT s.metric_id::text, d.device_id::text, d.external_id, m.name, s.window_start, "
      "       s.window_end, s.score, s.label, s.model, s.explanation::text "
      "FROM (SELECT * FROM anomaly_scores s "
      "      WHERE s.tenant_id = $1 AND s.anomaly "
      "        AND ($2::uuid IS NULL OR s.metric_id = $2::uuid) "
      "        AND ($3::uuid IS NULL OR s.metric_id IN (SELECT metric_id FROM metrics "
      "             WHERE tenant_id = $1 AND device_id = $3::uuid)) "
      "        AND ($4::text IS NULL OR s.label = $4) "
      "        AND ($5::float8 IS NULL OR s.score >= $5::float8) "
      "        AND ($6::timestamptz IS NULL OR s.window_end >= $6::timestamptz) "
      "        AND ($7::timestamptz IS NULL OR s.window_end < $7::timestamptz) "
      "        AND ($8::timestamptz IS NULL OR (s.window_end, s.metric_id, s.window_start) < "
      "             ($8::timestamptz, $9::uuid, $10::timestamptz)) "
      "      ORDER BY s.window_end DESC, s.metric_id DESC, s.window_start DESC LIMIT $11) s "
      "JOIN metrics m ON m.tenant_id = s.tenant_id AND m.metric_id = s.metric_id "
      "JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id "
      "ORDER BY s.window_end DESC, s.metric_id DESC, s.window_start DESC",
      {c.tenant.id, metric_id, device_id, label, min_score, ts_opt(from), ts_opt(to), c_end,
       c_metric, c_start, limit + 1});
  if (!rows) return rows.status();
  return page_response(
      *rows, limit,
      [&](JsonWriter& w, int i) {
        w.start_object();
        w.kv("metric_id", rows->str(i, 0));
        w.kv("device_id", rows->str(i, 1));
        w.kv("device", rows->str(i, 2));
        w.kv("metric", rows->str(i, 3));
        w.kv_time("start", rows->get_ts(i, 4));
        w.kv_time("end", rows->get_ts(i, 5));
        w.kv("score", rows->get_double(i, 6));
        w.kv("label", rows->str(i, 7));
        w.kv("model", rows->str(i, 8));
        w.key("explanation");
        w.raw(rows->get(i, 9));
        w.end_object();
      },
      [&](int i) {
        return encode_cursor({std::to_string(rows->get_ts(i, 5)), rows->str(i, 0),
                              std::to_string(rows->get_ts(i, 4))});
      });
}

// ---- devices ----

static constexpr const char* kDeviceSelect =
    "SELECT d.device_id::text, d.external_id, d.created_at, "
    "  (SELECT count(*) FROM metrics m WHERE m.tenant_id = d.tenant_id AND m.device_id = "
    "d.device_id), "
    "  (SELECT max(ls.t) FROM metrics m, LATERAL (SELECT max(p.ts) AS t FROM datapoints p "
    "     WHERE p.tenant_id = m.tenant_id AND p.metric_id = m.metric_id) ls "
    "   WHERE m.tenant_id = d.tenant_id AND m.device_id = d.device_id) "
    "FROM devices d ";

static void write_device(JsonWriter& w, const pg::Rows& r, int i) {
  w.start_object();
  w.kv("device_id", r.str(i, 0));
  w.kv("external_id", r.str(i, 1));
  w.kv_time("created_at", r.get_ts(i, 2));
  w.kv("metrics", r.get_int(i, 3));
  kv_nullable_time(w, "last_seen", r, i, 4);
  w.end_object();
}

Result<Response> list_devices(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {"limit", "cursor", "q"}));
  EP_TRY(limit, q_limit(c));
  pg::Param after = nullptr;
  if (auto cur = q_str(c, "cursor")) {
    EP_TRY(f, decode_cursor(*cur, 1));
    after = f[0];
  }
  auto rows = c.db.exec(std::string(kDeviceSelect) +
                            "WHERE d.tenant_id = $1 AND ($2::text IS NULL OR d.external_id > $2) "
                            "AND ($3::text IS NULL OR strpos(d.external_id, $3) > 0) "
                            "ORDER BY d.external_id LIMIT $4",
                        {c.tenant.id, after, q_str(c, "q"), limit + 1});
  if (!rows) return rows.status();
  return page_response(
      *rows, limit, [&](JsonWriter& w, int i) { write_device(w, *rows, i); },
      [&](int i) { return encode_cursor({rows->str(i, 1)}); });
}

Result<Response> get_device(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_RETURN_IF_ERROR(path_uuid(c.params[0], "device"));
  auto rows = c.db.exec(std::string(kDeviceSelect) + "WHERE d.tenant_id = $1 AND d.device_id = $2",
                        {c.tenant.id, c.params[0]});
  if (!rows) return rows.status();
  if (rows->empty()) return Status::not_found("device " + c.params[0] + " not found");
  JsonWriter w;
  write_device(w, *rows, 0);
  return json_response(200, w.take());
}

// ---- metrics ----

static constexpr const char* kMetricSelect =
    "SELECT m.metric_id::text, m.device_id::text, d.external_id, m.name, m.unit, "
    "  extract(epoch FROM m.expected_interval)::float8, m.created_at, "
    "  (SELECT max(p.ts) FROM datapoints p WHERE p.tenant_id = m.tenant_id AND p.metric_id = "
    "m.metric_id), "
    "  (SELECT count(*) FROM datapoints p WHERE p.tenant_id = m.tenant_id AND p.metric_id = "
    "m.metric_id "
    "     AND p.ts >= now() - interval '1 hour'), "
    "  (SELECT count(*) FROM anomaly_scores s WHERE s.tenant_id = m.tenant_id AND s.metric_id = "
    "m.metric_id "
    "     AND s.anomaly AND s.window_end >= now() - interval '24 hours') "
    "FROM metrics m JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id ";

static void write_metric(JsonWriter& w, const pg::Rows& r, int i) {
  w.start_object();
  w.kv("metric_id", r.str(i, 0));
  w.kv("device_id", r.str(i, 1));
  w.kv("device", r.str(i, 2));
  w.kv("name", r.str(i, 3));
  w.kv("unit", r.str(i, 4));
  kv_nullable_num(w, "expected_interval_sec", r, i, 5);
  w.kv_time("created_at", r.get_ts(i, 6));
  kv_nullable_time(w, "last_seen", r, i, 7);
  w.kv("points_last_hour", r.get_int(i, 8));
  w.kv("anomalies_24h", r.get_int(i, 9));
  w.end_object();
}

Result<Response> list_metrics(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {"device_id", "limit", "cursor", "q"}));
  EP_TRY(device_id, q_uuid(c, "device_id"));
  EP_TRY(limit, q_limit(c));
  pg::Param a_dev = nullptr, a_name = nullptr;
  if (auto cur = q_str(c, "cursor")) {
    EP_TRY(f, decode_cursor(*cur, 2));
    a_dev = f[0];
    a_name = f[1];
  }
  auto rows =
      c.db.exec(std::string(kMetricSelect) +
                    "WHERE m.tenant_id = $1 AND ($2::uuid IS NULL OR m.device_id = $2::uuid) "
                    "AND ($3::text IS NULL OR (d.external_id, m.name) > ($3::text, $4::text)) "
                    "AND ($5::text IS NULL OR strpos(d.external_id || '/' || m.name, $5) > 0) "
                    "ORDER BY d.external_id, m.name LIMIT $6",
                {c.tenant.id, device_id, a_dev, a_name, q_str(c, "q"), limit + 1});
  if (!rows) return rows.status();
  return page_response(
      *rows, limit, [&](JsonWriter& w, int i) { write_metric(w, *rows, i); },
      [&](int i) {
        return encode_cursor({rows->str(i, 2), rows->str(i, 3)});
      });
}

Result<Response> get_metric(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {}));
  EP_RETURN_IF_ERROR(path_uuid(c.params[0], "metric"));
  auto rows = c.db.exec(std::string(kMetricSelect) + "WHERE m.tenant_id = $1 AND m.metric_id = $2",
                        {c.tenant.id, c.params[0]});
  if (!rows) return rows.status();
  if (rows->empty()) return Status::not_found("metric " + c.params[0] + " not found");
  JsonWriter w;
  write_metric(w, *rows, 0);
  return json_response(200, w.take());
}

// ---- batches: ingestion health ----

Result<Response> list_batches(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {"status", "from", "to", "limit", "cursor"}));
  EP_TRY(from, q_time(c, "from"));
  EP_TRY(to, q_time(c, "to"));
  EP_TRY(limit, q_limit(c));
  auto status = q_str(c, "status");
  if (status && *status != "received" && *status != "loaded" && *status != "failed")
    return Status::usage("status: not one of received, loaded, failed");
  TimeNs sfrom = from ? *from : c.now - 24 * 3600 * kNsPerSec;
  pg::Param c_at = nullptr, c_id = nullptr;
  if (auto cur = q_str(c, "cursor")) {
    EP_TRY(f, decode_cursor(*cur, 2));
    auto at = parse_int(f[0]);
    if (!at || !is_uuid(f[1])) return Status::usage("cursor: malformed");
    c_at = pg::ts_param(*at);
    c_id = f[1];
  }
  auto rows = c.db.exec(
      "SELECT b.batch_id::text, b.received_at, b.source, b.points, b.status, b.error, b.loaded_at, "
      "       b.archive, b.sha256, d.external_id "
      "FROM ingest_batches b LEFT JOIN devices d ON d.tenant_id = b.tenant_id AND d.device_id = "
      "b.device_id "
      "WHERE b.tenant_id = $1 AND ($2::text IS NULL OR b.status = $2) "
      "  AND ($3::timestamptz IS NULL OR b.received_at >= $3::timestamptz) "
      "  AND ($4::timestamptz IS NULL OR b.received_at < $4::timestamptz) "
      "  AND ($5::timestamptz IS NULL OR (b.received_at, b.batch_id) < ($5::timestamptz, "
      "$6::uuid)) "
      "ORDER BY b.received_at DESC, b.batch_id DESC LIMIT $7",
      {c.tenant.id, status, ts_opt(from), ts_opt(to), c_at, c_id, limit + 1});
  if (!rows) return rows.status();
  auto sum = c.db.exec(
      "SELECT count(*) FILTER (WHERE status = 'received'), count(*) FILTER (WHERE status = "
      "'loaded'), "
      "       count(*) FILTER (WHERE status = 'failed'), coalesce(sum(points), 0), "
      "max(received_at) "
      "FROM ingest_batches WHERE tenant_id = $1 AND received_at >= $2::timestamptz "
      "  AND ($3::timestamptz IS NULL OR received_at < $3::timestamptz)",
      {c.tenant.id, pg::ts_param(sfrom), ts_opt(to)});
  if (!sum) return sum.status();
  JsonWriter w;
  w.start_object();
  w.key("summary");
  w.start_object();
  w.kv_time("since", sfrom);
  w.kv("received", sum->get_int(0, 0));
  w.kv("loaded", sum->get_int(0, 1));
  w.kv("failed", sum->get_int(0, 2));
  w.kv("points", sum->get_int(0, 3));
  kv_nullable_time(w, "last_received_at", *sum, 0, 4);
  w.end_object();
  w.key("items");
  w.start_array();
  int n = std::min(rows->size(), limit);
  for (int i = 0; i < n; ++i) {
    w.start_object();
    w.kv("batch_id", rows->str(i, 0));
    w.kv_time("received_at", rows->get_ts(i, 1));
    w.kv("source", rows->str(i, 2));
    w.kv("points", rows->get_int(i, 3));
    w.kv("status", rows->str(i, 4));
    kv_nullable_str(w, "error", *rows, i, 5);
    kv_nullable_time(w, "loaded_at", *rows, i, 6);
    kv_nullable_str(w, "archive", *rows, i, 7);
    w.kv("sha256", rows->str(i, 8));
    kv_nullable_str(w, "device", *rows, i, 9);
    w.end_object();
  }
  w.end_array();
  w.key("next_cursor");
  if (rows->size() > limit)
    w.str(encode_cursor({std::to_string(rows->get_ts(n - 1, 1)), rows->str(n - 1, 0)}));
  else
    w.null();
  w.end_object();
  return json_response(200, w.take());
}

// ---- alerts: delivery history ----

Result<Response> list_alerts(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {"status", "metric_id", "from", "to", "limit", "cursor"}));
  EP_TRY(metric_id, q_uuid(c, "metric_id"));
  EP_TRY(from, q_time(c, "from"));
  EP_TRY(to, q_time(c, "to"));
  EP_TRY(limit, q_limit(c));
  auto status = q_str(c, "status");
  if (status && *status != "pending" && *status != "delivered" && *status != "failed" &&
      *status != "suppressed")
    return Status::usage("status: not one of pending, delivered, failed, suppressed");
  pg::Param c_at = nullptr, c_alert = nullptr, c_hook = nullptr;
  if (auto cur = q_str(c, "cursor")) {
    EP_TRY(f, decode_cursor(*cur, 3));
    auto at = parse_int(f[0]);
    if (!at || !is_uuid(f[2])) return Status::usage("cursor: malformed");
    c_at = pg::ts_param(*at);
    c_alert = f[1];
    c_hook = f[2];
  }
  auto rows = c.db.exec(
      "SELECT e.alert_id, e.webhook_id::text, w.name, e.rule_id::text, r.name, e.metric_id::text, "
      "       d.external_id, m.name, e.window_end, e.score, e.label, e.status, e.attempts, "
      "       e.http_status, e.error, e.created_at, e.updated_at, e.next_attempt_at, "
      "       (SELECT coalesce(json_agg(json_build_object('attempt', a.attempt, "
      "          'attempted_at', to_char(a.attempted_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
      "          'http_status', a.http_status, 'error', a.error, 'duration_ms', a.duration_ms) "
      "          ORDER BY a.attempt), '[]') "
      "        FROM alert_attempts a WHERE a.tenant_id = e.tenant_id AND a.alert_id = e.alert_id "
      "          AND a.webhook_id = e.webhook_id)::text "
      "FROM alert_events e "
      "LEFT JOIN webhooks w ON w.tenant_id = e.tenant_id AND w.webhook_id = e.webhook_id "
      "LEFT JOIN alert_rules r ON r.tenant_id = e.tenant_id AND r.rule_id = e.rule_id "
      "LEFT JOIN metrics m ON m.tenant_id = e.tenant_id AND m.metric_id = e.metric_id "
      "LEFT JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id "
      "WHERE e.tenant_id = $1 AND ($2::text IS NULL OR e.status = $2) "
      "  AND ($3::uuid IS NULL OR e.metric_id = $3::uuid) "
      "  AND ($4::timestamptz IS NULL OR e.created_at >= $4::timestamptz) "
      "  AND ($5::timestamptz IS NULL OR e.created_at < $5::timestamptz) "
      "  AND ($6::timestamptz IS NULL OR "
      "       (e.created_at, e.alert_id, e.webhook_id) < ($6::timestamptz, $7::text, $8::uuid)) "
      "ORDER BY e.created_at DESC, e.alert_id DESC, e.webhook_id DESC LIMIT $9",
      {c.tenant.id, status, metric_id, ts_opt(from), ts_opt(to), c_at, c_alert, c_hook, limit + 1});
  if (!rows) return rows.status();
  return page_response(
      *rows, limit,
      [&](JsonWriter& w, int i) {
        w.start_object();
        w.kv("alert_id", rows->str(i, 0));
        w.kv("webhook_id", rows->str(i, 1));
        const char* nullable[] = {"webhook", "rule_id", "rule", "metric_id", "device", "metric"};
        for (int k = 0; k < 6; ++k) kv_nullable_str(w, nullable[k], *rows, i, 2 + k);
        w.kv_time("end", rows->get_ts(i, 8));
        w.kv("score", rows->get_double(i, 9));
        w.kv("label", rows->str(i, 10));
        w.kv("status", rows->str(i, 11));
        w.kv("attempts", rows->get_int(i, 12));
        kv_nullable_int(w, "http_status", *rows, i, 13);
        kv_nullable_str(w, "error", *rows, i, 14);
        w.kv_time("created_at", rows->get_ts(i, 15));
        w.kv_time("updated_at", rows->get_ts(i, 16));
        kv_nullable_time(w, "next_attempt_at", *rows, i, 17);
        w.key("attempt_log");
        w.raw(rows->get(i, 18));
        w.end_object();
      },
      [&](int i) {
        return encode_cursor(
            {std::to_string(rows->get_ts(i, 15)), rows->str(i, 0), rows->str(i, 1)});
      });
}

// ---- models ----

Result<Response> list_models(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {"metric_id", "active", "limit", "cursor"}));
  EP_TRY(metric_id, q_uuid(c, "metric_id"));
  EP_TRY(limit, q_limit(c));
  auto active = q_str(c, "active");
  if (active && *active != "true" && *active != "false")
    return Status::usage("active: not true or false");
  pg::Param c_name = nullptr, c_ver = nullptr;
  if (auto cur = q_str(c, "cursor")) {
    EP_TRY(f, decode_cursor(*cur, 2));
    auto version = parse_int(f[1]);  // models.version is an int
    if (!version || *version < 0 || *version > INT32_MAX) return Status::usage("cursor: malformed");
    c_name = f[0];
    c_ver = f[1];
  }
  auto rows = c.db.exec(
      "SELECT name, version, metric_id::text, kind, sha256, threshold, meta::text, trained_at, "
      "       active, octet_length(artefact) "
      "FROM models WHERE tenant_id = $1 AND ($2::uuid IS NULL OR metric_id = $2::uuid) "
      "  AND ($3::bool IS NULL OR active = $3::bool) "
      "  AND ($4::text IS NULL OR (name, -version) > ($4::text, -$5::int)) "
      "ORDER BY name, version DESC LIMIT $6",
      {c.tenant.id, metric_id, active, c_name, c_ver, limit + 1});
  if (!rows) return rows.status();
  return page_response(
      *rows, limit,
      [&](JsonWriter& w, int i) {
        w.start_object();
        w.kv("name", rows->str(i, 0));
        w.kv("version", rows->get_int(i, 1));
        kv_nullable_str(w, "metric_id", *rows, i, 2);
        w.kv("kind", rows->str(i, 3));
        w.kv("sha256", rows->str(i, 4));
        kv_nullable_num(w, "threshold", *rows, i, 5);
        w.key("meta");
        w.raw(rows->get(i, 6));
        w.kv_time("trained_at", rows->get_ts(i, 7));
        w.kv("active", rows->get_bool(i, 8));
        w.kv("artefact_bytes", rows->get_int(i, 9));
        w.end_object();
      },
      [&](int i) {
        return encode_cursor({rows->str(i, 0), rows->str(i, 1)});
      });
}

// ---- usage ----

Result<Response> get_usage(Ctx& c) {
  EP_RETURN_IF_ERROR(q_only(c, {"from", "to"}));
  EP_TRY(from, q_time(c, "from"));
  EP_TRY(to, q_time(c, "to"));
  TimeNs f = from ? *from : c.now - 30LL * 24 * 3600 * kNsPerSec;
  auto days = c.db.exec(
      "SELECT to_char(day, 'YYYY-MM-DD'), points_ingested, batches, windows_scored, alerts_sent "
      "FROM usage_daily WHERE tenant_id = $1 AND day >= ($2::timestamptz AT TIME ZONE 'UTC')::date "
      "  AND ($3::timestamptz IS NULL OR day < ($3::timestamptz AT TIME ZONE 'UTC')::date) "
      "ORDER BY day",
      {c.tenant.id, pg::ts_param(f), ts_opt(to)});
  if (!days) return days.status();
  auto totals = c.db.exec(
      "SELECT (SELECT count(*) FROM devices WHERE tenant_id = $1), "
      "       (SELECT count(*) FROM metrics WHERE tenant_id = $1), "
      "       p.name, p.points_per_minute, p.max_series, p.retention_days "
      "FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.tenant_id = $1",
      {c.tenant.id});
  if (!totals) return totals.status();
  JsonWriter w;
  w.start_object();
  w.kv("tenant", c.tenant.slug);
  if (!totals->empty()) {
    w.kv("devices", totals->get_int(0, 0));
    w.kv("series", totals->get_int(0, 1));
    w.key("plan");
    w.start_object();
    w.kv("name", totals->str(0, 2));
    w.kv("points_per_minute", totals->get_int(0, 3));
    w.kv("max_series", totals->get_int(0, 4));
    w.kv("retention_days", totals->get_int(0, 5));
    w.end_object();
  }
  w.key("days");
  w.start_array();
  for (int i = 0; i < days->size(); ++i) {
    w.start_object();
    w.kv("day", days->str(i, 0));
    w.kv("points_ingested", days->get_int(i, 1));
    w.kv("batches", days->get_int(i, 2));
    w.kv("windows_scored", days->get_int(i, 3));
    w.kv("alerts_sent", days->get_int(i, 4));
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return json_response(200, w.take());
}

}  // namespace ep::api
