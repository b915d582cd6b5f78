#include "ep/schema.h"

#include <algorithm>

#include "ep/crypto.h"
#include "ep/migrations.h"

namespace ep::schema {

namespace {

constexpr const char* kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL DEFAULT current_user)";

std::string migration_label(const Migration& m) { return std::string(m.name); }

// Fills `st` from schema_migrations (which must exist).
Status read_applied(pg::Conn& conn, State& st) {
  auto rows = conn.exec("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
  if (!rows) return rows.status().with_context("reading schema_migrations");
  const auto& all = migrations();
  st.latest = all.empty() ? 0 : all.back().version;
  std::vector<int> applied;
  for (int i = 0; i < rows->size(); ++i) {
    int v = static_cast<int>(rows->get_int(i, 0));
    applied.push_back(v);
    st.current = std::max(st.current, v);
    auto it = std::find_if(all.begin(), all.end(), [v](const Migration& m) { return m.version == v; });
    if (it == all.end()) {
      st.newer = true;
    } else if (rows->get(i, 2) != checksum(it->sql)) {
      st.mismatched.push_back(migration_label(*it));
    }
  }
  for (const auto& m : all)
    if (std::find(applied.begin(), applied.end(), m.version) == applied.end())
      st.pending.push_back(m.version);
  return Status::ok();
}

}  // namespace

std::string checksum(std::string_view sql) { return crypto::sha256_hex(sql); }

Result<State> state(pg::Conn& conn) {
  State st;
  const auto& all = migrations();
  st.latest = all.empty() ? 0 : all.back().version;
  auto exists = conn.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists) return exists.status();
  if (!exists->get_bool(0, 0)) {
    for (const auto& m : all) st.pending.push_back(m.version);
    return st;
  }
  EP_RETURN_IF_ERROR(read_applied(conn, st));
  return st;
}

Result<MigrateReport> migrate(pg::Conn& conn, int target_version) {
  const auto& all = migrations();
  int latest = all.empty() ? 0 : all.back().version;
  if (target_version == 0) target_version = latest;
  if (target_version > latest)
    return Status::usage("target version " + std::to_string(target_version) +
                         " is newer than this binary's latest migration " + std::to_string(latest));
  pg::Transaction tx(conn);
  EP_RETURN_IF_ERROR(tx.begin());
  // Serialises concurrent migrations of this database (from any host). Taken before
  // anything is read, so the second migrator sees the first one's committed result.
  EP_RETURN_IF_ERROR(conn.advisory_xact_lock(pg::lock_key("edgepulse.schema.migrate")));
  EP_RETURN_IF_ERROR(conn.exec("SET LOCAL client_min_messages = warning").status());
  EP_RETURN_IF_ERROR(conn.exec(kCreateTable).status());
  State st;
  EP_RETURN_IF_ERROR(read_applied(conn, st));
  if (st.newer)
    return Status::conflict("database schema is at version " + std::to_string(st.current) +
                            ", newer than this binary knows (" + std::to_string(latest) +
                            "); upgrade EdgePulse instead of migrating");
  if (!st.mismatched.empty())
    return Status::conflict("applied migration " + st.mismatched.front() +
                            " differs from the one in this binary (checksum); refusing to go on");
  MigrateReport report;
  report.from = st.current;
  report.to = st.current;
  for (const auto& m : all) {
    if (m.version > target_version) break;
    if (std::find(st.pending.begin(), st.pending.end(), m.version) == st.pending.end()) continue;
    auto r = conn.exec(m.sql);
    if (!r) return r.status().with_context("migration " + migration_label(m));
    EP_RETURN_IF_ERROR(conn.run("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                {m.version, m.name, checksum(m.sql)}));
    report.applied.push_back(migration_label(m));
    report.to = m.version;
  }
  Status c = tx.commit();
  if (!c) return c.with_context("commit");
  return report;
}

Status require(pg::Conn& conn, int min_version) {
  auto st = state(conn);
  if (!st) return st.status();
  if (st->current < min_version)
    return Status::unavailable("database schema is at version " + std::to_string(st->current) +
                               ", need " + std::to_string(min_version) + ": run 'ep-admin migrate'");
  return Status::ok();
}

}  // namespace ep::schema
