#include "lttb.h"

#include <algorithm>
#include <cmath>

namespace ep::api {

std::vector<size_t> lttb(const std::vector<XY>& pts, size_t threshold) {
  std::vector<size_t> out;
  const size_t n = pts.size();
  if (threshold < 3 || n <= threshold) {
    out.resize(n);
    for (size_t i = 0; i < n; ++i) out[i] = i;
    return out;
  }
  out.reserve(threshold);
  // x relative to the first point, in seconds, keeps the areas well conditioned.
  const std::int64_t t0 = pts[0].t;
  auto x = [&](size_t i) { return static_cast<double>(pts[i].t - t0) / 1e9; };
  const double every = static_cast<double>(n - 2) / static_cast<double>(threshold - 2);
  size_t a = 0;
  out.push_back(0);
  for (size_t b = 0; b < threshold - 2; ++b) {
    size_t lo = static_cast<size_t>(std::floor(b * every)) + 1;
    size_t hi = std::min(static_cast<size_t>(std::floor((b + 1) * every)) + 1, n - 1);
    size_t nlo = hi, nhi = std::min(static_cast<size_t>(std::floor((b + 2) * every)) + 1, n);
    double ax = 0, ay = 0;
    for (size_t j = nlo; j < nhi; ++j) {
      ax += x(j);
      ay += pts[j].v;
    }
    size_t cnt = nhi > nlo ? nhi - nlo : 0;
    if (cnt) {
      ax /= static_cast<double>(cnt);
      ay /= static_cast<double>(cnt);
    } else {
      ax = x(n - 1);
      ay = pts[n - 1].v;
    }
    double px = x(a), py = pts[a].v, best = -1;
    size_t pick = lo;
    for (size_t j = lo; j < hi; ++j) {
      double area = std::fabs((px - ax) * (pts[j].v - py) - (px - x(j)) * (ay - py));
      if (area > best) {
        best = area;
        pick = j;
      }
    }
    out.push_back(pick);
    a = pick;
  }
  out.push_back(n - 1);
  return out;
}

std::vector<size_t> downsample_keeping(
    const std::vector<XY>& pts, size_t threshold,
    const std::vector<std::pair<std::int64_t, std::int64_t>>& keep) {
  std::vector<size_t> out = lttb(pts, threshold);
  if (out.size() == pts.size()) return out;
  for (const auto& [s, e] : keep) {
    auto first = std::lower_bound(pts.begin(), pts.end(), s,
                                  [](const XY& p, std::int64_t t) { return p.t < t; });
    auto last =
        std::lower_bound(first, pts.end(), e, [](const XY& p, std::int64_t t) { return p.t < t; });
    if (first == last) continue;
    auto [mn, mx] =
        std::minmax_element(first, last, [](const XY& a, const XY& b) { return a.v < b.v; });
    out.push_back(static_cast<size_t>(mn - pts.begin()));
    out.push_back(static_cast<size_t>(mx - pts.begin()));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace ep::api
