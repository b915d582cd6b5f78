// compute_stats against hand-computed values and against an independent, naive
// computation (full sorts, textbook formulas in long double) on random windows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "feature_set.h"
#include "sample_buffer.h"

namespace ep::features {
namespace {

std::vector<Sample> seconds(std::initializer_list<double> values) {
  std::vector<Sample> s;
  TimeNs t = 0;
  for (double v : values) s.push_back({t, v}), t += kNsPerSec;
  return s;
}

TEST(FeatureSet, HandComputedWindow) {
  auto s = seconds({1, 2, 4, 4, 8});
  std::vector<double> scratch;
  FeatureSet f;
  compute_stats(s, {}, scratch, f);
  EXPECT_DOUBLE_EQ(f.get(kMean), 3.8);
  EXPECT_DOUBLE_EQ(f.get(kStd), 2.4);  // sqrt(28.8 / 5), population
  EXPECT_DOUBLE_EQ(f.get(kMedian), 4);
  EXPECT_DOUBLE_EQ(f.get(kMad), 2);  // |x-4| = 3 2 0 0 4 -> median 2
  EXPECT_DOUBLE_EQ(f.get(kMin), 1);
  EXPECT_DOUBLE_EQ(f.get(kMax), 8);
  EXPECT_DOUBLE_EQ(f.get(kRange), 7);
  EXPECT_DOUBLE_EQ(f.get(kSlope), 1.6);  // 16 / 10 per second
  EXPECT_DOUBLE_EQ(f.get(kDiffStd), std::sqrt(2.1875));  // diffs 1 2 0 4
  EXPECT_DOUBLE_EQ(f.get(kMaxAbsDiff), 4);
  EXPECT_DOUBLE_EQ(f.get(kLast), 8);
  EXPECT_EQ(f.get(kStuck), 0);
  EXPECT_FALSE(f.has(kMissingRate));  // contextual: set by the extractor
  EXPECT_FALSE(f.has(kDeltaMean));
}

TEST(FeatureSet, EvenCountMedianAndMadAverageTheMiddlePair) {
  auto s = seconds({10, 1, 3, 7});
  std::vector<double> scratch;
  FeatureSet f;
  compute_stats(s, {}, scratch, f);
  EXPECT_DOUBLE_EQ(f.get(kMedian), 5);  // (3 + 7) / 2
  EXPECT_DOUBLE_EQ(f.get(kMad), 3);     // |x-5| = 5 4 2 2 -> (2 + 4) / 2
}

TEST(FeatureSet, SinglePointHasNoSlopeDiffsOrStuck) {
  auto s = seconds({42});
  std::vector<double> scratch;
  FeatureSet f;
  compute_stats(s, {}, scratch, f);
  EXPECT_DOUBLE_EQ(f.get(kMean), 42);
  EXPECT_DOUBLE_EQ(f.get(kStd), 0);
  EXPECT_DOUBLE_EQ(f.get(kMad), 0);
  EXPECT_FALSE(f.has(kSlope));
  EXPECT_FALSE(f.has(kStuck));
  EXPECT_FALSE(f.has(kDiffStd));
  EXPECT_FALSE(f.has(kMaxAbsDiff));
}

TEST(FeatureSet, ConstantWindowIsStuck) {
  auto s = seconds({5, 5, 5, 5});
  std::vector<double> scratch;
  FeatureSet f;
  compute_stats(s, {}, scratch, f);
  EXPECT_EQ(f.get(kStuck), 1);
  EXPECT_DOUBLE_EQ(f.get(kStd), 0);
  EXPECT_DOUBLE_EQ(f.get(kDiffStd), 0);
  EXPECT_DOUBLE_EQ(f.get(kSlope), 0);
}

TEST(FeatureSet, SameTimestampsHaveNoSlope) {
  std::vector<Sample> s = {{0, 1}, {0, 2}, {0, 3}};
  std::vector<double> scratch;
  FeatureSet f;
  compute_stats(s, {}, scratch, f);
  EXPECT_FALSE(f.has(kSlope));
}

TEST(FeatureSet, OverflowingValuesLeaveFeaturesOutNotInfinite) {
  auto s = seconds({1.7e308, 1.7e308, -1.7e308});
  std::vector<double> scratch;
  FeatureSet f;
  compute_stats(s, {}, scratch, f);
  for (int i = 0; i < kFeatureCount; ++i)
    if (f.has(static_cast<Feature>(i))) {
      EXPECT_TRUE(std::isfinite(f.get(static_cast<Feature>(i))));
    }
  EXPECT_FALSE(f.has(kRange));  // 3.4e308 overflows
  EXPECT_TRUE(f.has(kMin));
}

// Independent reference: textbook formulas, long double, full sorts.
struct Reference {
  long double mean, std, median, mad, mn, mx, slope, diff_std, max_abs_diff;
};
Reference reference(const std::vector<Sample>& s) {
  const size_t n = s.size();
  Reference r{};
  long double sum = 0, sumsq_dummy = 0;
  for (auto& x : s) sum += x.value;
  r.mean = sum / n;
  long double var = 0;
  for (auto& x : s) var += (x.value - r.mean) * (x.value - r.mean);
  r.std = std::sqrt(var / n);
  (void)sumsq_dummy;
  std::vector<long double> v;
  for (auto& x : s) v.push_back(x.value);
  std::sort(v.begin(), v.end());
  auto med = [](std::vector<long double> a) {
    std::sort(a.begin(), a.end());
    size_t k = a.size();
    return k % 2 ? a[k / 2] : (a[k / 2 - 1] + a[k / 2]) / 2;
  };
  r.median = med(v);
  std::vector<long double> dev;
  for (auto x : v) dev.push_back(std::fabs(x - r.median));
  r.mad = med(dev);
  r.mn = v.front();
  r.mx = v.back();
  // Normal equations: slope = (n Σtv - Σt Σv) / (n Σt² - (Σt)²), t in seconds.
  long double st = 0, sv = 0, stt = 0, stv = 0;
  for (auto& x : s) {
    long double t = (x.ts - s[0].ts) / 1e9L;
    st += t, sv += x.value, stt += t * t, stv += t * x.value;
  }
  r.slope = (n * stv - st * sv) / (n * stt - st * st);
  std::vector<long double> d;
  for (size_t i = 1; i < n; ++i) d.push_back(s[i].value - s[i - 1].value);
  long double dm = 0;
  for (auto x : d) dm += x;
  dm /= d.size();
  long double dv = 0;
  r.max_abs_diff = 0;
  for (auto x : d) dv += (x - dm) * (x - dm), r.max_abs_diff = std::max(r.max_abs_diff, std::fabs(x));
  r.diff_std = std::sqrt(dv / d.size());
  return r;
}

TEST(FeatureSet, MatchesIndependentComputationOnRandomWindows) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 1);
  std::uniform_int_distribution<int> len(2, 200), gap(1, 5000);
  for (int trial = 0; trial < 300; ++trial) {
    int n = len(rng);
    std::vector<Sample> s;
    TimeNs t = 1767571200LL * kNsPerSec;
    double base = trial % 3 == 0 ? 229.5 : (trial % 3 == 1 ? 0 : -1e6);
    for (int i = 0; i < n; ++i) {
      t += gap(rng) * kNsPerMs;
      double v = base + noise(rng) * (trial % 5 + 1);
      if (trial % 7 == 0) v = std::round(v);  // ties
      s.push_back({t, v});
    }
    std::vector<double> scratch;
    FeatureSet f;
    compute_stats(s, {}, scratch, f);
    Reference r = reference(s);
    double tol = 1e-9 * (1 + std::fabs(base));
    SCOPED_TRACE("trial " + std::to_string(trial) + " n " + std::to_string(n));
    EXPECT_NEAR(f.get(kMean), r.mean, tol);
    EXPECT_NEAR(f.get(kStd), r.std, 1e-7);
    EXPECT_DOUBLE_EQ(f.get(kMedian), static_cast<double>(r.median));
    EXPECT_NEAR(f.get(kMad), r.mad, tol);
    EXPECT_DOUBLE_EQ(f.get(kMin), static_cast<double>(r.mn));
    EXPECT_DOUBLE_EQ(f.get(kMax), static_cast<double>(r.mx));
    EXPECT_NEAR(f.get(kSlope), r.slope, 1e-6 * (1 + std::fabs(static_cast<double>(r.slope))));
    EXPECT_NEAR(f.get(kDiffStd), r.diff_std, 1e-7);
    EXPECT_DOUBLE_EQ(f.get(kMaxAbsDiff), static_cast<double>(r.max_abs_diff));
    EXPECT_DOUBLE_EQ(f.get(kLast), s.back().value);

    // The sorted path (count windows) gives the same median and MAD.
    std::vector<double> sorted;
    for (auto& x : s) sorted.push_back(x.value);
    std::sort(sorted.begin(), sorted.end());
    FeatureSet g;
    compute_stats(s, sorted, scratch, g);
    EXPECT_DOUBLE_EQ(g.get(kMedian), f.get(kMedian));
    EXPECT_DOUBLE_EQ(g.get(kMad), f.get(kMad));
  }
}

TEST(SortedValues, InsertAndEraseKeepOrderWithDuplicates) {
  SortedValues v;
  for (double x : {3.0, 1.0, 2.0, 2.0, 5.0}) v.insert(x);
  v.erase(2.0);
  EXPECT_EQ(v.values(), (std::vector<double>{1, 2, 3, 5}));
  v.erase(5.0);
  v.insert(0.5);
  EXPECT_EQ(v.values(), (std::vector<double>{0.5, 1, 2, 3}));
}

TEST(SampleBuffer, InsertsOutOfOrderSamplesInPlaceAndDropsFromTheFront) {
  SampleBuffer b;
  for (TimeNs t : {1, 2, 5, 3, 4, 4}) b.insert({t, static_cast<double>(t)});
  std::vector<TimeNs> ts;
  for (auto& s : std::span<const Sample>(b.begin(), b.size())) ts.push_back(s.ts);
  EXPECT_EQ(ts, (std::vector<TimeNs>{1, 2, 3, 4, 4, 5}));
  auto r = b.range(3, 5);
  EXPECT_EQ(r.size(), 3u);
  b.drop_before(4);
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.front().ts, 4);
}

}  // namespace
}  // namespace ep::features
