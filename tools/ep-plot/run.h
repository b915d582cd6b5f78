#pragma once
// ep-plot's core: read point/batch/score records, pick one series, render the SVG.
#include <cstdint>
#include <string>
#include <vector>

#include "chart.h"
#include "ep/status.h"

namespace ep::plot {

struct Options {
  std::vector<std::string> inputs;  // empty or "-": stdin
  std::string tenant, device, metric;  // series filter; empty matches any
  std::string title;                   // default: tenant/device/metric
  ChartOptions chart;
  bool strict = false;
};

struct Outcome {
  std::string svg;
  std::string series;             // the series drawn
  std::int64_t rejected = 0;      // input lines reported and skipped
  std::int64_t other_series = 0;  // records of series not drawn
};

Result<Outcome> run(const Options& opts);

}  // namespace ep::plot
