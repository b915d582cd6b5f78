#pragma once
// Postgres mode of ep-train (--db --tenant T): trains from the features table over the
// training range, leaving out every window anomaly_scores flagged anomalous (so a past
// incident does not become "normal"), writes the artefacts to --models DIR as in files
// mode (ep-score loads them from there) and records each model in the models table
// (name "device/metric", or "*/metric" for a group model, same version number, the
// artefact bytes with their SHA-256, threshold and parameters in meta).
#include <optional>
#include <string>

#include "ep/model.h"
#include "ep/ndjson.h"
#include "ep/status.h"
#include "ep/time.h"
#include "train.h"

namespace ep::train {

struct DbOptions {
  std::string url;     // resolved (pg::resolve_url); "" = libpq environment
  std::string tenant;  // slug
  bool progress = false;
};

// Windows read, of them excluded as flagged anomalous, are added to `summary`
// (lines = features rows read).
Status run_db(const Options& opt, const DbOptions& db, RecordWriter& out,
              const model::Store& store, const Clock& clock, Summary& summary,
              std::int64_t& excluded);

}  // namespace ep::train
