#pragma once
// Everything ep-ingest can be told, filled by main.cpp from flags, env and config.
#include <cstdint>
#include <string>
#include <vector>

#include "ep/archive.h"
#include "ep/http_server.h"
#include "payload.h"
#include "samples.h"
#include "text_formats.h"

namespace ep::ingest {

struct Options {
  // HTTP mode
  http::ServerOptions server;
  std::string keys_path;               // --keys FILE
  bool use_db = false;                 // --db [URL]: keys and plans from Postgres
  std::string db_url;                  // resolved (pg::resolve_url)
  TimeNs key_refresh = 30 * kNsPerSec; // --key-refresh
  std::string pepper;                  // API_KEY_HASH_SALT or [ingest] api-key-hash-salt
  std::int64_t default_points_per_minute = 0;  // for keys without a plan quota; 0 = unlimited
  TimeNs idempotency_window = 24 * 3600 * kNsPerSec;
  size_t idempotency_max_keys = 100000;

  // stdin mode
  bool stdin_mode = false;
  std::string tenant;
  std::string format = "ndjson";  // csv, influx, prom, logfmt, syslog
  std::string time_precision;     // --time-precision s|ms|us|ns: epoch times; "" = RFC 3339 (influx: ns)
  std::string csv_delimiter = ",";  // --csv-delimiter
  KeyValueOptions key_values;     // logfmt and syslog: --device-key, --metric-key, …
  std::string rejects_path;       // empty = stderr
  std::vector<std::string> inputs;
  bool strict = false;
  bool progress = false;
  size_t csv_batch_points = 1000;      // a device's CSV batch is emitted at this size
  size_t csv_pending_points = 100000;  // all CSV batches are emitted past this many points

  // both
  std::string archive_uri;
  ArchiveOptions archive_options = [] {
    ArchiveOptions a;
    a.create_format = 2;  // a new file:// archive is a segment log
    return a;
  }();
  int archive_writers = 32;  // HTTP: committer threads writing to the archive concurrently
  Limits limits;
  SeriesMapping mapping;  // --device-label, --default-device
};

}  // namespace ep::ingest
