// ep-eval: scores versus labels -> precision, recall, F1, detection delay, NAB score.
#include "ep/cli.h"
#include "ep/log.h"
#include "ep/ndjson.h"
#include "run.h"

int main(int argc, char** argv) {
  ep::ignore_sigpipe();
  ep::Cli cli("ep-eval", "Evaluate anomaly scores against labelled truth.",
              "Reads score records (files or stdin) and truth records (--truth), or NAB\n"
              "per-row scores (--nab); writes a report (text table, or JSON with --json).",
              "ep-features < points.ndjson | ep-score --models m | ep-eval --truth truth.ndjson");
  ep::eval::Options o;
  std::string threshold, nab_threshold;
  auto& app = cli.app();
  app.add_option("--truth", o.truth_path, "Truth records (NDJSON), required without --nab")
      ->type_name("FILE");
  app.add_option("--threshold", o.threshold,
                 "Flag windows with score >= F instead of their \"anomaly\" field")
      ->type_name("F");
  app.add_option("--merge-gap", o.merge_gap,
                 "Flagged windows of a series closer than this merge into one event")
      ->type_name("DUR");
  app.add_flag("--json", o.json, "Write one JSON object instead of a table");
  const char* kNab = "NAB scoring";
  app.add_flag("--nab", o.nab, "Score with the Numenta Anomaly Benchmark rules")->group(kNab);
  app.add_option("--nab-windows", o.nab_windows, "NAB windows file (windows.json)")
      ->type_name("FILE")->group(kNab);
  app.add_option("--nab-data", o.nab_data, "NAB data dir: DIR/cat/name.csv or DIR/data/cat/name.csv")
      ->type_name("DIR")->group(kNab);
  app.add_option("--nab-files", o.nab_files, "Score only these files (one cat/name.csv a line)")
      ->type_name("FILE")->group(kNab);
  app.add_option("--nab-results", o.nab_results,
                 "NAB results dir (DIR/cat/<detector>_name.csv) instead of score records")
      ->type_name("DIR")->group(kNab);
  app.add_option("--nab-profile", o.nab_profiles,
                 "standard, reward_low_FP_rate or reward_low_FN_rate (repeatable; default all)")
      ->type_name("NAME")->group(kNab);
  app.add_option("--nab-threshold", o.nab_threshold, "Use this threshold instead of optimising it")
      ->type_name("F")->group(kNab);
  app.add_flag("--per-file", o.per_file, "Also report each file's score")->group(kNab);
  cli.add_inputs();
  if (auto rc = cli.parse(argc, argv)) return *rc;
  o.strict = cli.common().strict;
  o.inputs = cli.common().inputs;

  auto out = ep::eval::run(o);
  if (!out) {
    if (out.status().code() == ep::Code::kUsage) return cli.usage_error(out.status().message());
    ep::log::error(out.status());
    return out.status().exit_code();
  }
  ep::RecordWriter w(1);
  w.write(std::string_view(out->report).substr(0, out->report.size() - 1));
  if (ep::Status st = w.close(); !st.is_ok()) {
    ep::log::error(st);
    return st.exit_code();
  }
  if (out->rejected > 0) {
    ep::log::error(ep::Status::data(std::to_string(out->rejected) + " input lines rejected"));
    return 65;
  }
  return 0;
}
