#include "db_keys.h"

#include "ep/schema.h"

namespace ep::ingest {

Result<std::unique_ptr<DbKeys>> DbKeys::open(const std::string& url) {
  auto k = std::make_unique<DbKeys>();
  k->url_ = url;
  EP_RETURN_IF_ERROR(k->reconnect());
  EP_RETURN_IF_ERROR(schema::require(k->conn_));
  return k;
}

Status DbKeys::reconnect() {
  auto c = pg::Conn::connect(pg::ConnectOptions{url_, "ep-ingest", 10});
  if (!c) return c.status().with_context("--db " + pg::redact_url(url_));
  conn_ = std::move(c).value();
  return Status::ok();
}

Result<std::vector<keys::KeyEntry>> DbKeys::load() {
  if (!conn_.connected() || conn_.broken()) EP_RETURN_IF_ERROR(reconnect());
  auto rows = conn_.exec(
      "SELECT k.prefix, k.hash, t.slug, k.label, k.created_at, k.revoked_at, p.points_per_minute,"
      "       t.disabled, p.max_series"
      "  FROM api_keys k JOIN tenants t ON t.tenant_id = k.tenant_id"
      "  JOIN plans p ON p.name = t.plan",
      {});
  if (!rows) return rows.status().with_context("loading api_keys");
  std::vector<keys::KeyEntry> out;
  out.reserve(static_cast<size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) {
    keys::KeyEntry e;
    e.prefix = rows->str(i, 0);
    e.hash = rows->str(i, 1);
    e.tenant = rows->str(i, 2);
    e.label = rows->str(i, 3);
    e.created_at = rows->get_ts(i, 4);
    e.revoked_at = rows->opt_ts(i, 5);
    e.points_per_minute = rows->get_int(i, 6);
    e.tenant_disabled = rows->get_bool(i, 7);
    e.max_series = rows->get_int(i, 8);
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<SeriesLimit::Known>> DbKeys::load_series() {
  if (!conn_.connected() || conn_.broken()) EP_RETURN_IF_ERROR(reconnect());
  auto rows = conn_.exec(
      "SELECT t.slug, d.external_id, m.name"
      "  FROM metrics m JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id"
      "  JOIN tenants t ON t.tenant_id = m.tenant_id JOIN plans p ON p.name = t.plan"
      " WHERE p.max_series > 0",
      {});
  if (!rows) return rows.status().with_context("loading series for max_series");
  std::vector<SeriesLimit::Known> out(static_cast<size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) out[static_cast<size_t>(i)] = {rows->str(i, 0), rows->str(i, 1), rows->str(i, 2)};
  return out;
}

Status DbKeys::record_usage(const std::vector<std::string>& prefixes, TimeNs at) {
  if (prefixes.empty()) return Status::ok();
  if (!conn_.connected() || conn_.broken()) EP_RETURN_IF_ERROR(reconnect());
  // Prefixes are base62 (keys::parse_key checked them), so the array literal needs no quoting.
  std::string array = "{";
  for (size_t i = 0; i < prefixes.size(); ++i) {
    if (i) array += ',';
    array += prefixes[i];
  }
  array += '}';
  return conn_
      .run("UPDATE api_keys SET last_used_at = $2"
           " WHERE prefix = ANY($1::text[]) AND (last_used_at IS NULL OR last_used_at < $2)",
           {array, pg::ts_param(at)})
      .with_context("recording api_keys.last_used_at");
}

}  // namespace ep::ingest
