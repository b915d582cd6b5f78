#include "feature_set.h"

#include <algorithm>
#include <cmath>

namespace ep::features {

void FeatureSet::set(Feature f, double x) {
  if (!std::isfinite(x)) return;
  value[f] = x;
  present |= 1u << f;
}

namespace {

// Median of scratch (reordered), by selection.
double select_median(std::vector<double>& v) {
  size_t n = v.size(), mid = n / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  double hi = v[mid];
  if (n % 2) return hi;
  double lo = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lo + hi) / 2;
}

}  // namespace

void compute_stats(std::span<const Sample> s, std::span<const double> sorted,
                   std::vector<double>& scratch, FeatureSet& out) {
  const size_t n = s.size();
  if (n == 0) return;
  const TimeNs t0 = s[0].ts;
  double sum = 0, tsum = 0, mn = s[0].value, mx = s[0].value, max_abs_diff = 0;
  for (size_t i = 0; i < n; ++i) {
    double v = s[i].value;
    sum += v;
    tsum += static_cast<double>(s[i].ts - t0) * 1e-9;
    mn = std::min(mn, v);
    mx = std::max(mx, v);
    if (i) max_abs_diff = std::max(max_abs_diff, std::fabs(v - s[i - 1].value));
  }
  const double dn = static_cast<double>(n);
  const double mean = sum / dn, tmean = tsum / dn;
  // Second pass: centred sums (numerically stable for large offsets such as 229 V ± 0.1).
  // The mean of the first differences telescopes to (last - first) / (n - 1).
  const double dmean = n > 1 ? (s[n - 1].value - s[0].value) / static_cast<double>(n - 1) : 0;
  double ss = 0, sxy = 0, sxx = 0, dss = 0;
  for (size_t i = 0; i < n; ++i) {
    double dv = s[i].value - mean;
    double dt = static_cast<double>(s[i].ts - t0) * 1e-9 - tmean;
    ss += dv * dv;
    sxy += dt * dv;
    sxx += dt * dt;
    if (i) {
      double dd = (s[i].value - s[i - 1].value) - dmean;
      dss += dd * dd;
    }
  }
  out.set(kMean, mean);
  out.set(kStd, std::sqrt(ss / dn));
  out.set(kMin, mn);
  out.set(kMax, mx);
  out.set(kRange, mx - mn);
  if (sxx > 0) out.set(kSlope, sxy / sxx);
  if (n > 1) {
    out.set(kStuck, mx == mn ? 1.0 : 0.0);
    out.set(kDiffStd, std::sqrt(dss / static_cast<double>(n - 1)));
    out.set(kMaxAbsDiff, max_abs_diff);
  }
  out.set(kLast, s[n - 1].value);

  double median, mad;
  if (sorted.size() == n) {
    median = median_sorted(sorted);
    mad = mad_sorted(sorted, median);
  } else {
    scratch.resize(n);
    for (size_t i = 0; i < n; ++i) scratch[i] = s[i].value;
    median = select_median(scratch);
    for (double& x : scratch) x = std::fabs(x - median);
    mad = select_median(scratch);
  }
  out.set(kMedian, median);
  out.set(kMad, mad);
}

}  // namespace ep::features
