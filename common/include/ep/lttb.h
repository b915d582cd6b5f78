#pragma once
// Largest-Triangle-Three-Buckets downsampling (Steinarsson 2013, "Downsampling Time
// Series for Visual Representation", ch. 4), shared by chart renderers: keeps the shape of a
// line with `target` points. The first and last points are always kept.
#include <cstddef>
#include <vector>

namespace ep {

// Indices (ascending) of the points to keep. x must be non-decreasing. With target >= n
// (or target < 3) every index is returned.
std::vector<std::size_t> lttb(const std::vector<double>& x, const std::vector<double>& y,
                              std::size_t target);

}  // namespace ep
