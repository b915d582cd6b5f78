// ep-train: window records -> Isolation Forest model artefacts, one per series.
#include <string>

#include "ep/cli.h"
#include "ep/log.h"
#include "ep/model.h"
#include "ep/ndjson.h"
#include "ep/time.h"
#include "ep/pg.h"
#include "pg_io.h"
#include "train.h"

int main(int argc, char** argv) {
  ep::Cli cli("ep-train", "Train Isolation Forest models per series from window records.",
              "Reads: window records (NDJSON) from FILE... or stdin.\n"
              "Writes: model artefacts to --models DIR; one \"model\" record per trained "
              "series on stdout.",
              "ep-features --window 300s points.ndjson | ep-train --models /var/lib/edgepulse/models");
  ep::train::Options opt;
  std::string models, db, from, to, group_by = "series", show;
  bool list = false;
  double threshold = 0;
  std::uint64_t seed = 1;
  std::size_t max_line = ep::kDefaultMaxLineBytes;
  auto& app = cli.app();
  app.add_option("--models", models, "Model store directory")
      ->envname("MODEL_ARTEFACT_STORE")
      ->type_name("DIR");
  std::string tenant, since;
  app.add_option("--db", db,
                 "Train from the features table of --tenant (URL; empty: $DATABASE_URL, then "
                 "libpq's PG* env), leaving out windows flagged anomalous; models also go to "
                 "the models table")
      ->expected(0, 1)
      ->type_name("[URL]");
  app.add_option("--tenant", tenant, "With --db: the tenant (slug)")->type_name("SLUG");
  app.add_option("--since", since, "With --db: train on windows of the last DURATION (e.g. 14d)")
      ->type_name("DURATION");
  app.add_option("--trees", opt.forest.trees, "Trees per forest")->check(CLI::Range(1, 10000));
  app.add_option("--sample", opt.forest.sample, "Sub-sample size psi per tree")
      ->check(CLI::Range(2, 65534));
  app.add_option("--seed", seed, "Base random seed (mixed with each series name)");
  app.add_option("--contamination", opt.contamination,
                 "Expected anomaly share of training windows; threshold = its quantile")
      ->check(CLI::Range(0.0001, 0.5));
  app.add_option("--threshold", threshold, "Fixed raw forest-score threshold instead")
      ->check(CLI::Range(0.01, 0.99));
  app.add_option("--from", from, "Train on windows starting at or after TS")->type_name("TS");
  app.add_option("--to", to, "Train on windows ending at or before TS")->type_name("TS");
  app.add_option("--group-by", group_by, "series: one model per series; metric: one per "
                 "tenant and metric across devices")
      ->check(CLI::IsMember({"series", "metric"}));
  app.add_option("--features", opt.features, "Features to use (default: all the windows carry)")
      ->delimiter(',')
      ->type_name("NAME,...");
  app.add_option("--max-windows", opt.max_windows,
                 "Most recent windows kept per series (bounds memory)")
      ->check(CLI::Range(2, 10000000));
  app.add_option("--min-windows", opt.min_windows, "Fewer windows: no model for the series")
      ->check(CLI::Range(2, 10000000));
  app.add_option("--threads", opt.threads, "Threads parsing input and training series")
      ->check(CLI::Range(1, 64));
  app.add_option("--max-line-bytes", max_line, "Longest accepted input line");
  app.add_flag("--list", list, "List stored models (one record per version) and exit");
  app.add_option("--show", show, "Print the artefact of SERIES (tenant/device/metric[@N])")
      ->type_name("SERIES");
  cli.add_inputs();
  if (auto code = cli.parse(argc, argv)) return *code;

  const bool use_db = app.count("--db") > 0;
  if (models.empty()) return cli.usage_error("--models DIR (or MODEL_ARTEFACT_STORE) is required");
  if (use_db && tenant.empty()) return cli.usage_error("--db needs --tenant");
  if (!use_db && (!tenant.empty() || !since.empty()))
    return cli.usage_error("--tenant and --since are only used with --db");
  if (use_db && !cli.common().inputs.empty())
    return cli.usage_error("--db reads the features table, not FILE arguments");
  if (!since.empty() && !from.empty()) return cli.usage_error("--since and --from exclude each other");
  opt.forest.seed = seed;
  opt.strict = cli.common().strict;
  opt.group_by = group_by == "metric" ? ep::train::GroupBy::kMetric : ep::train::GroupBy::kSeries;
  if (app.count("--threshold")) opt.threshold = threshold;
  ep::ParseTimeOptions topt{.assume_utc = true, .allow_date_only = true};
  if (!from.empty() && !(opt.from = ep::parse_rfc3339(from, topt)))
    return cli.usage_error("--from: not a timestamp: " + from);
  if (!to.empty() && !(opt.to = ep::parse_rfc3339(to, topt)))
    return cli.usage_error("--to: not a timestamp: " + to);
  if (!since.empty()) {
    auto d = ep::parse_duration(since);
    if (!d || *d <= 0) return cli.usage_error("--since: not a duration: " + since);
    opt.from = ep::SystemClock::instance().now() - *d;
  }

  ep::ignore_sigpipe();
  ep::model::Store store(models);
  ep::RecordWriter out;
  ep::Status status;
  ep::train::Summary summary;
  if (list) {
    status = ep::train::list_models(store, out);
  } else if (!show.empty()) {
    status = ep::train::show_model(store, show, out);
  } else if (use_db) {
    ep::train::DbOptions dbo{ep::pg::resolve_url(db), tenant, cli.common().progress()};
    std::int64_t excluded = 0;
    status = ep::train::run_db(opt, dbo, out, store, ep::SystemClock::instance(), summary,
                               excluded);
    ep::log::info("read " + std::to_string(summary.lines) + " features rows (" +
                  std::to_string(excluded) + " flagged anomalous left out): " +
                  std::to_string(summary.windows) + " windows used, " +
                  std::to_string(summary.rejected) + " rejected; " +
                  std::to_string(summary.trained) + " models written, " +
                  std::to_string(summary.too_few) + " series without enough windows, " +
                  std::to_string(summary.failed) + " failed");
  } else {
    ep::LineReader in(cli.common().inputs, max_line);
    in.set_before_read([&out] { out.flush(); });
    status = ep::train::run(opt, in, out, store, ep::SystemClock::instance(),
                            cli.common().progress(), summary);
    ep::log::info("read " + std::to_string(summary.lines) + " lines: " +
                  std::to_string(summary.windows) + " windows used, " +
                  std::to_string(summary.out_of_range) + " outside the training range, " +
                  std::to_string(summary.rejected) + " rejected; " +
                  std::to_string(summary.trained) + " models written, " +
                  std::to_string(summary.too_few) + " series without enough windows, " +
                  std::to_string(summary.failed) + " failed");
  }
  ep::Status closed = out.close();
  if (!status.is_ok()) {
    ep::log::error(status);
    return status.exit_code();
  }
  if (!closed.is_ok()) {
    ep::log::error(closed);
    return closed.exit_code();
  }
  return 0;
}
