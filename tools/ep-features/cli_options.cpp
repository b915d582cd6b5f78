#include "cli_options.h"

namespace ep::features {

CliOptions::CliOptions()
    : cli_("ep-features", "Rolling-window features of time series.",
           "Reads point and batch records (NDJSON, files or stdin) or datapoints from Postgres "
           "(--db);\nwrites window records (NDJSON) to stdout, or the features table "
           "(--write-db).",
           "ep-sim --devices 3 --duration 1d | ep-ingest --stdin --tenant demo | ep-features "
           "--window 5m | ep-score") {
  CLI::App& app = cli_.app();
  const char* kWin = "Windows";
  app.add_option("--window", window_,
                 "Window length: a duration (300s, 5m) for time windows or a count (32pts)")
      ->envname("FEATURE_WINDOW_SEC")
      ->type_name("DUR|Npts")
      ->group(kWin);
  app.add_option("--hop", hop_, "Step between window starts (default: --window, i.e. tumbling)")
      ->type_name("DUR|Npts")
      ->group(kWin);
  app.add_option("--interval", interval_,
                 "Expected sampling interval (default: inferred per series, median of recent gaps)")
      ->type_name("DUR")
      ->group(kWin);
  app.add_option("--lateness", lateness_,
                 "Accept points up to this much older than the newest point of their series")
      ->type_name("DUR")
      ->group(kWin);
  app.add_option("--season", season_, "History kept for season_day/season_week: off, day, week")
      ->group(kWin);
  app.add_option("--season-bucket", season_bucket_,
                 "Granularity of the season history (memory: week/bucket x 24 bytes per series)")
      ->type_name("DUR")
      ->group(kWin);
  app.add_option("--max-empty", opts_.max_empty,
                 "Empty windows emitted per gap in a series before the rest is skipped")
      ->group(kWin);
  app.add_option("--max-buffer", opts_.max_buffer,
                 "Points held per series at most; further points are dropped and counted")
      ->group(kWin);
  app.add_option("--max-line-bytes", max_line_bytes_, "Longest input line; longer lines are rejected")
      ->group(kWin);

  const char* kDb = "Postgres";
  app.add_option("--db", db_.url,
                 "Read datapoints from Postgres (URL; empty: $DATABASE_URL, then libpq's PG* env)")
      ->expected(0, 1)
      ->type_name("[URL]")
      ->group(kDb);
  app.add_option("--tenant", db_.tenant, "Tenant slug (required with --db)")->group(kDb);
  app.add_option("--device", db_.device, "Only this device (external id)")->group(kDb);
  app.add_option("--metric", db_.metric, "Only this metric name")->group(kDb);
  app.add_option("--since", since_, "Points of the last DUR (e.g. 24h)")->type_name("DUR")->group(kDb);
  app.add_option("--from", from_, "Points at or after TS (RFC 3339)")->type_name("TS")->group(kDb);
  app.add_option("--to", to_, "Points before TS (default: now)")->type_name("TS")->group(kDb);
  app.add_flag("--write-db", db_.write_db,
               "Upsert windows into the features table instead of writing them to stdout")
      ->group(kDb);
  app.add_flag("--partial", partial_,
               "Also write the time windows the range cuts: the first, and the last (still "
               "filling); by default only whole windows, so a run from cron never writes a "
               "window it has seen only part of")
      ->group(kDb);
  cli_.add_inputs();
}

std::optional<int> CliOptions::parse(int argc, const char* const* argv) {
  if (auto code = cli_.parse(argc, argv)) return code;
  Status st = build();
  if (!st) return cli_.usage_error(st.message());
  return std::nullopt;
}

Status CliOptions::build() {
  auto w = parse_extent(window_);
  if (!w) return w.status().with_context("--window");
  opts_.window = *w;
  if (!hop_.empty()) {
    auto h = parse_extent(hop_);
    if (!h) return h.status().with_context("--hop");
    opts_.hop = *h;
  }
  auto duration = [](const std::string& s, const char* flag) -> Result<TimeNs> {
    auto d = parse_duration(s);
    if (!d) return Status::usage(std::string(flag) + ": '" + s + "': expected a duration like 300s");
    return *d;
  };
  if (!interval_.empty()) {
    auto d = duration(interval_, "--interval");
    if (!d) return d.status();
    opts_.interval = *d;
  }
  auto late = duration(lateness_, "--lateness");
  if (!late) return late.status();
  opts_.lateness = *late;
  auto season = parse_season(season_);
  if (!season) return season.status();
  opts_.season = *season;
  auto bucket = duration(season_bucket_, "--season-bucket");
  if (!bucket) return bucket.status();
  opts_.season_bucket = *bucket;
  EP_RETURN_IF_ERROR(opts_.finalize());
  if (max_line_bytes_ < 64) return Status::usage("--max-line-bytes: must be at least 64");

  CLI::App& app = cli_.app();
  db_given_ = app.count("--db") > 0;
  bool db_only = app.count("--tenant") || app.count("--device") || app.count("--metric") ||
                 app.count("--since") || app.count("--from") || app.count("--to") ||
                 app.count("--write-db") || app.count("--partial");
  if (!db_given_) {
    if (db_only)
      return Status::usage("--tenant/--device/--metric/--since/--from/--to/--write-db/--partial need --db");
    return Status::ok();
  }
  if (!cli_.common().inputs.empty()) return Status::usage("--db: input files are not read with --db");
  if (db_.tenant.empty()) return Status::usage("--db: --tenant is required");
  if (!since_.empty() == !from_.empty())
    return Status::usage("--db: give exactly one of --since and --from");
  if (!since_.empty() && !to_.empty()) return Status::usage("--to: goes with --from, not --since");
  TimeNs now = now_ns();
  if (!since_.empty()) {
    auto d = duration(since_, "--since");
    if (!d) return d.status();
    db_.from = now - *d;
    db_.to = now;
  } else {
    ParseTimeOptions po{true, true};
    auto f = parse_rfc3339(from_, po);
    if (!f) return Status::usage("--from: '" + from_ + "': expected an RFC 3339 timestamp");
    db_.from = *f;
    db_.to = now;
    if (!to_.empty()) {
      auto t = parse_rfc3339(to_, po);
      if (!t) return Status::usage("--to: '" + to_ + "': expected an RFC 3339 timestamp");
      db_.to = *t;
    }
  }
  if (db_.to <= db_.from) return Status::usage("--to: must be after --from");
  if (!partial_) {
    opts_.complete_from = db_.from;
    opts_.complete_to = db_.to;
  }
  db_.url = pg::resolve_url(db_.url);
  db_.progress = cli_.common().progress();
  return Status::ok();
}

}  // namespace ep::features
