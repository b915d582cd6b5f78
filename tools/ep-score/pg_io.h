#pragma once
// Postgres mode of ep-score (--db).
//
//  * stdin mode: window records from stdin/files are scored as without --db and every
//    score is also upserted into anomaly_scores (tenant/device/metric names resolved to
//    ids through tenants/devices/metrics, cached). Rows go in batches: COPY into a
//    temporary table, then INSERT … ON CONFLICT (primary key) DO UPDATE, one transaction
//    per batch, so a re-run over the same windows stores each score exactly once.
//    usage_daily.windows_scored counts windows stored for the first time.
//  * --since-last --tenant T: the windows come from the features table instead, those
//    written (features.created_at) after the cursor ('ep-score', tenant) and before the
//    start of the oldest transaction still running elsewhere (so a row committed late
//    is never skipped). Each page of scores is written in the same transaction that
//    advances the cursor.
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "ep/model.h"
#include "ep/ndjson.h"
#include "ep/pg.h"
#include "ep/status.h"
#include "score.h"

namespace ep::score {

// Upserts score records into anomaly_scores (see above).
class DbScoreSink final : public ScoreSink {
 public:
  explicit DbScoreSink(pg::Conn& c, std::size_t batch_rows = 5000)
      : c_(c), batch_rows_(batch_rows) {}
  Status on_score(const Scored& s) override;
  // Writes the buffered rows in one transaction; `in_tx` runs inside it after the
  // upsert (the cursor update of --since-last).
  Status flush(const std::function<Status()>& in_tx = {});
  // Flush for idle input (LineReader's before-read hook): errors surface at the next
  // on_score() or flush().
  void flush_idle();
  // Seeds the id cache (--since-last knows the ids of what it reads).
  void remember(const Window& w, const std::string& tenant_id, const std::string& metric_id);

  std::int64_t stored() const { return stored_; }      // rows upserted
  std::int64_t inserted() const { return inserted_; }  // of them, new
  std::int64_t unknown() const { return unknown_; }    // windows of unknown series

 private:
  struct Ids {
    bool found = false;
    std::string tenant_id, metric_id;
  };
  Result<const Ids*> ids_for(const Score& s);

  pg::Conn& c_;
  std::size_t batch_rows_;
  std::unordered_map<std::string, Ids> ids_;
  std::string buf_, json_;
  std::size_t rows_ = 0;
  std::int64_t seq_ = 0, stored_ = 0, inserted_ = 0, unknown_ = 0;
  Status deferred_;
};

struct DbOptions {
  std::string url;     // resolved (pg::resolve_url); "" = libpq environment
  std::string tenant;  // --since-last: tenant slug
  bool since_last = false;
  bool progress = false;
};

// True when standard input has nothing to read right now (a paused stream).
bool stdin_idle();

// Connects (kUnavailable when Postgres cannot be reached).
Result<pg::Conn> connect(const DbOptions& db);

// --since-last: scores the features rows new since the cursor.
Status run_since_last(const Options& opt, const model::Source* store, pg::Conn& c,
                      const DbOptions& db, RecordWriter& out, Summary& summary,
                      DbScoreSink& sink);

}  // namespace ep::score
