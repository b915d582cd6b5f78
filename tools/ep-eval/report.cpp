#include "report.h"

#include <cmath>
#include <cstdio>

#include "ep/json.h"

namespace ep::eval {

namespace {

std::string fmt(double v, int decimals) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string fmt_delay(double seconds) {
  if (std::isnan(seconds)) return "-";
  char buf[64];
  if (seconds < 120) std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  else if (seconds < 7200) std::snprintf(buf, sizeof buf, "%.1fm", seconds / 60);
  else std::snprintf(buf, sizeof buf, "%.1fh", seconds / 3600);
  return buf;
}

// Pads cells to column widths; the first column is left-aligned, the rest right-aligned.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], r[c].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t c = 0; c < r.size(); ++c) {
      std::string pad(width[c] - r[c].size(), ' ');
      if (c == 0) line += r[c] + pad;
      else line += "  " + pad + r[c];
    }
    out += line + "\n";
  }
  return out;
}

void num_or_null(JsonWriter& w, std::string_view key, double v) {
  w.key(key);
  if (std::isnan(v)) w.null();
  else w.num(v);
}

void write_stats(JsonWriter& w, const LabelStats& s) {
  w.start_object();
  if (!s.label.empty()) w.kv("label", s.label);
  w.kv("truths", s.truths);
  w.kv("caught", s.caught);
  num_or_null(w, "recall", s.recall);
  w.kv("events", s.events);
  w.kv("true_events", s.true_events);
  w.kv("false_events", s.false_events);
  num_or_null(w, "precision", s.precision);
  num_or_null(w, "f1", s.f1);
  num_or_null(w, "delay_mean_s", s.delay_mean_s);
  num_or_null(w, "delay_median_s", s.delay_median_s);
  num_or_null(w, "false_alarms_per_series_day", s.false_per_series_day);
  w.kv("label_correct", s.label_correct);
  num_or_null(w, "label_accuracy", s.label_accuracy);
  w.end_object();
}

}  // namespace

std::string render_events_text(const EventReport& r) {
  std::string out = "series " + std::to_string(r.series) + ", " + fmt(r.series_days, 2) +
                    " series-days, " + std::to_string(r.score_records) + " score records, " +
                    std::to_string(r.flagged_windows) + " flagged windows, " +
                    std::to_string(r.overall.events) + " detection events\n";
  std::vector<std::vector<std::string>> rows = {
      {"label", "truths", "caught", "recall", "events", "false", "precision", "f1",
       "delay_mean", "delay_median", "false/series-day", "label_acc"}};
  auto add = [&](const LabelStats& s, const std::string& name) {
    rows.push_back({name, std::to_string(s.truths), std::to_string(s.caught), fmt(s.recall, 3),
                    std::to_string(s.events), std::to_string(s.false_events),
                    fmt(s.precision, 3), fmt(s.f1, 3), fmt_delay(s.delay_mean_s),
                    fmt_delay(s.delay_median_s), fmt(s.false_per_series_day, 3),
                    fmt(s.label_accuracy, 3)});
  };
  for (const auto& s : r.labels) add(s, s.label);
  add(r.overall, "overall");
  return out + table(rows);
}

std::string render_events_json(const EventReport& r) {
  JsonWriter w;
  w.start_object();
  w.kv("kind", "eval");
  w.kv("series", r.series);
  w.kv("series_days", r.series_days);
  w.kv("score_records", r.score_records);
  w.kv("flagged_windows", r.flagged_windows);
  w.key("overall");
  write_stats(w, r.overall);
  w.key("labels");
  w.start_array();
  for (const auto& s : r.labels) write_stats(w, s);
  w.end_array();
  w.end_object();
  return w.take() + "\n";
}

std::string render_nab_text(const NabSummary& s, bool per_file) {
  std::string out = "NAB v1.1 scoring: " + std::to_string(s.files) + " files, " +
                    std::to_string(s.windows) + " windows, " + std::to_string(s.rows) +
                    " rows; threshold " +
                    (s.fixed_threshold ? "fixed" : "optimised per profile over all files") +
                    "\n";
  std::vector<std::vector<std::string>> rows = {{"profile", "threshold", "score", "null",
                                                 "perfect", "normalized", "windows_hit",
                                                 "tp_rows", "fp_rows", "fn_rows"}};
  for (const auto& p : s.profiles)
    rows.push_back({p.profile.name, fmt(p.threshold, 6), fmt(p.score, 3), fmt(p.null_score, 3),
                    fmt(p.perfect_score, 3), fmt(p.normalized, 1),
                    std::to_string(p.counts.windows_hit) + "/" + std::to_string(s.windows),
                    std::to_string(p.counts.tp),
                    std::to_string(p.counts.fp), std::to_string(p.counts.fn)});
  out += table(rows);
  if (per_file) {
    for (const auto& p : s.profiles) {
      out += "\n" + p.profile.name + " (threshold " + fmt(p.threshold, 6) + ")\n";
      std::vector<std::vector<std::string>> fr = {
          {"file", "windows_hit", "score", "tp_rows", "fp_rows", "fn_rows"}};
      for (const auto& f : p.files)
        fr.push_back({f.name,
                      std::to_string(f.counts.windows_hit) + "/" + std::to_string(f.windows),
                      fmt(f.score, 3),
                      std::to_string(f.counts.tp), std::to_string(f.counts.fp),
                      std::to_string(f.counts.fn)});
      out += table(fr);
    }
  }
  return out;
}

std::string render_nab_json(const NabSummary& s, bool per_file) {
  JsonWriter w;
  w.start_object();
  w.kv("kind", "nab");
  w.kv("files", static_cast<std::int64_t>(s.files));
  w.kv("windows", static_cast<std::int64_t>(s.windows));
  w.kv("rows", static_cast<std::int64_t>(s.rows));
  w.kv("threshold_fixed", s.fixed_threshold);
  w.key("profiles");
  w.start_array();
  for (const auto& p : s.profiles) {
    w.start_object();
    w.kv("profile", p.profile.name);
    w.kv("threshold", p.threshold);
    w.kv("score", p.score);
    w.kv("null", p.null_score);
    w.kv("perfect", p.perfect_score);
    num_or_null(w, "normalized", p.normalized);
    w.kv("windows_hit", p.counts.windows_hit);
    w.kv("tp_rows", p.counts.tp);
    w.kv("tn_rows", p.counts.tn);
    w.kv("fp_rows", p.counts.fp);
    w.kv("fn_rows", p.counts.fn);
    if (per_file) {
      w.key("per_file");
      w.start_array();
      for (const auto& f : p.files) {
        w.start_object();
        w.kv("file", f.name);
        w.kv("windows", static_cast<std::int64_t>(f.windows));
        w.kv("score", f.score);
        w.kv("windows_hit", f.counts.windows_hit);
        w.kv("tp_rows", f.counts.tp);
        w.kv("tn_rows", f.counts.tn);
        w.kv("fp_rows", f.counts.fp);
        w.kv("fn_rows", f.counts.fn);
        w.end_object();
      }
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.take() + "\n";
}

}  // namespace ep::eval
