#pragma once
// ep-alert's commands: run (score records -> rules -> webhooks), retry (dead letters),
// check (validate a rules file), verify (check a received webhook). Each returns a
// Status whose code is the exit class; main() maps it to the exit code.
#include <atomic>
#include <string>
#include <vector>

#include "deliverer.h"
#include "ep/ndjson.h"
#include "ep/status.h"
#include "ep/time.h"
#include "http_client.h"

namespace ep::alert {

struct Options {
  std::string rules_path;
  std::string state_path;  // empty: no state (nothing survives the run)
  // Postgres mode (--db): rules, webhooks, silences and state in the database.
  bool use_db = false;
  std::string db_url;  // "" = $DATABASE_URL, then the libpq environment
  std::string tenant;  // --db: only this tenant (slug); "" = all
  bool since_last = false;  // --db: scores are the anomaly_scores rows new since the cursor
  bool dry_run = false;
  bool strict = false;
  bool progress = false;  // a progress line on stderr (terminal)
  std::vector<std::string> inputs;  // empty or "-" = stdin
  size_t max_line_bytes = kDefaultMaxLineBytes;
  HttpClientOptions http;
  RetryPolicy retry;
  // Per-tenant shares (--tenant-max-in-flight, --tenant-budget, --tenant-budget-period);
  // share.max_in_flight 0 = a quarter of --max-in-flight, at least 1.
  TenantShare share{0, 30 * kNsPerSec, 600 * kNsPerSec, 0};
  TimeNs drain_timeout = 60 * kNsPerSec;  // after the input ends, keep retrying this long
  size_t max_queue = 10000;               // unsettled deliveries before input is paused
  TimeNs state_interval = 1 * kNsPerSec;  // rewrite the state file at most this often
  // retry:
  TimeNs since = 0;  // only deliveries created within this long; 0 = all
  std::string rule_filter, webhook_filter;
  // Set from a signal handler: stop reading, finish in-flight attempts, save, exit.
  const std::atomic<bool>* stop = nullptr;
};

// Reads score records, evaluates rules, delivers webhooks, writes alert records.
Status run(const Options& opts, RecordWriter& out, const Clock& clock);
// Re-sends failed deliveries (and pending ones) from the state file or Postgres.
Status retry(const Options& opts, RecordWriter& out, const Clock& clock);
// Validates the rules (file or Postgres); a one-line summary on success.
Result<std::string> check(const Options& opts);

struct VerifyOptions {
  std::vector<std::string> secrets;  // "whsec_…", "env:NAME" or "file:PATH"
  TimeNs tolerance = 300 * kNsPerSec;
  std::vector<std::string> inputs;   // one request dump; empty or "-" = stdin
};
// Returns the verdict line for stdout ("valid: …" / "invalid: …") and whether it is valid.
Result<std::pair<bool, std::string>> verify_request(const VerifyOptions& opts, const Clock& clock);

}  // namespace ep::alert
