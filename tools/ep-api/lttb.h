#pragma once
// Largest-Triangle-Three-Buckets downsampling (Steinarsson 2013, "Downsampling Time
// Series for Visual Representation", ch. 4): keeps the first and last point and, from
// each of `threshold - 2` equal buckets, the point forming the largest triangle with the
// previously kept point and the next bucket's average. Preserves the visual shape,
// spikes included, in O(n).
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace ep::api {

struct XY {
  std::int64_t t;  // ns
  double v;
};

// Indices into `pts` (sorted by t) of the kept points, ascending. threshold >= 3;
// when pts.size() <= threshold every index is returned.
std::vector<size_t> lttb(const std::vector<XY>& pts, size_t threshold);

// LTTB plus, for every [start, end) range in `keep`, the minimum and maximum point in
// it, so an anomalous window is never averaged away. Ascending, unique.
std::vector<size_t> downsample_keeping(
    const std::vector<XY>& pts, size_t threshold,
    const std::vector<std::pair<std::int64_t, std::int64_t>>& keep);

}  // namespace ep::api
