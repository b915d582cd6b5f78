#pragma once
// The features of one window (docs/architecture.md §7, docs/ep-features.md): a fixed set of slots
// with a presence mask, so a window costs no allocation and undefined features are
// simply absent (never NaN or infinity in the output).
#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "sample_buffer.h"

namespace ep::features {

// Output order. Names are a contract with ep-train / ep-score: never rename.
enum Feature : std::uint8_t {
  kMean,
  kStd,
  kMedian,
  kMad,
  kMin,
  kMax,
  kRange,
  kSlope,
  kMissingRate,
  kStuck,
  kFlatSurprise,
  kDiffStd,
  kMaxAbsDiff,
  kDeltaMean,
  kSeasonDay,
  kSeasonWeek,
  kLast,
  kFeatureCount
};
inline constexpr std::array<std::string_view, kFeatureCount> kFeatureNames = {
    "mean", "std",          "median",       "mad",        "min",        "max",
    "range", "slope",       "missing_rate", "stuck",      "flat_surprise", "diff_std",
    "max_abs_diff", "delta_mean", "season_day", "season_week", "last"};

struct FeatureSet {
  std::array<double, kFeatureCount> value{};
  std::uint32_t present = 0;

  // Sets a feature if x is finite; otherwise leaves it absent.
  void set(Feature f, double x);
  bool has(Feature f) const { return (present >> f) & 1u; }
  double get(Feature f) const { return value[f]; }
  void clear() { present = 0; }
};

// The window-local statistics of samples (ascending ts): mean, std, median, mad, min,
// max, range, slope, stuck, diff_std, max_abs_diff, last. `sorted` holds the same
// values ascending when the caller maintains them (count windows); when empty, median
// and MAD are found by selection in `scratch`.
void compute_stats(std::span<const Sample> samples, std::span<const double> sorted,
                   std::vector<double>& scratch, FeatureSet& out);

}  // namespace ep::features
