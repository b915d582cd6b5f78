#pragma once
// Event-level evaluation of score records against truth records (docs/architecture.md §3).
//
// Rules (documented in man ep-eval and docs/ep-eval.md):
//  - A window is flagged when its score record says "anomaly": true, or, with a
//    threshold, when score >= threshold.
//  - Intervals are half-open [start, end); a zero-length truth is the instant [t, t+1ns).
//    Two intervals overlap when each starts before the other ends.
//  - Flagged windows of one series whose intervals overlap or touch (gap <= merge_gap)
//    merge into one detection event, labelled with its highest-scoring window's label.
//  - A truth is caught when a flagged window of the same series overlaps it. Its delay
//    is (end of the earliest-ending such window) - truth start; its label is correct
//    when that window's label equals the truth type.
//  - An event is a true detection when it overlaps a truth of its series, otherwise a
//    false alarm. Precision = true events / events, recall = caught truths / truths.
//  - Series-days: for each series with score records, last window end - first window
//    start, summed, in days.
// Per label: truths of that type (recall, delay, label accuracy) and events carrying
// that label (precision, false alarms per series-day).
// Memory: truths + flagged windows + one span per series; unflagged windows are counted,
// not kept.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ep/records.h"
#include "ep/time.h"

namespace ep::eval {

struct EventOptions {
  std::optional<double> threshold;  // flag by score >= threshold instead of "anomaly"
  TimeNs merge_gap = 0;             // flagged windows this close merge into one event
};

// NaN means "undefined" (no truths, no events, no series-days).
struct LabelStats {
  std::string label;  // "" for the overall row
  std::int64_t truths = 0, caught = 0, label_correct = 0;
  std::int64_t events = 0, true_events = 0, false_events = 0;
  std::vector<double> delays_s;  // per caught truth, seconds
  double precision = 0, recall = 0, f1 = 0;
  double delay_mean_s = 0, delay_median_s = 0;
  double false_per_series_day = 0, label_accuracy = 0;
};

struct EventReport {
  std::int64_t series = 0, score_records = 0, flagged_windows = 0;
  double series_days = 0;
  LabelStats overall;
  std::vector<LabelStats> labels;  // sorted by label name
};

class EventEvaluator {
 public:
  explicit EventEvaluator(EventOptions opts = {}) : opts_(opts) {}
  void add_truth(const Truth& t);
  void add_score(const Score& s);
  EventReport finish() const;

 private:
  struct Flag {
    TimeNs start, end;
    double score;
    std::string label;
  };
  struct Series {
    std::vector<Truth> truths;
    std::vector<Flag> flags;
    bool scored = false;
    TimeNs first = 0, last = 0;
  };
  EventOptions opts_;
  std::unordered_map<SeriesKey, Series, SeriesKeyHash> series_;
  std::vector<SeriesKey> order_;  // first-seen order, for deterministic output
  std::int64_t score_records_ = 0, flagged_ = 0;
  Series& at(const SeriesKey& k);
};

// Fills precision, recall, f1, delays, rates from the counts.
void finalize(LabelStats& s, double series_days);

}  // namespace ep::eval
