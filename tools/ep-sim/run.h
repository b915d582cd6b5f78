#pragma once
// One ep-sim run: plan the fleet, write the truth file, emit or POST the payloads.
#include <string>

#include "ep/ndjson.h"
#include "post.h"
#include "sim.h"

namespace ep::sim {

struct RunOptions {
  Options sim;
  std::string truth_path;  // --truth FILE ("" = none, "-" = stderr is not allowed)
  PostOptions post;        // post.url empty = write payload lines to stdout
  bool progress = false;
  bool strict = false;
};

struct RunSummary {
  Stats stats;
  std::uint64_t anomalies = 0, rejected = 0;
  std::uint64_t per_label[kLabelCount] = {};
  std::string text() const;
};

Status run(const RunOptions& o, RecordWriter& out, RunSummary& summary);

}  // namespace ep::sim
