#pragma once
// Numenta Anomaly Benchmark scoring (github.com/numenta/NAB v1.1, nab/sweeper.py and
// nab/scorer.py), ported to reproduce its numbers:
//  - probation: the first min(floor(0.15 n), 0.15 * 5000) rows of a file are never scored;
//  - a row inside a window gets sweep weight S(-(right - i + 1) / width) * tp / S(-1),
//    a row outside every window S(|prevRight - i| / (prevWidth - 1)) * fp, or -fp when
//    no window precedes it; S(y) = 2 / (1 + e^(5y)) - 1, and -1 for y > 3;
//  - a window scores the best (earliest) detection's weight, or -fn without one;
//  - every row outside windows that is a detection adds its (negative) weight;
//  - the threshold sweep visits every distinct score from high to low (starting at 1.1:
//    no detections); the corpus threshold is the first one with the highest total;
//  - the reported score is the sum of per-file scores at that threshold;
//  - normalised = 100 (S - S_null) / (S_perfect - S_null), with S_null the score of the
//    detector that never fires (threshold-optimised like any other) and S_perfect =
//    tp * (number of windows), as NAB's runner computes it.
// Floating-point operations follow the Python order so totals match to the last digits.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::eval::nab {

struct Profile {
  std::string name;
  double tp = 1, fn = 1, fp = 0.11;
};
// standard (1, 1, 0.11), reward_low_FP_rate (1, 1, 0.22), reward_low_FN_rate (1, 2, 0.11).
const std::vector<Profile>& profiles();
const Profile* find_profile(std::string_view name);

inline constexpr double kProbationPercent = 0.15;

// One labelled file: row timestamps, the detector's score per row, anomaly windows.
struct File {
  std::string name;  // "realKnownCause/nyc_taxi.csv"
  std::vector<TimeNs> ts;
  std::vector<double> score;
  std::vector<std::pair<TimeNs, TimeNs>> windows;  // [start, end], inclusive
};

// Rows [first, last] (inclusive) a window covers.
struct Span {
  std::size_t first = 0, last = 0;
};

// min(floor(percent * rows), percent * 5000), as nab/sweeper.py.
std::size_t probation_rows(std::size_t rows, double percent = kProbationPercent);

// NAB's scaled sigmoid: 2 / (1 + e^(5y)) - 1, and -1 for y > 3.
double scaled_sigmoid(double y);

// Maps windows to row spans: first row at or after start, last row at or before end
// (NAB requires exact timestamps; for its files both rules agree). Windows must be
// sorted and disjoint; a window that covers no row is an error. Rows are in file order
// (not necessarily sorted: NAB files repeat an hour here and there).
Result<std::vector<Span>> locate_windows(const File& f);

// A scorable row: its score, its sweep weight and the window it sits in (-1: none).
struct Row {
  double score = 0;
  double weight = 0;
  int window = -1;  // global window id
};

// calcSweepScore: the scorable (non-probation) rows of one file, in row order.
// Window ids are window_base + index in spans.
std::vector<Row> sweep_rows(const File& f, const std::vector<Span>& spans, const Profile& p,
                            int window_base);

struct Counts {
  std::int64_t tp = 0, tn = 0, fp = 0, fn = 0;  // rows, as NAB counts them
  std::int64_t windows_hit = 0;                 // windows with at least one detection
};

struct ThresholdScore {
  double threshold = 0;
  double score = 0;
  Counts counts;
};

// calcScoreByThreshold: the score at every distinct threshold, from 1.1 (nothing
// detected) down to the lowest score. A row is a detection when score >= threshold.
std::vector<ThresholdScore> scores_by_threshold(const std::vector<Row>& rows,
                                                const Profile& p);

// The entry that applies to `threshold` (detections: score >= threshold).
ThresholdScore score_at(const std::vector<ThresholdScore>& sweep, double threshold);

struct FileResult {
  std::string name;
  double score = 0;
  Counts counts;
  int windows = 0;
};

struct ProfileResult {
  Profile profile;
  double threshold = 0;
  double score = 0;          // sum of per-file scores at the threshold
  double null_score = 0;     // the never-firing detector
  double perfect_score = 0;  // tp * windows
  double normalized = 0;     // 100 (score - null) / (perfect - null)
  Counts counts;
  std::vector<FileResult> files;
};

// Scores a corpus for one profile. Without `threshold`, optimises it over all files.
// Errors: a window that maps to no row, unsorted or overlapping windows.
Result<ProfileResult> score_corpus(const std::vector<File>& files, const Profile& p,
                                   std::optional<double> threshold = std::nullopt);

}  // namespace ep::eval::nab
