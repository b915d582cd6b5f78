#include "ep/lttb.h"

#include <cmath>

namespace ep {

std::vector<std::size_t> lttb(const std::vector<double>& x, const std::vector<double>& y,
                              std::size_t target) {
  const std::size_t n = x.size();
  std::vector<std::size_t> out;
  if (target >= n || target < 3) {
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = i;
    return out;
  }
  out.reserve(target);
  // Buckets of the interior points; the first and last points are buckets of their own.
  const double every = static_cast<double>(n - 2) / static_cast<double>(target - 2);
  std::size_t a = 0;
  out.push_back(0);
  for (std::size_t b = 0; b < target - 2; ++b) {
    std::size_t lo = static_cast<std::size_t>(std::floor(b * every)) + 1;
    std::size_t hi = static_cast<std::size_t>(std::floor((b + 1) * every)) + 1;
    if (hi > n - 1) hi = n - 1;
    // Average of the next bucket (or the last point).
    std::size_t nlo = hi;
    std::size_t nhi = static_cast<std::size_t>(std::floor((b + 2) * every)) + 1;
    if (nhi > n) nhi = n;
    if (b == target - 3) nlo = n - 1, nhi = n;
    double ax = 0, ay = 0;
    for (std::size_t i = nlo; i < nhi; ++i) ax += x[i], ay += y[i];
    double cnt = static_cast<double>(nhi - nlo);
    ax /= cnt;
    ay /= cnt;
    double best = -1;
    std::size_t pick = lo;
    for (std::size_t i = lo; i < hi; ++i) {
      double area = std::fabs((x[a] - ax) * (y[i] - y[a]) - (x[a] - x[i]) * (ay - y[a]));
      if (area > best) {
        best = area;
        pick = i;
      }
    }
    out.push_back(pick);
    a = pick;
  }
  out.push_back(n - 1);
  return out;
}

}  // namespace ep
