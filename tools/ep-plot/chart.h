#pragma once
// The ep-plot chart as an SVG string: the values as a line, flagged windows shaded and
// labelled over the whole plot, the anomaly score as a second band below, and truth
// records (if any) as marks on a strip between the two bands. Pure string
// generation; no dependencies.
#include <cstddef>
#include <string>
#include <vector>

#include "ep/time.h"

namespace ep::plot {

struct ValuePoint {
  TimeNs ts = 0;
  double value = 0;
};
struct ScorePoint {
  TimeNs start = 0, end = 0;
  double score = 0;
  bool anomaly = false;
  std::string label;
};
struct TruthSpan {
  TimeNs start = 0, end = 0;
  std::string type;
};
struct ChartData {
  std::string title;
  std::vector<ValuePoint> points;  // any order; sorted by the renderer
  std::vector<ScorePoint> scores;
  std::vector<TruthSpan> truths;   // labelled anomalies, drawn as a strip between the bands
};
struct ChartOptions {
  int width = 1200, height = 400;
  std::size_t max_points = 0;  // 0: 2 x plot width
};

// A shaded region: flagged windows that overlap or touch, merged, with their labels.
struct Region {
  TimeNs start = 0, end = 0;
  std::string label;  // of the highest-scoring window
  double score = 0;
};
std::vector<Region> flagged_regions(std::vector<ScorePoint> scores);

// Indices of the points drawn: LTTB over all points, plus the global minimum and
// maximum and the minimum and maximum inside every flagged region.
std::vector<std::size_t> select_points(const std::vector<ValuePoint>& sorted,
                                       const std::vector<Region>& regions, std::size_t target);

std::string render_svg(ChartData data, const ChartOptions& opts);

std::string xml_escape(std::string_view s);

}  // namespace ep::plot
