#pragma once
// Helpers for ep-features tests: a collecting window sink and point builders.
#include <string>
#include <vector>

#include "extractor.h"

namespace ep::features::test {

constexpr TimeNs kS = kNsPerSec;
// 2026-01-05T00:00:00Z: a day boundary, so hop-aligned windows start at round times.
constexpr TimeNs kT0 = 1767571200LL * kNsPerSec;

struct Got {
  std::string series;  // tenant/device/metric
  TimeNs start = 0, end = 0;
  std::int64_t n = 0, expected = -1;
  FeatureSet f;
  bool has(Feature x) const { return f.has(x); }
  double operator[](Feature x) const { return f.get(x); }
};

class Collect final : public WindowSink {
 public:
  void on_window(const WindowOut& w) override {
    got.push_back({w.series->tenant + "/" + w.series->device + "/" + w.series->metric, w.start,
                   w.end, w.n, w.expected, w.features});
  }
  std::vector<Got> got;
};

// Options with seasons off unless a test turns them on.
inline Options time_opts(TimeNs window, TimeNs hop = 0) {
  Options o;
  o.window = {false, window, 0};
  if (hop) o.hop = {false, hop, 0};
  o.season = Season::kOff;
  (void)o.finalize();
  return o;
}
inline Options count_opts(std::int64_t n, std::int64_t hop) {
  Options o;
  o.window = {true, 0, n};
  o.hop = {true, 0, hop};
  o.season = Season::kOff;
  (void)o.finalize();
  return o;
}

}  // namespace ep::features::test
