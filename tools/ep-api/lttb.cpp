#include "lttb.h"

#include "ep/lttb.h"

#include <algorithm>

namespace ep::api {

std::vector<size_t> lttb(const std::vector<XY>& pts, size_t threshold) {
  // The shared implementation (common/lttb) works on x/y arrays; x relative to the first
  // point, in seconds, keeps the triangle areas well conditioned.
  std::vector<double> x(pts.size()), y(pts.size());
  for (size_t i = 0; i < pts.size(); ++i) {
    x[i] = static_cast<double>(pts[i].t - pts[0].t) / 1e9;
    y[i] = pts[i].v;
  }
  return ep::lttb(x, y, threshold);
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
