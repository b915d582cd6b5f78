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
//  * models come from the models table (DbModelSource below) unless --models DIR is
//    given on the command line.
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

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

// Models from the Postgres models table, as ep-train --db records them: name
// "device/metric" with the series' metric_id, or "*/metric" with metric_id NULL for a
// group model; row version N is artefact @N. A series' current model is its highest
// active version (ep-train --db deactivates the older ones; setting active = false on
// the newest rolls back to the one before). A row whose metric_id names another series
// than its name says is not used for this series.
//
// The active rows of a tenant (names, versions, series; not the artefacts) are read once
// per run, at the tenant's first lookup, so series without a model cost no query; an
// artefact is read when a series first needs it (the Scorer caches the model). Every
// artefact is checked twice — its bytes against the row's sha256 column, then its own
// checksum and shape (model::parse) — and must be the series and version its row says;
// a failure is kData naming the model ("models table acme/d/m@2: ...") and is
// remembered, so a broken group model is read once, not once per series.
class DbModelSource final : public model::Source {
 public:
  explicit DbModelSource(pg::Conn& c) : c_(c) {}
  Result<model::Model> load(const SeriesKey& k, int version = 0) const override;
  std::string describe() const override { return "the models table"; }
  void refresh() const override {
    tenants_.clear();
    broken_.clear();
  }
  std::int64_t artefacts_read() const { return reads_; }

 private:
  struct Row {
    int version = 0;
    bool has_series = false;     // metric_id names an existing series
    std::string device, metric;  // that series
  };
  struct Tenant {
    bool exists = false;
    std::string tenant_id;
    std::unordered_map<std::string, std::vector<Row>> active;  // by name, newest first
  };
  Result<const Tenant*> tenant(const std::string& slug) const;
  Result<model::Model> fetch(const Tenant& t, const SeriesKey& k, int version) const;

  pg::Conn& c_;
  mutable std::unordered_map<std::string, Tenant> tenants_;
  mutable std::unordered_map<std::string, Status> broken_;  // model id -> why
  mutable std::int64_t reads_ = 0;
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
