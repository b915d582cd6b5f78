#pragma once
// Applying the embedded migrations (common/sql/NNNN_name.sql, ep::migrations()).
// Shared by `ep-admin migrate` and by every tool's Postgres tests, which migrate their
// own throwaway database with ep::schema::migrate().
//
// migrate(): one transaction under a transaction-scoped advisory lock, so two hosts
// migrating at once serialise and the second finds nothing to do; a no-op when the
// database is current; refuses (kConflict) a database whose schema is newer than this
// binary, or whose applied migrations differ from the embedded ones (checksum).
#include <string>
#include <vector>

#include "ep/pg.h"
#include "ep/status.h"

namespace ep::schema {

// Advisory lock class of rollup maintenance (migration 0006), keyed by
// hashtext(tenant_id::text): ep-load holds it shared for the tenants of each transaction
// that inserts points, `ep-admin rollup rebuild` exclusively while it recomputes a day of
// one tenant, so a rebuild never misses or double counts a concurrent load.
inline constexpr int kRollupLockClass = 0x45507275;  // "EPru"

// Name of the bookkeeping table (created by migrate(), not by a numbered migration).
inline constexpr const char* kMigrationsTable = "schema_migrations";

struct State {
  int current = 0;           // highest applied version (0 = empty database)
  int latest = 0;            // highest embedded version
  std::vector<int> pending;  // embedded versions not applied, ascending
  std::vector<std::string> mismatched;  // "NNNN_name" applied with another checksum
  bool newer = false;        // the database has versions this binary does not know
};

struct MigrateReport {
  int from = 0, to = 0;
  std::vector<std::string> applied;  // "0001_core", ...
};

// Hex SHA-256 of a migration's SQL text, as stored in schema_migrations.checksum.
std::string checksum(std::string_view sql);

// Reads the state without changing anything (for `ep-admin check`).
Result<State> state(pg::Conn& conn);

// Applies every pending migration. target_version 0 = latest.
Result<MigrateReport> migrate(pg::Conn& conn, int target_version = 0);

// kUnavailable/kSoftware-free check used by tools at startup: the schema is present and
// not older than `min_version`; the message tells the operator to run ep-admin migrate.
Status require(pg::Conn& conn, int min_version = 1);

}  // namespace ep::schema
