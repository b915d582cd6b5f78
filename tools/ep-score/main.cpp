// ep-score: window records -> score records (Isolation Forest per series, robust fallback).
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ep/cli.h"
#include "ep/log.h"
#include "ep/model.h"
#include "ep/ndjson.h"
#include "ep/pg.h"
#include "ep/signals.h"
#include "pg_io.h"
#include "score.h"

int main(int argc, char** argv) {
  ep::Cli cli("ep-score", "Score window records for anomalies with each series' model.",
              "Reads: window records (NDJSON) from FILE... or stdin.\n"
              "Writes: score records (NDJSON) on stdout: score in [0,1], anomaly, label, "
              "explanation.",
              "ep-features --window 300s points.ndjson | ep-score --models /var/lib/edgepulse/models | ep-alert --rules rules.toml");
  ep::score::Options opt;
  std::string models, db;
  bool since_last = false;
  std::size_t max_line = ep::kDefaultMaxLineBytes;
  auto& app = cli.app();
  app.add_option("--models", models,
                 "Model store directory (none: every series uses the fallback). With --db the "
                 "models table is read instead, unless --models is given on the command line")
      ->envname("MODEL_ARTEFACT_STORE")
      ->type_name("DIR");
  std::string tenant;
  bool use_db = false;
  app.add_option("--db", db,
                 "Also store scores in Postgres table anomaly_scores (URL; empty: $DATABASE_URL, "
                 "then libpq's PG* environment)")
      ->expected(0, 1)
      ->type_name("[URL]");
  app.add_flag("--since-last", since_last,
               "With --db --tenant: score the features rows written since the last run (cursor)");
  app.add_option("--tenant", tenant, "Tenant slug (with --since-last)")->type_name("SLUG");
  app.add_option("--threshold", opt.threshold, "Score at or above which a window is anomalous")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fallback-history", opt.fallback_history,
                 "Windows per series the no-model fallback keeps")
      ->check(CLI::Range(2, 100000));
  app.add_option("--fallback-min", opt.fallback_min,
                 "Windows before the fallback scores (status warming throughout)")
      ->check(CLI::Range(2, 100000));
  app.add_option("--fallback-z", opt.fallback_z, "Robust |z| at which the fallback score is 0.5")
      ->check(CLI::Range(0.5, 1000.0));
  app.add_option("--z-guard", opt.z_guard,
                 "Robust |z| of any model feature that scores 0.5 on its own (0 = forest only)")
      ->check(CLI::Range(0.0, 1000.0));
  app.add_option("--adapt-after", opt.adapt_after,
                 "K: anomalous windows in a row after which the level becomes the new normal")
      ->check(CLI::Range(1, 100000));
  app.add_option("--adapt-alpha", opt.adapt_alpha,
                 "Baseline refresh rate on normal windows (EWMA; 0 = off)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--explain", opt.explain, "Features named in each explanation")
      ->check(CLI::Range(0, 64));
  app.add_option("--event-gap", opt.event_gap,
                 "Normal windows that end an event (the next anomaly is an \"onset\")")
      ->check(CLI::Range(1, 100000));
  app.add_flag("--dedupe", opt.dedupe,
               "Windows repeating an ongoing event score just below the threshold (\"repeat\":true); "
               "anomaly stays true");
  bool stream = false;
  app.add_flag("--stream", stream,
               "Stream mode preset: --likelihood 10 --novelty 0.05 --rest 100 --dedupe (each can "
               "still be set)");
  app.add_option("--likelihood", opt.likelihood,
                 "Stream mode: score = anomaly likelihood of the mean of the last N scores against "
                 "the series' score history (0 = off)")
      ->check(CLI::Range(0, 100000))
      ->type_name("N");
  app.add_option("--likelihood-history", opt.likelihood_history,
                 "Windows of score history the likelihood compares against")
      ->check(CLI::Range(10, 100000000));
  app.add_option("--likelihood-min", opt.likelihood_min,
                 "Windows per series before the likelihood scores (status warming until then)")
      ->check(CLI::Range(1, 100000000));
  app.add_option("--novelty", opt.novelty,
                 "Stream mode: a window whose max/min passes everything seen in the series by "
                 "more than FRACTION x the seen range scores 1 (default: off)")
      ->check(CLI::Range(0.0, 100.0))
      ->type_name("FRACTION");
  app.add_option("--novelty-after", opt.novelty_after, "Windows per series before --novelty applies")
      ->check(CLI::Range(1, 100000000));
  app.add_option("--rest", opt.rest,
                 "Windows after an event's onset during which further detections repeat it "
                 "(with --dedupe: scored just below the threshold); 0 = off")
      ->check(CLI::Range(0, 100000000))
      ->type_name("N");
  app.add_option("--state", opt.state,
                 "Keep each series' learnt state (adaptation, fallback history, events, stream "
                 "mode) in FILE between runs")
      ->envname("EP_SCORE_STATE")
      ->type_name("FILE");
  app.add_option("--state-windows", opt.state_windows,
                 "With --state: latest results kept per series, so a window that comes again "
                 "unchanged gets the same record (0 = none)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--model-cache", opt.model_cache, "Models kept in memory (LRU)")
      ->check(CLI::Range(1, 10000000));
  app.add_option("--max-line-bytes", max_line, "Longest accepted input line");
  cli.add_inputs();
  if (auto code = cli.parse(argc, argv)) return *code;
  use_db = app.count("--db") > 0;
  if (stream) {
    if (app.count("--likelihood") == 0) opt.likelihood = 10;
    if (app.count("--novelty") == 0) opt.novelty = 0.05;
    if (app.count("--rest") == 0) opt.rest = 100;
    opt.dedupe = true;
  }
  // With --db, only a --models given here (not $MODEL_ARTEFACT_STORE or the config
  // file) overrides the models table.
  bool models_flag = false;
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i)
    models_flag |= std::string_view(argv[i]) == "--models" ||
                   std::string_view(argv[i]).starts_with("--models=");
  if (since_last && !use_db) return cli.usage_error("--since-last needs --db");
  if (since_last && tenant.empty()) return cli.usage_error("--since-last needs --tenant");
  if (!since_last && !tenant.empty()) return cli.usage_error("--tenant is only used with --since-last");
  if (since_last && !cli.common().inputs.empty())
    return cli.usage_error("--since-last reads the features table, not FILE arguments");

  ep::ignore_sigpipe();
  std::unique_ptr<ep::model::Source> store;
  if (!models.empty() && (!use_db || models_flag))
    store = std::make_unique<ep::model::Store>(models);
  ep::score::DbOptions dbo{ep::pg::resolve_url(db), tenant, since_last, cli.common().progress()};
  std::optional<ep::pg::Conn> conn;
  std::unique_ptr<ep::score::DbScoreSink> sink;
  if (use_db) {
    auto c = ep::score::connect(dbo);
    if (!c) {
      ep::log::error(c.status().with_context("--db " + ep::pg::redact_url(dbo.url)));
      return c.status().exit_code();
    }
    conn.emplace(std::move(*c));
    sink = std::make_unique<ep::score::DbScoreSink>(*conn);
    if (!store) store = std::make_unique<ep::score::DbModelSource>(*conn);
    ep::log::info("models from " + store->describe());
  }
  ep::RecordWriter out;
  ep::score::Summary summary;
  ep::Status status;
  if (since_last) {
    status = ep::score::run_since_last(opt, store.get(), *conn, dbo, out, summary, *sink);
  } else {
    // SIGTERM/SIGINT: finish the current line, save --state, flush, exit 0. SIGHUP:
    // reload models (a long-running stream picks up a retrained model).
    ep::install_stop_signals(true);
    opt.stop = &ep::stop_requested();
    opt.reload = ep::take_hangup;
    ep::LineReader in(cli.common().inputs, max_line);
    const bool from_stdin = cli.common().inputs.empty() ||
                            (cli.common().inputs.size() == 1 && cli.common().inputs[0] == "-");
    in.set_before_read([&out, &sink, from_stdin] {
      out.flush();
      // A stream that paused (nothing to read now): store what was scored so far.
      if (sink && from_stdin && ep::score::stdin_idle()) sink->flush_idle();
    });
    status = ep::score::run(opt, store.get(), in, out, cli.common().strict,
                            cli.common().progress(), summary, sink.get());
    if (sink) {
      ep::Status f = sink->flush();
      if (status.is_ok() || status.code() == ep::Code::kData) {
        if (!f.is_ok()) status = f;
      }
    }
  }
  ep::Status closed = out.close();
  if (sink) {
    ep::log::info("anomaly_scores: " + std::to_string(sink->stored()) + " scores stored (" +
                  std::to_string(sink->inserted()) + " new), " + std::to_string(sink->unknown()) +
                  " windows of unknown series not stored");
    if (status.is_ok() && sink->unknown() > 0)
      status = ep::Status::data(std::to_string(sink->unknown()) +
                                " windows of series unknown to Postgres were not stored");
  }
  ep::log::info("read " + std::to_string(summary.lines) + " lines: " +
                std::to_string(summary.windows) + " windows scored (" +
                std::to_string(summary.fallback) + " by the fallback), " +
                std::to_string(summary.anomalies) + " anomalous, " +
                std::to_string(summary.rejected) + " rejected" +
                (summary.reloads ? ", models reloaded " + std::to_string(summary.reloads) + " times" : "") +
                (summary.interrupted ? "; stopped by a signal after line " + std::to_string(summary.lines) : ""));
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
