#pragma once
// ep-sim core: a seeded synthetic fleet. Every device × metric is a series with a level,
// a daily cycle, AR(1) noise and a slow trend, sampled at the metric's interval; each
// series gets injected anomalies (spike, drop, drift, stuck, missingness) whose intervals
// are written as truth records. The model is documented in docs/ep-sim.md.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::sim {

struct Options {
  int devices = 3;
  std::string metrics = "temp,humidity,voltage";  // NAME[:INTERVAL],...
  TimeNs duration = 86400 * kNsPerSec;
  TimeNs interval = 60 * kNsPerSec;  // base interval; profiles may sample slower
  std::uint64_t seed = 1;
  TimeNs start = 0;  // set by the caller (--start, or derived from now)
  std::string tenant = "demo";         // for truth records
  std::string device_prefix = "dev-";
  double anomaly_rate = 1.0;           // anomalies per series per day
  double warmup_fraction = 0.25;       // anomaly-free head of the run (at most --warmup)
  TimeNs max_warmup = 86400 * kNsPerSec;
};

// What one metric looks like (built-in profiles by name; see docs/ep-sim.md).
struct MetricSpec {
  std::string name, unit;
  TimeNs interval = 0;
  double level = 0, amplitude = 0, noise = 0, trend_per_day = 0;
  double lo = -1e300, hi = 1e300;  // physical range the normal signal stays in
  int decimals = 2;
};

// The start without --start: `duration` before now, rounded up to the minute, so every
// sample lies within ep-ingest's default window [now - 7d, now + 5m] for durations up
// to 7 days.
TimeNs default_start(TimeNs now, TimeNs duration);

// Parses "temp,voltage:10s,rpm" into specs (profiles, base interval, overrides).
Result<std::vector<MetricSpec>> parse_metrics(const std::string& list, TimeNs base_interval);

enum class Label { kSpike, kDrop, kDrift, kStuck, kMissingness };
inline constexpr int kLabelCount = 5;
const char* label_name(Label l);

struct Anomaly {
  int device = 0, metric = 0;
  std::int64_t first = 0, count = 0;  // sample indices [first, first + count)
  Label label = Label::kSpike;
  std::string shape;   // "spike", "dip", "level_shift", "trend", "flat", "gap"
  double magnitude = 0;  // in units of the metric (signed); 0 for stuck / gap
  TimeNs start = 0, end = 0;  // timestamps of the first and last affected sample
};

struct Stats {
  std::uint64_t payloads = 0, points = 0, dropped = 0;  // dropped: samples in gaps
};

class Fleet {
 public:
  static Result<Fleet> make(const Options& o);

  const std::vector<MetricSpec>& metrics() const { return metrics_; }
  // All anomalies, ordered by (start, device, metric).
  const std::vector<Anomaly>& anomalies() const { return anomalies_; }
  std::string device_name(int d) const;
  std::string truth_line(const Anomaly& a) const;

  // Emits every payload line (docs/architecture.md §4) in time order: one per device and instant at
  // which some of its metrics report. Stops early when sink returns false.
  bool generate(const std::function<bool(std::string_view)>& sink, Stats& stats) const;

 private:
  struct Series {
    double level, amplitude, phase, trend_per_day, noise;
    std::uint64_t seed;
  };
  Fleet() = default;
  void plan_anomalies();

  Options o_;
  std::vector<MetricSpec> metrics_;
  std::vector<Series> series_;       // devices × metrics, device-major
  std::vector<TimeNs> offsets_;      // per device: fixed reporting offset
  std::vector<std::int64_t> samples_;  // per metric: samples in the run
  TimeNs tick_ = 0;                  // gcd of the metric intervals
  std::vector<Anomaly> anomalies_;
};

}  // namespace ep::sim
