#pragma once
// Postgres mode: datapoints of one tenant (optionally one device / metric) over a time
// range, streamed in series order through the extractor; windows go to stdout or are
// upserted into the features table (--write-db).
#include <string>

#include "ep/ndjson.h"
#include "ep/pg.h"
#include "ep/status.h"
#include "options.h"
#include "run.h"

namespace ep::features {

struct DbOptions {
  std::string url;  // resolved (pg::resolve_url); "" = libpq environment
  std::string tenant, device, metric;
  TimeNs from = 0, to = 0;  // [from, to)
  bool write_db = false;
  bool progress = false;  // series done / total on stderr
};

Status run_db(const Options& opts, const DbOptions& db, RecordWriter& out, RunSummary& summary);

}  // namespace ep::features
