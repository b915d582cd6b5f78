#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ep/time.h"

namespace ep::load {

struct Options {
  std::string db;                 // --db [URL]; "" = $DATABASE_URL, then libpq environment
  std::vector<std::string> inputs;
  bool emit = false;              // --emit: loaded points as point records on stdout
  std::int64_t batch_size = 1000;        // records (batches or points) per transaction
  std::int64_t max_points = 200000;      // points per transaction
  TimeNs flush_interval = kNsPerSec;     // a partial group waits at most this long
  TimeNs max_wait = 60 * kNsPerSec;      // give up (exit 69) when Postgres is down longer
  bool create_tenants = false;    // unknown tenants are created (default plan) instead of rejected
  bool strict = false;            // stop at the first rejected record
  bool progress = false;
  size_t max_line_bytes = 4 << 20;
  std::string copy_mode = "auto";  // auto | direct | staging (see docs/ep-load.md)
  bool rollups = true;             // keep rollups_1m/1h/1d (--no-rollups: not)
  int schema_version = 2;          // the schema version required (--follow needs its cursor tables)
};

}  // namespace ep::load
