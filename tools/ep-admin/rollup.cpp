// ep-admin rollup rebuild: recomputes rollups_1m/1h/1d of a range from datapoints, one
// transaction per tenant and UTC day. What it writes is what ep-load's incremental
// maintenance gives for the same points (tools/ep-load/rollup.h): count, min, max, exact
// decimal sums of value::text::numeric, first and last point.
//
// Each day holds the tenant's rollup lock (ep::schema::kRollupLockClass) exclusively:
// loaders of that tenant wait for the day to commit, and the day waits for loaders
// already in a transaction, so its snapshot sees every point whose rollup it replaces.
// Days before the tenant's raw retention are never rebuilt: their points may be gone
// while their rollups are kept.
#include <algorithm>

#include "admin.h"
#include "db.h"
#include "ep/pg.h"
#include "ep/schema.h"

namespace ep::admin {

namespace {

struct Level {
  const char* table;
  const char* unit;  // date_trunc unit
};
constexpr Level kLevels[] = {{"rollups_1m", "minute"}, {"rollups_1h", "hour"}, {"rollups_1d", "day"}};

std::string rebuild_sql(const Level& l) {
  return std::string("INSERT INTO ") + l.table +
         " (tenant_id, metric_id, bucket, n, min, max, sum, sumsq, first_ts, first_value, last_ts, last_value)"
         " SELECT tenant_id, metric_id, date_trunc('" + l.unit + "', ts, 'UTC'), count(*), min(value), max(value),"
         " sum(x), sum(x * x), min(ts), (array_agg(value ORDER BY ts))[1], max(ts),"
         " (array_agg(value ORDER BY ts DESC))[1]"
         " FROM (SELECT tenant_id, metric_id, ts, value, value::text::numeric AS x FROM datapoints"
         " WHERE tenant_id = $1 AND ts >= $2::timestamptz AND ts < $3::timestamptz) p GROUP BY 1, 2, 3";
}

struct Extent {
  std::int64_t first = 0, last = 0;  // UTC days [first, last); empty when equal
};

// The days a tenant has points or rollups in: first and last point of each series
// (one index probe per series and partition) and the daily rollups' bucket index.
Result<Extent> extent(pg::Conn& c, const std::string& tid) {
  auto r = c.exec(
      "SELECT (extract(epoch FROM least(min(f), (SELECT min(bucket) FROM rollups_1d WHERE tenant_id = $1))) * 1e6)::int8,"
      " (extract(epoch FROM greatest(max(l), (SELECT max(bucket) FROM rollups_1d WHERE tenant_id = $1))) * 1e6)::int8"
      " FROM metrics m"
      " LEFT JOIN LATERAL (SELECT ts AS f FROM datapoints d WHERE d.tenant_id = m.tenant_id AND d.metric_id = m.metric_id"
      " ORDER BY ts LIMIT 1) a ON true"
      " LEFT JOIN LATERAL (SELECT ts AS l FROM datapoints d WHERE d.tenant_id = m.tenant_id AND d.metric_id = m.metric_id"
      " ORDER BY ts DESC LIMIT 1) b ON true WHERE m.tenant_id = $1",
      {tid});
  if (!r) return r.status();
  Extent e;
  if (r->is_null(0, 0)) return e;
  e.first = day_of(r->get_int(0, 0) * 1000);
  e.last = day_of(r->get_int(0, 1) * 1000) + 1;
  return e;
}

Result<TimeNs> time_arg(const std::string& flag, const std::string& v) {
  auto t = parse_rfc3339(v, ParseTimeOptions{.assume_utc = true, .allow_date_only = true});
  if (!t) return Status::usage("rollup rebuild: " + flag + " '" + v + "' is not a date (YYYY-MM-DD) or RFC 3339 timestamp");
  return *t;
}

// One tenant-day; adds the rows written per level to `rows`.
Status rebuild_day(pg::Conn& c, const std::string& tid, std::int64_t day, std::int64_t (&rows)[3]) {
  pg::Transaction tx(c);
  EP_RETURN_IF_ERROR(tx.begin());
  // value::text must be the shortest round-trip decimal, as in ep-load.
  EP_RETURN_IF_ERROR(c.run("SET LOCAL extra_float_digits = 1"));
  EP_RETURN_IF_ERROR(c.run("SELECT pg_advisory_xact_lock($1::int, hashtext($2::uuid::text))",
                           {schema::kRollupLockClass, tid}));
  const std::string from = format_date(day) + "T00:00:00Z", to = format_date(day + 1) + "T00:00:00Z";
  for (const Level& l : kLevels)
    EP_RETURN_IF_ERROR(c.run(std::string("DELETE FROM ") + l.table +
                                 " WHERE tenant_id = $1 AND bucket >= $2::timestamptz AND bucket < $3::timestamptz",
                             {tid, from, to}));
  for (int i = 0; i < 3; ++i) {
    auto r = c.exec(rebuild_sql(kLevels[i]), {tid, from, to});
    if (!r) return r.status().with_context(kLevels[i].table);
    rows[i] += r->affected();
  }
  return tx.commit();
}

}  // namespace

Status rollup_rebuild(const Options& o, Output& out) {
  auto now = now_of(o, "rollup rebuild");
  if (!now) return now.status();
  std::optional<TimeNs> since;
  if (!o.since.empty()) {
    auto t = time_arg("--since", o.since);
    if (!t) return t.status();
    since = *t;
  }
  std::optional<TimeNs> until;
  if (!o.until.empty()) {
    auto t = time_arg("--until", o.until);
    if (!t) return t.status();
    until = *t;
  }
  if (since && until && *since >= *until) return Status::usage("rollup rebuild: --since must be before --until");
  auto conn = open_db(o, true, kRollupSchema);
  if (!conn) return conn.status();
  std::optional<std::string> only;
  if (!o.tenant.empty()) {
    auto id = tenant_id(*conn, o.tenant);
    if (!id) return id.status().with_context("rollup rebuild");
    only = *id;
  }
  auto tenants = conn->exec(
      "SELECT t.tenant_id, t.slug, p.retention_days FROM tenants t JOIN plans p ON p.name = t.plan"
      " WHERE $1::uuid IS NULL OR t.tenant_id = $1 ORDER BY t.slug",
      {only});
  if (!tenants) return tenants.status();

  Table report({"tenant", "from", "until", "days", "rollups_1m", "rollups_1h", "rollups_1d"});
  report.set_numeric({false, false, false, true, true, true, true});
  for (int i = 0; i < tenants->size(); ++i) {
    const std::string tid = tenants->str(i, 0), slug = tenants->str(i, 1);
    auto ext = extent(*conn, tid);
    if (!ext) return ext.status().with_context("rollup rebuild: tenant '" + slug + "'");
    // The range in whole UTC days, [first, last); by default what has points or rollups.
    std::int64_t first = since ? day_of(*since) : ext->first;
    const std::int64_t last = until ? day_of(*until - 1) + 1 : ext->last;
    // The first day all of whose points are within raw retention.
    const std::int64_t kept = day_of(*now - tenants->get_int(i, 2) * kNsPerDay - 1) + 1;
    if (first < kept) {
      if (since)
        out.notes.push_back("rollup rebuild: tenant '" + slug + "' keeps raw points " + tenants->str(i, 2) +
                            " days: rebuilding from " + format_date(kept) + ", not " + format_date(first) +
                            " (earlier rollups are kept as they are)");
      first = kept;
    }
    std::int64_t rows[3] = {0, 0, 0};
    for (std::int64_t d = first; d < last; ++d) {
      if (Status s = rebuild_day(*conn, tid, d, rows); !s)
        return s.with_context("rollup rebuild: tenant '" + slug + "', " + format_date(d));
    }
    const std::int64_t days = std::max<std::int64_t>(0, last - first);
    report.add({slug, format_date(first), format_date(std::max(first, last)), std::to_string(days),
                std::to_string(rows[0]), std::to_string(rows[1]), std::to_string(rows[2])});
  }
  out.out += report.render(o.json);
  out.notes.push_back("rollup rebuild: " + std::to_string(tenants->size()) + " tenant(s)");
  return Status::ok();
}

}  // namespace ep::admin
