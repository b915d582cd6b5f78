#include "run.h"

#include "ep/log.h"
#include "events.h"
#include "nab_input.h"
#include "ep/record_input.h"
#include "report.h"

namespace ep::eval {

namespace {

void summarise(const char* what, const InputStats& s) {
  if (s.rejected == 0 && s.ignored == 0) return;
  log::warn(std::string(what) + ": " + std::to_string(s.records) + " records used, " +
            std::to_string(s.rejected) + " lines rejected, " + std::to_string(s.ignored) +
            " records of other kinds ignored");
}

Result<Outcome> run_events(const Options& o) {
  auto gap = parse_duration(o.merge_gap);
  if (!gap || *gap < 0) return Status::usage("--merge-gap: not a duration: " + o.merge_gap);
  EventEvaluator ev(EventOptions{o.threshold, *gap});
  Outcome out;

  InputStats truth_stats;
  Truth t;
  EP_RETURN_IF_ERROR(read_records({o.truth_path}, o.strict, truth_stats,
                                  [&](const rapidjson::Value& obj, Kind kind) -> Status {
                                    if (kind != Kind::kTruth)
                                      return Status::data("kind: expected \"truth\"");
                                    EP_RETURN_IF_ERROR(parse_record(obj, t));
                                    ev.add_truth(t);
                                    return Status::ok();
                                  }));
  summarise(o.truth_path.c_str(), truth_stats);

  InputStats score_stats;
  Score s;
  EP_RETURN_IF_ERROR(read_records(o.inputs, o.strict, score_stats,
                                  [&](const rapidjson::Value& obj, Kind kind) -> Status {
                                    if (kind == Kind::kScore) {
                                      EP_RETURN_IF_ERROR(parse_record(obj, s));
                                      ev.add_score(s);
                                      return Status::ok();
                                    }
                                    if (kind == Kind::kTruth) {  // a combined stream
                                      EP_RETURN_IF_ERROR(parse_record(obj, t));
                                      ev.add_truth(t);
                                      return Status::ok();
                                    }
                                    if (kind == Kind::kUnknown)
                                      return Status::data("kind: expected \"score\"");
                                    return kIgnoredRecord;
                                  }));
  summarise("scores", score_stats);

  EventReport rep = ev.finish();
  out.report = o.json ? render_events_json(rep) : render_events_text(rep);
  out.rejected = truth_stats.rejected + score_stats.rejected;
  return out;
}

Result<Outcome> run_nab(const Options& o) {
  if (o.nab_windows.empty()) return Status::usage("--nab needs --nab-windows FILE");
  if (o.nab_results.empty() && o.nab_data.empty())
    return Status::usage("--nab with score records needs --nab-data DIR (the rows of each file)");
  if (!o.nab_results.empty() && !o.inputs.empty())
    return Status::usage("give either --nab-results DIR or score record inputs, not both");
  std::vector<nab::Profile> profiles;
  for (const auto& name : o.nab_profiles) {
    const nab::Profile* p = nab::find_profile(name);
    if (!p)
      return Status::usage("--nab-profile: unknown profile " + name +
                           " (standard, reward_low_FP_rate, reward_low_FN_rate)");
    profiles.push_back(*p);
  }
  if (profiles.empty()) profiles = nab::profiles();

  nab::CorpusSpec spec{o.nab_windows, o.nab_data, o.nab_files, o.nab_results, o.inputs,
                       o.strict};
  auto load = nab::load_corpus(spec);
  if (!load) return load.status();
  summarise("scores", load->input);
  if (load->foreign_records > 0)
    log::warn(std::to_string(load->foreign_records) +
              " score records name no file of the corpus (device = category, metric = file)");
  if (load->unmatched_records > 0)
    log::warn(std::to_string(load->unmatched_records) +
              " score records match no row timestamp of their file");
  if (load->rows_without_score > 0)
    log::info(std::to_string(load->rows_without_score) + " rows without a score record scored 0");

  NabSummary sum;
  sum.files = load->files.size();
  for (const auto& f : load->files) {
    sum.windows += f.windows.size();
    sum.rows += f.ts.size();
  }
  sum.fixed_threshold = o.nab_threshold.has_value();
  for (const auto& p : profiles) {
    auto r = nab::score_corpus(load->files, p, o.nab_threshold);
    if (!r) return r.status();
    sum.profiles.push_back(std::move(*r));
  }
  Outcome out;
  out.report = o.json ? render_nab_json(sum, o.per_file) : render_nab_text(sum, o.per_file);
  out.rejected = load->input.rejected;
  return out;
}

}  // namespace

Result<Outcome> run(const Options& o) {
  if (o.nab) return run_nab(o);
  if (o.truth_path.empty()) return Status::usage("--truth FILE is required (or use --nab)");
  return run_events(o);
}

}  // namespace ep::eval
