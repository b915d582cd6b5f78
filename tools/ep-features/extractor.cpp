#include "extractor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "ep/json.h"

namespace ep::features {
namespace {

constexpr TimeNs kDay = 86400 * kNsPerSec;
constexpr TimeNs kWeek = 7 * kDay;

// Floor division and alignment for possibly negative times (before 1970).
TimeNs floor_div(TimeNs a, TimeNs b) {
  TimeNs q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
TimeNs align_down(TimeNs t, TimeNs step) { return floor_div(t, step) * step; }

std::string make_prefix(const SeriesId& id) {
  JsonWriter w;
  w.start_object();
  w.kv("kind", "window");
  w.kv("tenant", id.tenant);
  w.kv("device", id.device);
  w.kv("metric", id.metric);
  w.end_object();
  std::string s(w.view());
  s.pop_back();  // the closing brace; the window's fields follow
  return s;
}

void append_key_part(std::string& k, std::string_view part) {
  auto len = static_cast<std::uint32_t>(part.size());
  k.append(reinterpret_cast<const char*>(&len), sizeof len);
  k.append(part);
}

}  // namespace

// ---- IntervalEstimator

void IntervalEstimator::observe(TimeNs gap) {
  if (gap <= 0) return;
  gaps_[next_] = gap;
  next_ = (next_ + 1) % kGaps;
  if (count_ < kGaps) ++count_;
  ++since_update_;
}

TimeNs IntervalEstimator::estimate() {
  // Re-select after every gap while filling, then every 4th: the median of 16 moves
  // slowly, and one-window-per-point streams call this per point.
  if (count_ == 0) return 0;
  if (estimate_ == 0 || (count_ < kGaps && since_update_ > 0) || since_update_ >= 4) {
    TimeNs tmp[kGaps];
    std::copy(gaps_, gaps_ + count_, tmp);
    int mid = count_ / 2;
    std::nth_element(tmp, tmp + mid, tmp + count_);
    estimate_ = tmp[mid];
    since_update_ = 0;
  }
  return estimate_;
}

// ---- FlatTracker

void FlatTracker::observe(TimeNs ts, double v) {
  last_ts_ = ts;
  if (!seen_) {
    seen_ = true;
    last_ = v;
    run_ = 1;
    return;
  }
  const double d = std::fabs(v - last_);
  last_ = v;
  if (!std::isfinite(d)) return;
  if (d > 0 && (q_ == 0 || d < q_)) q_ = d;
  // Two steps of the resolution (a sensor toggling its last digit around a value),
  // with room for the rounding of decimal values in binary.
  const bool flat = d <= 2 * q_ * (1 + 1e-6);
  constexpr double keep = 1 - 1 / kHistory;
  flat_ = flat_ * keep + (flat ? 1 : 0);
  steps_ = steps_ * keep + 1;
  run_ = flat ? run_ + 1 : 1;
}

double FlatTracker::flat_share() const { return std::clamp(flat_ / steps_, kMinShare, kMaxShare); }

double FlatTracker::surprise() const {
  if (run_ <= 1) return 0;
  return static_cast<double>(run_ - 1) * -std::log10(flat_share());
}

// ---- SeasonRing

void SeasonRing::add(TimeNs ts, double v) {
  std::int64_t idx = floor_div(ts, width_);
  const auto size = static_cast<std::int64_t>(b_.size());
  Bucket& b = b_[static_cast<size_t>(((idx % size) + size) % size)];
  if (b.idx == idx) {
    b.sum += v;
    ++b.n;
  } else if (b.idx < idx) {
    b = Bucket{idx, v, 1};
  }  // else: older than the ring holds; ignored
}

void SeasonRing::add_sum(TimeNs ts, double sum, std::uint32_t n) {
  if (n == 0) return;
  std::int64_t idx = floor_div(ts, width_);
  const auto size = static_cast<std::int64_t>(b_.size());
  Bucket& b = b_[static_cast<size_t>(((idx % size) + size) % size)];
  if (b.idx == idx) {
    b.sum += sum;
    b.n += n;
  } else if (b.idx < idx) {
    b = Bucket{idx, sum, n};
  }
}

bool SeasonRing::mean(TimeNs from, TimeNs to, double& out) const {
  if (to <= from) return false;
  std::int64_t i0 = floor_div(from, width_), i1 = floor_div(to - 1, width_);
  const auto size = static_cast<std::int64_t>(b_.size());
  if (i1 - i0 + 1 > size) return false;
  double sum = 0;
  std::uint64_t n = 0;
  for (std::int64_t i = i0; i <= i1; ++i) {
    const Bucket& b = b_[static_cast<size_t>(((i % size) + size) % size)];
    if (b.idx == i) {
      sum += b.sum;
      n += b.n;
    }
  }
  if (n == 0) return false;
  out = sum / static_cast<double>(n);
  return true;
}

bool SeasonRing::median_of_periods(TimeNs from, TimeNs to, TimeNs period, int days,
                                   double& out) const {
  std::array<double, 16> m;
  std::size_t k = 0;
  for (int d = 1; d <= days && k < m.size(); ++d)
    if (mean(from - d * period, to - d * period, m[k])) ++k;
  if (k == 0) return false;
  std::sort(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(k));
  out = k % 2 ? m[k / 2] : 0.5 * (m[k / 2 - 1] + m[k / 2]);
  return true;
}

// ---- Extractor

struct Extractor::Series {
  SeriesId id;
  SampleBuffer buf;      // time: samples of open windows; count: the last N released
  SampleBuffer pending;  // count windows with lateness: waiting for the watermark
  SortedValues sorted;   // count windows: values of buf, ascending
  bool started = false;
  TimeNs watermark = 0;  // largest ts accepted
  TimeNs first_ts = 0;   // smallest ts accepted (windows before it are not "missing")
  // time windows
  TimeNs next_start = 0;  // start of the earliest window not yet emitted
  bool emitted_any = false;
  std::int64_t empty_run = 0;
  // count windows
  bool released_any = false;
  TimeNs released_ts = 0;
  std::int64_t since_emit = 0;
  // contextual
  IntervalEstimator interval;
  FlatTracker flat;
  TimeNs fixed_interval = 0;  // from the series' metadata; 0 = infer
  bool prev_valid = false;
  TimeNs prev_start = 0;
  double prev_mean = 0;
  std::unique_ptr<SeasonRing> season;
};

Extractor::Extractor(const Options& opts, WindowSink& sink) : opts_(opts), sink_(sink) {}
Extractor::~Extractor() = default;

Extractor::SeriesHandle Extractor::series(std::string_view tenant, std::string_view device,
                                          std::string_view metric) {
  key_scratch_.clear();
  append_key_part(key_scratch_, tenant);
  append_key_part(key_scratch_, device);
  append_key_part(key_scratch_, metric);
  auto it = index_.find(std::string_view(key_scratch_));
  if (it != index_.end()) return it->second;
  auto s = std::make_unique<Series>();
  s->id = SeriesId{std::string(tenant), std::string(device), std::string(metric), {}};
  s->id.json_prefix = make_prefix(s->id);
  if (opts_.season != Season::kOff) {
    TimeNs period = opts_.season == Season::kWeek ? kWeek : kDay;
    TimeNs span = (opts_.count_mode() ? 0 : opts_.window.duration) + opts_.lateness;
    auto buckets = static_cast<size_t>((period + opts_.season_bucket - 1) / opts_.season_bucket +
                                       (span + opts_.season_bucket - 1) / opts_.season_bucket + 2);
    s->season = std::make_unique<SeasonRing>(opts_.season_bucket, buckets);
  }
  auto h = static_cast<SeriesHandle>(series_.size());
  series_.push_back(std::move(s));
  index_.emplace(key_scratch_, h);
  ++stats_.series;
  return h;
}

const SeriesId& Extractor::id(SeriesHandle h) const { return series_[h]->id; }

AddResult Extractor::add(SeriesHandle h, TimeNs ts, double value) {
  Series& s = *series_[h];
  const std::uint64_t late = stats_.late, overflow = stats_.overflow;
  if (opts_.count_mode()) add_count(s, ts, value);
  else add_time(s, ts, value);
  if (stats_.late != late) return AddResult::kLate;
  if (stats_.overflow != overflow) return AddResult::kOverflow;
  ++stats_.points;
  return AddResult::kAccepted;
}

TimeNs Extractor::earliest_start(TimeNs ts) const {
  // The smallest hop-aligned start s with s + window > ts.
  return align_down(ts - opts_.window.duration, opts_.hop.duration) + opts_.hop.duration;
}

TimeNs Extractor::interval_of(Series& s) {
  if (opts_.interval) return *opts_.interval;
  if (s.fixed_interval > 0) return s.fixed_interval;
  return s.interval.estimate();
}

void Extractor::set_interval(SeriesHandle h, TimeNs interval) {
  series_[h]->fixed_interval = interval;
}

void Extractor::prime_season(SeriesHandle h, TimeNs ts, double sum, std::uint32_t n) {
  if (auto& ring = series_[h]->season) ring->add_sum(ts, sum, n);
}

void Extractor::add_time(Series& s, TimeNs ts, double v) {
  if (!s.started) {
    s.started = true;
    s.next_start = align_down(ts, opts_.hop.duration);
    s.first_ts = s.watermark = ts;
  } else if (!s.emitted_any) {
    // Nothing emitted yet: every window is still open; an earlier point widens them.
    if (ts < s.next_start) s.next_start = align_down(ts, opts_.hop.duration);
  } else if (earliest_start(ts) < s.next_start) {
    // A window holding ts has been emitted (or skipped as empty): too late.
    ++stats_.late;
    return;
  }
  if (s.buf.size() >= static_cast<size_t>(opts_.max_buffer)) {
    ++stats_.overflow;
    return;
  }
  s.first_ts = std::min(s.first_ts, ts);
  s.buf.insert({ts, v});
  if (s.season) s.season->add(ts, v);
  if (ts > s.watermark) {
    s.interval.observe(ts - s.watermark);
    s.watermark = ts;
    close_time(s, false);
  }
}

void Extractor::close_time(Series& s, bool eof) {
  const TimeNs size = opts_.window.duration, hop = opts_.hop.duration;
  for (;;) {
    const TimeNs start = s.next_start, end = start + size;
    if (eof ? start > s.watermark : end > s.watermark - opts_.lateness) break;
    auto span = s.buf.range(start, end);
    if (span.empty() && s.empty_run >= opts_.max_empty) {
      // Skip the rest of the gap: jump to the first window holding the next sample.
      // One exists: the watermark's sample is at or after `end` and still buffered.
      size_t i = s.buf.lower_bound(end);
      if (i == s.buf.size()) break;  // defensive; cannot happen (see above)
      TimeNs jump = earliest_start(s.buf.begin()[i].ts);
      stats_.skipped_windows += static_cast<std::uint64_t>((jump - start) / hop);
      s.next_start = jump;
      s.empty_run = 0;
      s.prev_valid = false;
      continue;
    }
    emit_time(s, start, eof);
    s.empty_run = span.empty() ? s.empty_run + 1 : 0;
    s.next_start = start + hop;
    s.emitted_any = true;
    s.buf.drop_before(s.next_start);
  }
}

void Extractor::emit_time(Series& s, TimeNs start, bool eof) {
  const TimeNs end = start + opts_.window.duration;
  WindowOut& w = out_;
  w.series = &s.id;
  w.start = start;
  w.end = end;
  w.features.clear();
  auto span = s.buf.range(start, end);
  w.n = static_cast<std::int64_t>(span.size());
  compute_stats(span, {}, scratch_, w.features);
  // The flat run follows the samples once, in time order (sliding windows share them).
  for (const Sample& x : span)
    if (!s.flat.seen() || x.ts > s.flat.last_ts()) s.flat.observe(x.ts, x.value);
  if (w.n > 0) w.features.set(kFlatSurprise, s.flat.surprise());
  w.expected = -1;
  if (TimeNs iv = interval_of(s); iv > 0) {
    // Expected points over the part of the window the series covers: not before its
    // first point, and at the end of input not after its last point.
    TimeNs cs = std::max(start, s.first_ts);
    TimeNs ce = eof ? std::min(end, s.watermark + iv) : end;
    w.expected = std::max<std::int64_t>(
        1, std::llround(static_cast<double>(ce - cs) / static_cast<double>(iv)));
    w.features.set(kMissingRate,
                   std::clamp(1.0 - static_cast<double>(w.n) / static_cast<double>(w.expected), 0.0, 1.0));
  }
  if (s.prev_valid && s.prev_start != start - opts_.hop.duration) s.prev_valid = false;
  contextual(s, w, start, end);
  s.prev_start = start;
  if (start < opts_.complete_from || end > opts_.complete_to) {
    ++stats_.partial_windows;
    return;
  }
  if (w.n == 0) ++stats_.empty_windows;
  ++stats_.windows;
  sink_.on_window(w);
}

void Extractor::contextual(Series& s, WindowOut& w, TimeNs ref_from, TimeNs ref_to) {
  FeatureSet& f = w.features;
  if (!f.has(kMean)) {
    s.prev_valid = false;
    return;
  }
  const double mean = f.get(kMean);
  if (s.prev_valid) f.set(kDeltaMean, mean - s.prev_mean);
  s.prev_valid = true;
  s.prev_mean = mean;
  if (!s.season) return;
  double ref;
  // The usual value at this time of day: the median over the last 7 days held (the
  // ring holds 1 with --season day), so an anomaly does not come back a day later.
  if (s.season->median_of_periods(ref_from, ref_to, kDay, 7, ref)) f.set(kSeasonDay, mean - ref);
  if (opts_.season == Season::kWeek && s.season->mean(ref_from - kWeek, ref_to - kWeek, ref))
    f.set(kSeasonWeek, mean - ref);
}

void Extractor::add_count(Series& s, TimeNs ts, double v) {
  if (s.released_any && ts < s.released_ts) {
    ++stats_.late;
    return;
  }
  if (!s.started) {
    s.started = true;
    s.first_ts = s.watermark = ts;
  }
  if (ts > s.watermark) {
    s.interval.observe(ts - s.watermark);
    s.watermark = ts;
  }
  if (opts_.lateness == 0 && s.pending.empty()) {
    release(s, {ts, v});
    return;
  }
  if (s.pending.size() >= static_cast<size_t>(opts_.max_buffer)) {
    ++stats_.overflow;
    return;
  }
  s.pending.insert({ts, v});
  while (!s.pending.empty() && s.pending.front().ts <= s.watermark - opts_.lateness) {
    Sample x = s.pending.front();
    s.pending.pop_front();
    release(s, x);
  }
}

void Extractor::release(Series& s, Sample x) {
  const auto n = static_cast<size_t>(opts_.window.points);
  s.buf.push_back(x);
  s.sorted.insert(x.value);
  if (s.buf.size() > n) {
    s.sorted.erase(s.buf.front().value);
    s.buf.pop_front();
  }
  s.released_any = true;
  s.released_ts = x.ts;
  s.flat.observe(x.ts, x.value);
  if (s.season) s.season->add(x.ts, x.value);
  if (++s.since_emit >= opts_.hop.points) {
    emit_count(s, s.buf.size());
    s.since_emit = 0;
  }
}

void Extractor::emit_count(Series& s, size_t last_n) {
  WindowOut& w = out_;
  w.series = &s.id;
  w.features.clear();
  std::span<const Sample> all(s.buf.begin(), s.buf.size());
  auto span = all.subspan(all.size() - last_n);
  w.start = span.front().ts;
  w.end = span.back().ts;
  w.n = static_cast<std::int64_t>(span.size());
  std::span<const double> sorted;
  if (last_n == s.sorted.size()) sorted = s.sorted.values();
  compute_stats(span, sorted, scratch_, w.features);
  w.features.set(kFlatSurprise, s.flat.surprise());
  w.expected = -1;
  if (TimeNs iv = interval_of(s); iv > 0) {
    w.expected = 1 + std::llround(static_cast<double>(w.end - w.start) / static_cast<double>(iv));
    w.features.set(kMissingRate,
                   std::clamp(1.0 - static_cast<double>(w.n) / static_cast<double>(w.expected), 0.0, 1.0));
  }
  contextual(s, w, w.start, w.end + 1);
  ++stats_.windows;
  sink_.on_window(w);
}

void Extractor::finish_one(Series& s) {
  if (!s.started) return;
  if (!opts_.count_mode()) {
    close_time(s, true);
    return;
  }
  while (!s.pending.empty()) {
    Sample x = s.pending.front();
    s.pending.pop_front();
    release(s, x);
  }
  if (s.since_emit > 0) {
    // The last, partial window: its grid start is hop - since_emit points later
    // than a full window's would be.
    std::int64_t n = opts_.window.points - opts_.hop.points + s.since_emit;
    n = std::min<std::int64_t>(n, static_cast<std::int64_t>(s.buf.size()));
    if (n > 0) emit_count(s, static_cast<size_t>(n));
    s.since_emit = 0;
  }
}

void Extractor::finish() {
  for (auto& s : series_) finish_one(*s);
}

void Extractor::finish_series(SeriesHandle h) {
  Series& s = *series_[h];
  finish_one(s);
  s.buf = SampleBuffer();
  s.pending = SampleBuffer();
  s.sorted = SortedValues();
  s.season.reset();
}

std::size_t Extractor::buffered_samples() const {
  std::size_t n = 0;
  for (const auto& s : series_) n += s->buf.size() + s->pending.size();
  return n;
}

}  // namespace ep::features
