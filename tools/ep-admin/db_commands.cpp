// ep-admin commands that work on Postgres: migrate, check, tenant, plan, usage.
#include <algorithm>

#include "admin.h"
#include "db.h"
#include "ep/json.h"
#include "ep/migrations.h"
#include "ep/pg.h"
#include "ep/records.h"
#include "ep/schema.h"
#include "ep/time.h"

namespace ep::admin {

Result<pg::Conn> open_db(const Options& o, bool need_schema, int min_version) {
  auto conn = pg::Conn::connect(pg::resolve_url(o.db), "ep-admin");
  if (!conn) return conn.status();
  if (need_schema) EP_RETURN_IF_ERROR(schema::require(*conn, min_version));
  return conn;
}

Result<TimeNs> now_of(const Options& o, std::string_view command) {
  if (o.now.empty()) return now_ns();
  auto t = parse_rfc3339(o.now, ParseTimeOptions{.assume_utc = true, .allow_date_only = true});
  if (!t) return Status::usage(std::string(command) + ": --now '" + o.now + "' is not an RFC 3339 timestamp");
  return *t;
}

Result<std::string> tenant_id(pg::Conn& c, const std::string& slug) {
  if (slug.empty()) return Status::usage("--tenant is required");
  auto r = c.exec("SELECT tenant_id FROM tenants WHERE slug = $1", {slug});
  if (!r) return r.status();
  if (r->empty()) return Status::not_found("unknown tenant '" + slug + "' (see 'ep-admin tenant list')");
  return r->str(0, 0);
}

Status migrate(const Options& o, Output& out) {
  auto conn = open_db(o, false);
  if (!conn) return conn.status();
  if (o.dry_run) {
    auto st = schema::state(*conn);
    if (!st) return st.status();
    if (st->newer)
      return Status::conflict("database schema is at version " + std::to_string(st->current) +
                              ", newer than this binary knows (" + std::to_string(st->latest) + ")");
    for (const auto& m : migrations())
      if (std::find(st->pending.begin(), st->pending.end(), m.version) != st->pending.end())
        out.out += std::string(m.name) + "\n";
    out.notes.push_back("migrate: schema at version " + std::to_string(st->current) + ", " +
                        std::to_string(st->pending.size()) + " pending (dry run, nothing applied)");
    return Status::ok();
  }
  auto rep = schema::migrate(*conn, o.to_version);
  if (!rep) return rep.status();
  if (rep->applied.empty()) {
    out.notes.push_back("migrate: schema is current (version " + std::to_string(rep->to) + "), nothing to do");
  } else {
    std::string names;
    for (const auto& a : rep->applied) names += (names.empty() ? "" : ", ") + a;
    out.notes.push_back("migrate: version " + std::to_string(rep->from) + " -> " +
                        std::to_string(rep->to) + " (applied " + names + ")");
  }
  return Status::ok();
}

namespace {

// Archive log consumers (ep-load --follow, table archive_consumers): one line each, and a
// warning for one that is behind the head of the log and has not advanced for --stall,
// or has not reported for --stall (stopped, or cut off from Postgres). Behind is the
// larger of its own report and the head another consumer of the same log has seen, so a
// consumer that stopped while the log grew is noticed too.
Status check_consumers(const Options& o, pg::Conn& conn, Output& out) {
  auto stall = parse_duration(o.stall);
  if (!stall || *stall <= 0) return Status::usage("--stall: '" + o.stall + "' is not a positive duration");
  auto r = conn.exec(
      "WITH c AS (SELECT a.*, coalesce((SELECT sum(k.records) FROM archive_cursors k WHERE k.consumer = a.consumer),"
      " 0)::int8 AS consumed FROM archive_consumers a)"
      " SELECT c.consumer, c.archive, c.tenant, c.consumed,"
      " greatest(c.lag_batches, (SELECT max(o.head_batches) FROM c o WHERE o.archive = c.archive"
      " AND o.tenant = c.tenant) - c.consumed, 0)::int8,"
      " c.lag_seconds, extract(epoch FROM now() - coalesce(c.advanced_at, c.reported_at))::float8,"
      " extract(epoch FROM now() - c.reported_at)::float8"
      " FROM c ORDER BY c.consumer");
  if (!r) return r.status();
  const double limit = static_cast<double>(*stall) / kNsPerSec;
  for (int i = 0; i < r->size(); ++i) {
    std::string name = r->str(i, 0);
    std::int64_t behind = r->get_int(i, 4);
    double lag_s = std::stod(r->str(i, 5)), quiet = std::stod(r->str(i, 6)), silent = std::stod(r->str(i, 7));
    char line[256];
    std::snprintf(line, sizeof line, "\tconsumed=%lld\tlag_batches=%lld\tlag_seconds=%.1f\tadvanced=%.0fs ago\treported=%.0fs ago\n",
                  static_cast<long long>(r->get_int(i, 3)), static_cast<long long>(behind), lag_s, quiet, silent);
    out.out += "consumer\t" + name + "\t" + r->str(i, 1) + (r->str(i, 2).empty() ? "" : " (tenant " + r->str(i, 2) + ")") +
               line;
    if (behind > 0 && quiet > limit)
      out.notes.push_back("check: warning: consumer '" + name + "' is " + std::to_string(behind) +
                          " batches behind the archive log and has not advanced for " +
                          std::to_string(static_cast<long long>(quiet)) + "s");
    else if (silent > limit)
      out.notes.push_back("check: warning: consumer '" + name + "' has not reported for " +
                          std::to_string(static_cast<long long>(silent)) + "s (is ep-load --follow running?)");
  }
  return Status::ok();
}

}  // namespace

Status check(const Options& o, Output& out) {
  auto conn = open_db(o, false);
  if (!conn) return conn.status();
  auto v = conn->exec("SELECT current_setting('server_version'), current_database(), current_user");
  if (!v) return v.status();
  auto st = schema::state(*conn);
  if (!st) return st.status();
  out.out += "server_version\t" + v->str(0, 0) + "\n";
  out.out += "database\t" + v->str(0, 1) + "\n";
  out.out += "user\t" + v->str(0, 2) + "\n";
  out.out += "schema_version\t" + std::to_string(st->current) + "\n";
  out.out += "latest_version\t" + std::to_string(st->latest) + "\n";
  out.out += "pending\t" + std::to_string(st->pending.size()) + "\n";
  if (st->newer)
    return Status::conflict("check: database schema (version " + std::to_string(st->current) +
                            ") is newer than this binary (" + std::to_string(st->latest) + ")");
  if (!st->mismatched.empty())
    return Status::conflict("check: applied migration " + st->mismatched.front() +
                            " differs from this binary's");
  if (!st->pending.empty())
    return Status::data("check: " + std::to_string(st->pending.size()) +
                        " migration(s) pending: run 'ep-admin migrate'");
  EP_RETURN_IF_ERROR(check_consumers(o, *conn, out));
  out.notes.push_back("check: ok (schema version " + std::to_string(st->current) + ")");
  return Status::ok();
}

Status tenant_add(const Options& o, Output& out) {
  if (!valid_tenant(o.tenant))
    return Status::usage("tenant add: '" + o.tenant + "': " + kInvalidTenant);
  auto conn = open_db(o, true);
  if (!conn) return conn.status();
  std::string plan = o.plan.empty() ? "default" : o.plan;
  auto p = conn->exec("SELECT 1 FROM plans WHERE name = $1", {plan});
  if (!p) return p.status();
  if (p->empty()) return Status::not_found("tenant add: unknown plan '" + plan + "' (see 'ep-admin plan list')");
  auto r = conn->exec("INSERT INTO tenants (slug, plan) VALUES ($1, $2) ON CONFLICT (slug) DO NOTHING RETURNING tenant_id",
                      {o.tenant, plan});
  if (!r) return r.status();
  if (r->empty()) return Status::conflict("tenant add: tenant '" + o.tenant + "' already exists");
  out.out += r->str(0, 0) + "\n";
  out.notes.push_back("tenant add: '" + o.tenant + "' on plan '" + plan + "'");
  return Status::ok();
}

Status tenant_list(const Options& o, Output& out) {
  auto conn = open_db(o, true);
  if (!conn) return conn.status();
  auto r = conn->exec(
      "SELECT t.slug, t.plan, t.disabled, t.created_at, t.tenant_id,"
      " (SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.tenant_id AND k.revoked_at IS NULL),"
      " (SELECT count(*) FROM devices d WHERE d.tenant_id = t.tenant_id)"
      " FROM tenants t ORDER BY t.slug");
  if (!r) return r.status();
  Table t({"tenant", "plan", "disabled", "created_at", "tenant_id", "active_keys", "devices"});
  t.set_numeric({false, false, false, false, false, true, true});
  for (int i = 0; i < r->size(); ++i)
    t.add({r->str(i, 0), r->str(i, 1), r->get_bool(i, 2) ? "true" : "false",
           format_rfc3339(r->get_ts(i, 3)), r->str(i, 4), r->str(i, 5), r->str(i, 6)});
  out.out += t.render(o.json);
  return Status::ok();
}

Status tenant_disable(const Options& o, Output& out) {
  auto conn = open_db(o, true);
  if (!conn) return conn.status();
  auto id = tenant_id(*conn, o.tenant);
  if (!id) return id.status().with_context(o.enable ? "tenant enable" : "tenant disable");
  auto r = conn->exec(
      "UPDATE tenants SET disabled = $2, disabled_at = CASE WHEN $2 THEN now() END"
      " WHERE tenant_id = $1 AND disabled <> $2 RETURNING 1",
      {*id, !o.enable});
  if (!r) return r.status();
  const char* what = o.enable ? "enabled" : "disabled";
  if (r->empty()) {
    out.notes.push_back(std::string("tenant: '") + o.tenant + "' was already " + what);
  } else {
    out.notes.push_back(std::string("tenant: '") + o.tenant + "' " + what);
  }
  return Status::ok();
}

namespace {

Status check_plan_values(const Options& o) {
  if (o.points_per_minute && *o.points_per_minute < 0) return Status::usage("--points-per-minute must be >= 0 (0 = unlimited)");
  if (o.max_series && *o.max_series < 0) return Status::usage("--max-series must be >= 0 (0 = unlimited)");
  if (o.retention_days && *o.retention_days <= 0) return Status::usage("--retention-days must be > 0");
  if (o.retention_1m_days && *o.retention_1m_days <= 0) return Status::usage("--retention-1m-days must be > 0");
  if (o.retention_1h_days && *o.retention_1h_days <= 0) return Status::usage("--retention-1h-days must be > 0");
  if (o.retention_1d_days && *o.retention_1d_days <= 0) return Status::usage("--retention-1d-days must be > 0");
  return Status::ok();
}

// $1 plan, $2.. the options; unset ones keep the value.
constexpr const char* kPlanUpdate =
    "UPDATE plans SET points_per_minute = coalesce($2::bigint, points_per_minute),"
    " max_series = coalesce($3::int, max_series), retention_days = coalesce($4::int, retention_days),"
    " retention_1m_days = coalesce($5::int, retention_1m_days), retention_1h_days = coalesce($6::int, retention_1h_days),"
    " retention_1d_days = coalesce($7::int, retention_1d_days), updated_at = now() WHERE name = $1";
constexpr const char* kPlanReturning =
    " RETURNING points_per_minute, max_series, retention_days, retention_1m_days, retention_1h_days, retention_1d_days";

std::string plan_values(const pg::Rows& r) {
  return "points_per_minute=" + r.str(0, 0) + " max_series=" + r.str(0, 1) + " retention_days=" + r.str(0, 2) +
         " retention_1m_days=" + r.str(0, 3) + " retention_1h_days=" + r.str(0, 4) +
         " retention_1d_days=" + r.str(0, 5);
}

}  // namespace

Status plan_add(const Options& o, Output& out) {
  if (!valid_name(o.plan, 64)) return Status::usage("plan add: '" + o.plan + "' is not a valid plan name ([A-Za-z0-9._:/-]{1,64})");
  EP_RETURN_IF_ERROR(check_plan_values(o));
  auto conn = open_db(o, true, kRollupSchema);
  if (!conn) return conn.status();
  // Unset options take the column defaults of the schema.
  pg::Transaction tx(*conn);
  EP_RETURN_IF_ERROR(tx.begin());
  auto ins = conn->exec("INSERT INTO plans (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING 1", {o.plan});
  if (!ins) return ins.status();
  if (ins->empty()) return Status::conflict("plan add: plan '" + o.plan + "' already exists (change it with 'ep-admin plan set')");
  auto r = conn->exec(std::string(kPlanUpdate) + kPlanReturning,
                      {o.plan, o.points_per_minute, o.max_series, o.retention_days, o.retention_1m_days,
                       o.retention_1h_days, o.retention_1d_days});
  if (!r) return r.status();
  EP_RETURN_IF_ERROR(tx.commit());
  out.notes.push_back("plan add: '" + o.plan + "' " + plan_values(*r));
  return Status::ok();
}

Status plan_set(const Options& o, Output& out) {
  EP_RETURN_IF_ERROR(check_plan_values(o));
  if (!o.points_per_minute && !o.max_series && !o.retention_days && !o.retention_1m_days && !o.retention_1h_days &&
      !o.retention_1d_days)
    return Status::usage("plan set: nothing to change (give --points-per-minute, --max-series or a --retention-* option)");
  auto conn = open_db(o, true, kRollupSchema);
  if (!conn) return conn.status();
  auto r = conn->exec(std::string(kPlanUpdate) + kPlanReturning,
                      {o.plan, o.points_per_minute, o.max_series, o.retention_days, o.retention_1m_days,
                       o.retention_1h_days, o.retention_1d_days});
  if (!r) return r.status();
  if (r->empty()) return Status::not_found("plan set: unknown plan '" + o.plan + "' (see 'ep-admin plan list')");
  out.notes.push_back("plan set: '" + o.plan + "' " + plan_values(*r));
  return Status::ok();
}

Status plan_list(const Options& o, Output& out) {
  auto conn = open_db(o, true, kRollupSchema);
  if (!conn) return conn.status();
  auto r = conn->exec(
      "SELECT p.name, p.points_per_minute, p.max_series, p.retention_days, p.retention_1m_days, p.retention_1h_days,"
      " p.retention_1d_days, (SELECT count(*) FROM tenants t WHERE t.plan = p.name) FROM plans p ORDER BY p.name");
  if (!r) return r.status();
  Table t({"plan", "points_per_minute", "max_series", "retention_days", "retention_1m_days", "retention_1h_days",
           "retention_1d_days", "tenants"});
  t.set_numeric({false, true, true, true, true, true, true, true});
  for (int i = 0; i < r->size(); ++i)
    t.add({r->str(i, 0), r->str(i, 1), r->str(i, 2), r->str(i, 3), r->str(i, 4), r->str(i, 5), r->str(i, 6),
           r->str(i, 7)});
  out.out += t.render(o.json);
  return Status::ok();
}

namespace {

// "2026-01-05" or RFC 3339 -> a date string Postgres accepts; empty stays empty.
Result<std::string> date_arg(const std::string& flag, const std::string& v) {
  if (v.empty()) return std::string();
  auto t = parse_rfc3339(v, ParseTimeOptions{.assume_utc = true, .allow_date_only = true});
  if (!t) return Status::usage(flag + ": '" + v + "' is not a date (YYYY-MM-DD) or RFC 3339 timestamp");
  return format_rfc3339(*t).substr(0, 10);
}

}  // namespace

Status usage(const Options& o, Output& out) {
  auto from = date_arg("--from", o.from);
  if (!from) return from.status();
  auto to = date_arg("--to", o.to);
  if (!to) return to.status();
  auto conn = open_db(o, true);
  if (!conn) return conn.status();
  std::optional<std::string> tid;
  if (!o.tenant.empty()) {
    auto id = tenant_id(*conn, o.tenant);
    if (!id) return id.status().with_context("usage");
    tid = *id;
  }
  std::optional<std::string> f, t;
  if (!from->empty()) f = *from;
  if (!to->empty()) t = *to;
  auto r = conn->exec(
      "SELECT t.slug, u.day::text, u.points_ingested, u.batches, u.windows_scored, u.alerts_sent"
      " FROM usage_daily u JOIN tenants t USING (tenant_id)"
      " WHERE ($1::uuid IS NULL OR u.tenant_id = $1) AND ($2::date IS NULL OR u.day >= $2)"
      " AND ($3::date IS NULL OR u.day <= $3) ORDER BY t.slug, u.day",
      {tid, f, t});
  if (!r) return r.status();
  Table tab({"tenant", "day", "points_ingested", "batches", "windows_scored", "alerts_sent"});
  tab.set_numeric({false, false, true, true, true, true});
  for (int i = 0; i < r->size(); ++i)
    tab.add({r->str(i, 0), r->str(i, 1), r->str(i, 2), r->str(i, 3), r->str(i, 4), r->str(i, 5)});
  out.out += tab.render(o.json);
  return Status::ok();
}

std::string Table::render(bool json) const {
  std::string s;
  if (json) {
    for (const auto& row : rows_) {
      JsonWriter w;
      w.start_object();
      for (size_t i = 0; i < cols_.size(); ++i) {
        w.key(cols_[i]);
        if (!row[i]) {
          w.null();
        } else if (i < numeric_.size() && numeric_[i]) {
          w.raw(*row[i]);
        } else if (*row[i] == "true" || *row[i] == "false") {
          w.boolean(*row[i] == "true");
        } else {
          w.str(*row[i]);
        }
      }
      w.end_object();
      s.append(w.view()).push_back('\n');
    }
    return s;
  }
  std::vector<size_t> width(cols_.size());
  for (size_t i = 0; i < cols_.size(); ++i) width[i] = cols_[i].size();
  for (const auto& row : rows_)
    for (size_t i = 0; i < cols_.size(); ++i) width[i] = std::max(width[i], row[i] ? row[i]->size() : 1);
  auto line = [&](auto cell) {
    for (size_t i = 0; i < cols_.size(); ++i) {
      std::string c = cell(i);
      s += c;
      if (i + 1 < cols_.size()) s.append(width[i] - c.size() + 2, ' ');
    }
    s += '\n';
  };
  line([&](size_t i) { return cols_[i]; });
  for (const auto& row : rows_) line([&](size_t i) { return row[i] ? *row[i] : std::string("-"); });
  return s;
}

}  // namespace ep::admin
