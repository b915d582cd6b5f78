#pragma once
// The window engine: per-series event-time windows (tumbling, sliding or by count),
// lateness, watermarks, interval inference and the contextual features (missing rate,
// change versus the previous window, deviation from a day and a week earlier).
//
// Memory per series: the samples of its open windows (time windows: at most the
// points in window + lateness + one hop; count windows: N points plus those waiting
// out the lateness), a 16-gap interval history and, with seasons on, a ring of
// ceil(period / season_bucket) + ceil((window + lateness) / season_bucket) + 2
// buckets of 24 bytes. Nothing grows with the length of the stream.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "feature_set.h"
#include "options.h"
#include "sample_buffer.h"

namespace ep::features {

struct SeriesId {
  std::string tenant, device, metric;
  // {"kind":"window","tenant":…,"device":…,"metric":…  — the record prefix, escaped once.
  std::string json_prefix;
};

struct WindowOut {
  const SeriesId* series = nullptr;
  TimeNs start = 0, end = 0;  // time windows: [start, end); count windows: first and last ts
  std::int64_t n = 0;
  std::int64_t expected = -1;  // -1: unknown (no interval yet); omitted from the record
  FeatureSet features;
};

class WindowSink {
 public:
  virtual ~WindowSink() = default;
  virtual void on_window(const WindowOut& w) = 0;
};

// Robust per-series sampling interval: the median of the last 16 forward gaps.
class IntervalEstimator {
 public:
  void observe(TimeNs gap);
  // 0 while no gap has been seen.
  TimeNs estimate();

 private:
  static constexpr int kGaps = 16;
  TimeNs gaps_[kGaps] = {};
  int count_ = 0, next_ = 0, since_update_ = 0;
  TimeNs estimate_ = 0;
};

// How unusual the series' current flat stretch is (feature flat_surprise,
// docs/ep-features.md): the run of consecutive samples whose steps stay within two
// steps of the series' resolution (the smallest non-zero step seen), against the share
// of such flat steps in the series' recent history (about the last kHistory samples).
class FlatTracker {
 public:
  static constexpr double kHistory = 2048;
  static constexpr double kMinShare = 0.05, kMaxShare = 0.999;
  void observe(TimeNs ts, double v);
  TimeNs last_ts() const { return last_ts_; }
  bool seen() const { return seen_; }
  // -log10 of the chance of the current run under the usual flat-step share:
  // (run - 1) * -log10(share); 0 for a run of one sample.
  double surprise() const;
  std::int64_t run() const { return run_; }
  double resolution() const { return q_; }
  double flat_share() const;

 private:
  bool seen_ = false;
  TimeNs last_ts_ = 0;
  double last_ = 0, q_ = 0;
  double flat_ = 1, steps_ = 2;  // decayed counts, prior share 1/2
  std::int64_t run_ = 0;
};

// Means of past data in fixed time buckets, for season_day / season_week.
class SeasonRing {
 public:
  SeasonRing(TimeNs bucket, size_t buckets) : width_(bucket), b_(buckets) {}
  void add(TimeNs ts, double v);
  // Adds an aggregate (sum of n values) to the bucket holding ts (priming from history).
  void add_sum(TimeNs ts, double sum, std::uint32_t n);
  // Mean of the points in the buckets overlapping [from, to); false when none.
  bool mean(TimeNs from, TimeNs to, double& out) const;
  // Median over d = 1..days of the mean over [from - d*period, to - d*period), of the
  // days the ring still holds with points; false when none. One unusual day (an outage,
  // a level shift that has since ended) does not move it once three days are held.
  bool median_of_periods(TimeNs from, TimeNs to, TimeNs period, int days, double& out) const;
  size_t bytes() const { return b_.size() * sizeof(Bucket); }

 private:
  struct Bucket {
    std::int64_t idx = INT64_MIN;
    double sum = 0;
    std::uint32_t n = 0;
  };
  TimeNs width_;
  std::vector<Bucket> b_;
};

struct ExtractorStats {
  std::uint64_t points = 0;      // accepted
  std::uint64_t late = 0;        // arrived after a window they belong to was emitted
  std::uint64_t overflow = 0;    // dropped: series buffer full (--max-buffer)
  std::uint64_t windows = 0;     // emitted, including empty ones
  std::uint64_t empty_windows = 0;
  std::uint64_t skipped_windows = 0;  // empty windows beyond --max-empty, not emitted
  std::uint64_t partial_windows = 0;  // outside Options::complete_from/to, not emitted
  std::uint64_t series = 0;
};

enum class AddResult { kAccepted, kLate, kOverflow };

class Extractor {
 public:
  using SeriesHandle = std::uint32_t;

  Extractor(const Options& opts, WindowSink& sink);
  ~Extractor();
  Extractor(const Extractor&) = delete;
  Extractor& operator=(const Extractor&) = delete;

  // Finds or creates a series.
  SeriesHandle series(std::string_view tenant, std::string_view device, std::string_view metric);
  AddResult add(SeriesHandle h, TimeNs ts, double value);
  // End of input: emits every open window.
  void finish();
  // Emits the open windows of one series and frees its buffers (Postgres mode reads
  // series one after another, so memory holds one series' windows at a time).
  void finish_series(SeriesHandle h);
  // The series' expected interval (e.g. metrics.expected_interval); --interval wins.
  void set_interval(SeriesHandle h, TimeNs interval);
  // Feeds history before the first point into the season ring only: sum of n values
  // in the season bucket that holds ts. No-op with --season off.
  void prime_season(SeriesHandle h, TimeNs ts, double sum, std::uint32_t n);

  const ExtractorStats& stats() const { return stats_; }
  // Samples held in all series right now (memory check in tests).
  std::size_t buffered_samples() const;
  std::size_t series_count() const { return series_.size(); }
  const SeriesId& id(SeriesHandle h) const;

 private:
  struct Series;
  void finish_one(Series& s);
  void add_time(Series& s, TimeNs ts, double v);
  void close_time(Series& s, bool eof);
  void emit_time(Series& s, TimeNs start, bool eof);
  void add_count(Series& s, TimeNs ts, double v);
  void release(Series& s, Sample x);
  void emit_count(Series& s, size_t last_n);
  void contextual(Series& s, WindowOut& w, TimeNs ref_from, TimeNs ref_to);
  TimeNs interval_of(Series& s);
  TimeNs earliest_start(TimeNs ts) const;

  Options opts_;
  WindowSink& sink_;
  std::vector<std::unique_ptr<Series>> series_;
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, SeriesHandle, KeyHash, std::equal_to<>> index_;
  std::string key_scratch_;
  std::vector<double> scratch_;
  WindowOut out_;
  ExtractorStats stats_;
};

}  // namespace ep::features
