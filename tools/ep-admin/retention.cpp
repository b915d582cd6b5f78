// ep-admin retention: removes each tenant's data older than its plan's retention_days,
// in bounded chunks (one short transaction each, so locks and WAL stay small and a
// concurrent ep-load is never blocked for long), and reports what it removed.
//
// datapoints is partitioned by UTC day: a partition older than every tenant's cutoff
// is dropped whole; rows younger than that are deleted per tenant in chunks.
// Usage counters (usage_daily) are kept: they are billing records, not telemetry.
// Rollups have their own retention per resolution (plans.retention_1m/1h/1d_days); a
// bucket goes once its start is past the cutoff.
#include "admin.h"
#include "db.h"
#include "ep/pg.h"

namespace ep::admin {

namespace {

struct Target {
  const char* table;
  const char* time_column;
  int keep;  // which plan column: kKeep[keep]
};

constexpr const char* kKeep[] = {"retention_days", "retention_1m_days", "retention_1h_days", "retention_1d_days"};

// Children before parents is not needed (no foreign keys between these by time), but
// alert_attempts go with their alert_events through ON DELETE CASCADE.
constexpr Target kTargets[] = {
    {"datapoints", "ts", 0},
    {"rollups_1m", "bucket", 1},
    {"rollups_1h", "bucket", 2},
    {"rollups_1d", "bucket", 3},
    {"features", "window_end", 0},
    {"anomaly_scores", "window_end", 0},
    {"alert_events", "created_at", 0},
    {"ingest_batches", "received_at", 0},
};

}  // namespace

Status retention(const Options& o, Output& out) {
  if (o.chunk_rows <= 0) return Status::usage("retention: --chunk must be > 0");
  auto now_or = now_of(o, "retention");
  if (!now_or) return now_or.status();
  const TimeNs now = *now_or;
  auto conn = open_db(o, true, kRollupSchema);
  if (!conn) return conn.status();
  std::optional<std::string> only;
  if (!o.tenant.empty()) {
    auto id = tenant_id(*conn, o.tenant);
    if (!id) return id.status().with_context("retention");
    only = *id;
  }
  std::string cols;
  for (const char* k : kKeep)
    cols += std::string(", p.") + k + ", $1::timestamptz - make_interval(days => p." + k + ")";
  auto tenants = conn->exec(
      "SELECT t.tenant_id, t.slug" + cols + " FROM tenants t JOIN plans p ON p.name = t.plan WHERE $2::uuid IS NULL OR t.tenant_id = $2"
      " ORDER BY t.slug",
      {pg::ts_param(now), only});
  if (!tenants) return tenants.status();

  Table report({"tenant", "table", "retention_days", "cutoff", o.dry_run ? "would_remove" : "removed"});
  report.set_numeric({false, false, true, false, true});
  std::int64_t total = 0;
  std::string dropped = "{";  // partitions dropped (or, with --dry-run, that would be)
  // Whole day partitions of datapoints that every tenant's retention has passed are
  // dropped (instant, no dead rows); the rest is deleted below in chunks. Only when
  // all tenants are considered: one tenant's retention never drops shared partitions.
  if (!only) {
    auto parts = conn->exec(
        "WITH c AS (SELECT min($1::timestamptz - make_interval(days => p.retention_days)) AS cutoff,"
        " max(p.retention_days) AS days FROM tenants t JOIN plans p ON p.name = t.plan)"
        " SELECT quote_ident(k.relname), k.relname, c.cutoff, c.days FROM c, pg_inherits i"
        " JOIN pg_class k ON k.oid = i.inhrelid"
        " WHERE i.inhparent = 'datapoints'::regclass AND k.relname ~ '^datapoints_p[0-9]{8}$'"
        " AND c.cutoff IS NOT NULL"
        " AND ((to_date(substr(k.relname, 13), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC') <= c.cutoff"
        " ORDER BY k.relname",
        {pg::ts_param(now)});
    if (!parts) return parts.status().with_context("retention: datapoints partitions");
    for (int i = 0; i < parts->size(); ++i) {
      auto n = conn->exec("SELECT count(*) FROM " + parts->str(i, 0));
      if (!n) return n.status().with_context("retention: " + parts->str(i, 1));
      if (!o.dry_run) {
        if (Status s = conn->run("DROP TABLE " + parts->str(i, 0)); !s)
          return s.with_context("retention: dropping " + parts->str(i, 1));
      }
      total += n->get_int(0, 0);
      dropped += (dropped.size() > 1 ? "," : "") + parts->str(i, 1);
      report.add({"*", parts->str(i, 1), parts->str(i, 3),
                  format_rfc3339(pg::parse_pg_ts(parts->get(i, 2)).value_or(0)), n->str(0, 0)});
    }
  }
  for (int i = 0; i < tenants->size(); ++i) {
    std::string tid = tenants->str(i, 0);
    for (const auto& tg : kTargets) {
      const std::string days = tenants->str(i, 2 + 2 * tg.keep), cutoff = tenants->str(i, 3 + 2 * tg.keep);
      std::string where = std::string(" WHERE tenant_id = $1 AND ") + tg.time_column + " < $2";
      std::int64_t removed = 0;
      if (o.dry_run) {
        // Rows in partitions counted above as dropped are not counted twice.
        std::string not_dropped = std::string(tg.table) == "datapoints"
            ? " AND tableoid <> ALL(ARRAY(SELECT oid FROM pg_class WHERE relname = ANY($3::text[])))"
            : " AND $3::text[] IS NOT NULL";
        auto r = conn->exec(std::string("SELECT count(*) FROM ") + tg.table + where + not_dropped,
                            {tid, cutoff, dropped + "}"});
        if (!r) return r.status().with_context(std::string("retention: ") + tg.table);
        removed = r->get_int(0, 0);
      } else {
        // ctid is only unique within one partition of datapoints, so a chunk may also
        // match rows of other partitions: the outer WHERE keeps every deleted row
        // expired and of this tenant, and a chunk never deletes fewer rows than it
        // selected, so the loop still ends exactly when nothing expired is left.
        std::string sql = std::string("DELETE FROM ") + tg.table + where +
                          " AND ctid = ANY(ARRAY(SELECT ctid FROM " + tg.table + where + " LIMIT $3))";
        for (;;) {
          auto r = conn->exec(sql, {tid, cutoff, o.chunk_rows});
          if (!r) {
            return r.status().with_context(std::string("retention: ") + tg.table + " (removed " +
                                           std::to_string(removed) + " rows of tenant '" +
                                           tenants->str(i, 1) + "' before the error)");
          }
          removed += r->affected();
          if (r->affected() < o.chunk_rows) break;
        }
      }
      total += removed;
      if (removed > 0 || o.json)
        report.add({tenants->str(i, 1), tg.table, days,
                    format_rfc3339(pg::parse_pg_ts(cutoff).value_or(0)), std::to_string(removed)});
    }
  }
  out.out += report.render(o.json);
  out.notes.push_back(std::string("retention: ") + (o.dry_run ? "would remove " : "removed ") +
                      std::to_string(total) + " rows across " + std::to_string(tenants->size()) + " tenant(s)");
  return Status::ok();
}

}  // namespace ep::admin
