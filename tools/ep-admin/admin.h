#pragma once
// ep-admin core: schema, tenants, plans, API keys, usage and retention. Every command
// is a function of (Options, Output) returning a Status; main() prints and exits.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::admin {

struct Options {
  // Connection: --db [URL]; "" means $DATABASE_URL, then the libpq environment.
  std::string db;
  // Keys file instead of Postgres for `key` commands.
  std::string keys_file;
  std::string pepper_configured;  // api_key_hash_salt from the config file

  std::string tenant;     // tenant slug (argument or --tenant)
  std::string plan;       // plan name (argument or --plan)
  std::string prefix;     // key prefix (key revoke)
  std::string label;      // key label
  bool json = false;      // listings as NDJSON
  bool dry_run = false;
  bool enable = false;    // tenant disable --undo
  int to_version = 0;     // migrate --to

  std::optional<std::int64_t> points_per_minute, max_series, retention_days;
  // Rollup retention per resolution (plan add/set).
  std::optional<std::int64_t> retention_1m_days, retention_1h_days, retention_1d_days;

  // usage
  std::string from, to;   // dates or RFC 3339
  // retention
  std::int64_t chunk_rows = 10000;
  std::string now;        // override "now" (RFC 3339), for tests and backfills
  // rollup rebuild: the range (dates or RFC 3339), widened to whole UTC days
  std::string since, until;
  // check: a log consumer behind the head that has not advanced (or reported) this long
  // is warned about
  std::string stall = "5m";
};

struct Output {
  std::string out;                 // stdout (data: keys, listings)
  std::vector<std::string> notes;  // stderr, one line each ("ep-admin: " added by main)
};

Status migrate(const Options& o, Output& out);
Status check(const Options& o, Output& out);
Status tenant_add(const Options& o, Output& out);
Status tenant_list(const Options& o, Output& out);
Status tenant_disable(const Options& o, Output& out);
Status plan_add(const Options& o, Output& out);
Status plan_set(const Options& o, Output& out);
Status plan_list(const Options& o, Output& out);
Status key_issue(const Options& o, Output& out);
Status key_revoke(const Options& o, Output& out);
Status key_list(const Options& o, Output& out);
Status usage(const Options& o, Output& out);
Status retention(const Options& o, Output& out);
Status rollup_rebuild(const Options& o, Output& out);

// --now, or the current time.
Result<TimeNs> now_of(const Options& o, std::string_view command);

// Aligned text table (header + rows), or NDJSON objects when json.
class Table {
 public:
  explicit Table(std::vector<std::string> columns) : cols_(std::move(columns)) {}
  // One row; std::nullopt cells print as "-" (text) or null (JSON). Numbers given as
  // strings are written as JSON numbers when numeric[i] is true.
  void add(std::vector<std::optional<std::string>> row) { rows_.push_back(std::move(row)); }
  void set_numeric(std::vector<bool> numeric) { numeric_ = std::move(numeric); }
  std::string render(bool json) const;
  size_t size() const { return rows_.size(); }

 private:
  std::vector<std::string> cols_;
  std::vector<bool> numeric_;
  std::vector<std::vector<std::optional<std::string>>> rows_;
};

}  // namespace ep::admin
