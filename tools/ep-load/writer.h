#pragma once
// Writer side of ep-load: loads one group per transaction, idempotently.
//
//   1. tenants, devices and metrics are resolved through caches; missing devices and
//      metrics are created with INSERT … ON CONFLICT DO NOTHING in their own short
//      statements (committed at once, so concurrent loaders never create duplicates
//      and never wait on each other's data transactions);
//   2. BEGIN; the group's batches go into ingest_batches with ON CONFLICT … DO UPDATE
//      … WHERE status <> 'loaded' RETURNING: exactly the batches not loaded before
//      come back (a concurrent loader holding the same batch makes us wait, then skip);
//   3. the points of those batches (and all point records), sorted by primary key and
//      de-duplicated, are COPY'd in binary straight into datapoints under a savepoint;
//      if that hits a unique violation (a point already present under another batch)
//      the savepoint is rolled back and the rows go through a temp staging table and
//      INSERT … ON CONFLICT DO NOTHING;
//   4. the points actually inserted (within the plan's raw retention) are aggregated into
//      rollups_1m/1h/1d (rollup.h), under a shared advisory lock per tenant taken at
//      BEGIN; usage_daily is bumped by what was actually inserted; COMMIT.
// Any failure rolls the whole group back; connection loss and serialization failures
// are retried with backoff up to --max-wait. A connection lost during COMMIT leaves the
// outcome in doubt: after reconnecting, the group's new batches are looked up in
// ingest_batches (or, for groups without batches, pg_xact_status of the transaction)
// before anything is retried (docs/conventions.md 11).
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "ep/pg.h"
#include "ep/status.h"
#include "group.h"
#include "options.h"
#include "reader.h"

namespace ep::load {

// The schema version ep-load needs (0002: datapoints partitioned by day); --follow
// needs 0005 (archive_cursors, archive_consumers).
inline constexpr int kSchemaVersion = 2;
inline constexpr int kFollowSchemaVersion = 5;
// Rollups (the default; --no-rollups loads without them) need 0006.
inline constexpr int kRollupSchemaVersion = 6;
// Days from today for which ep-load creates datapoints partitions; points outside
// land in datapoints_default.
inline constexpr std::int32_t kPartitionPastDays = 400;
inline constexpr std::int32_t kPartitionFutureDays = 2;

struct WriteStats {
  std::uint64_t groups = 0, transactions = 0;
  std::uint64_t batches_loaded = 0, batches_skipped = 0;
  std::uint64_t points_inserted = 0, points_skipped = 0;
  std::uint64_t rejected = 0;  // records rejected by the writer (unknown tenant)
  std::uint64_t retries = 0, in_doubt = 0, staging_fallbacks = 0;
  std::uint64_t devices_created = 0, metrics_created = 0;
};

class Writer {
 public:
  Writer(const Options& o, Reporter& rep);
  // Connects (with retry up to --max-wait) and checks the schema.
  Status open();
  // Loads one group; on success the inserted points are marked in g.points. Retries
  // per --max-wait; a non-ok Status means the group was not loaded (nothing partial).
  Status write(Group& g);
  const WriteStats& stats() const { return stats_; }

  // Test hook: called at named steps ("before_commit", "after_copy"); a non-ok Status
  // returned from it fails the step as if Postgres had.
  std::function<Status(const char* step)> fault;
  // Operational notices (retries, in-doubt resolution), one line each.
  std::function<void(const std::string&)> notice;
  // True stops waiting for Postgres at once (SIGTERM): open() and write() return the
  // last failure, nothing partial.
  std::function<bool()> cancelled;

  // Runs fn on the connection (reconnecting first) under the same retry policy as a
  // group; fn must leave no transaction open.
  Status with_conn(const std::function<Status(pg::Conn&)>& fn);

 private:
  struct Row {
    Uuid tenant, metric;
    std::int64_t ts_us;
    double value;
    std::uint32_t point;
  };
  enum class Outcome { kCommitted, kNotCommitted };
  // Counters of one attempt; added to stats_ only once its transaction committed.
  struct Pending {
    std::uint64_t batches_loaded = 0, batches_skipped = 0;
    std::uint64_t points_inserted = 0, points_skipped = 0, staging_fallbacks = 0;
  };

  Status connect_once();
  Status ensure_connected();
  Status resolve(Group& g);
  Status resolve_tenants(Group& g);
  Status resolve_devices(Group& g);
  Status resolve_metrics(Group& g);
  Status ensure_partitions(const Group& g);
  Status load_once(Group& g, Pending& pend, bool& commit_sent, std::string& txid);
  Result<Outcome> resolve_in_doubt(const std::string& txid, bool by_xact);
  pg::RetryPolicy policy() const;
  pg::RetryHooks hooks();
  Status copy_rows(const std::vector<Row>& rows, const char* table);
  // Rollups: takes the tenants' rollup locks and reads their raw-retention cutoffs
  // (microseconds; points before them were counted once already or never will be).
  Status lock_rollups(const Group& g, std::map<Uuid, std::int64_t>& cutoffs);
  Status update_rollups(const Group& g, const std::vector<Row>& rows, const std::map<Uuid, std::int64_t>& cutoffs);
  Status hook(const char* step);

  const Options& o_;
  Reporter& rep_;
  pg::Conn conn_;
  bool stage_ready_ = false;
  int direct_cooldown_ = 0;  // groups to load through staging after a conflict
  WriteStats stats_;
  std::vector<std::string> new_batches_;  // "tenant_id/batch_id" inserted by the last attempt
  std::unordered_map<std::string, std::pair<Uuid, bool>> tenants_;  // slug -> (id, exists)
  std::unordered_map<std::string, Uuid> devices_;  // tenant_id bytes + device -> id
  std::unordered_map<std::string, Uuid> metrics_;  // device_id bytes + metric -> id
  std::set<std::int32_t> days_known_;              // UTC days with a datapoints partition
};

// Postgres array literal helpers ({"a","b"}, NULL elements).
void append_array_elem(std::string& out, std::string_view s);

}  // namespace ep::load
