#pragma once
// Per-series stream post-processing for ep-score (see docs/ep-score.md, "Stream mode"):
//
//  * Likelihood: turns a stream of raw anomaly scores into how unusual the recent scores
//    are for this series — the "anomaly likelihood" of Ahmad, Lavin, Purdy and Agha,
//    "Unsupervised real-time anomaly detection for streaming data" (Neurocomputing 2017).
//    The mean of the last `short_window` raw scores is compared with the distribution of
//    that mean over the series' history (a running mean and variance: cumulative for
//    the first `history` windows, then exponentially weighted with alpha = 1/history, so
//    memory is constant). The Gaussian tail probability p of the short mean is mapped to
//    [0, 1] on a log scale: score = log(1e-10 + p) / log(1e-10), which is 0.5 at
//    p = 1e-5. A series that is always noisy therefore stops alarming on its noise, and a
//    quiet series alarms on a small change.
//  * RangeNovelty: a window whose max (min) lies beyond everything the series has shown
//    so far by more than `tolerance` x the seen range is novel. Isolation Forests rank
//    values outside their training range no higher than the range's edge; this catches
//    them at once.
#include <cstddef>
#include <string_view>
#include <vector>

#include "ep/json.h"
#include "ep/status.h"

namespace ep::score {

class Likelihood {
 public:
  Likelihood(std::size_t short_window, std::size_t history, std::size_t min_history);
  // Adds one raw score; returns the likelihood score in [0, 1], or a negative value while
  // fewer than `min_history` scores were seen (warming).
  double push(double raw);
  std::size_t seen() const { return seen_; }
  // State for ep-score --state: written as a JSON object, read back exactly (a state
  // from a different --likelihood window is refused).
  void save(JsonWriter& w) const;
  Status load(const rapidjson::Value& v);

 private:
  std::size_t short_, history_, min_history_;
  std::vector<double> ring_;  // last short_ raw scores
  std::size_t head_ = 0;
  double sum_ = 0;
  double mean_ = 0, var_ = 0;  // of the short means seen before this one
  std::size_t seen_ = 0;
};

// A count in a --state file: a non-negative integer up to INT64_MAX (they are written
// back as int64); the error names json_path(path, key).
Result<std::size_t> get_count(const rapidjson::Value& v, const char* key, std::string_view path = {});

// log(1e-10 + p) / log(1e-10), clamped to [0, 1]: 0.5 at p = 1e-5, 1 as p -> 0.
double likelihood_score(double tail_probability);

class RangeNovelty {
 public:
  RangeNovelty(double tolerance, std::size_t after) : tol_(tolerance), after_(after) {}
  // +1 when `hi` is above the seen range by more than tolerance x range, -1 when `lo` is
  // below it likewise, 0 otherwise (always 0 for the first `after` windows). Then
  // extends the range by [lo, hi]. Non-finite values are ignored.
  int push(double lo, double hi);
  // The range before the last push (valid after a non-zero push).
  double previous_low() const { return prev_lo_; }
  double previous_high() const { return prev_hi_; }
  void save(JsonWriter& w) const;
  Status load(const rapidjson::Value& v);

 private:
  double tol_;
  std::size_t after_;
  std::size_t seen_ = 0;
  double lo_ = 0, hi_ = 0, prev_lo_ = 0, prev_hi_ = 0;
};

}  // namespace ep::score
