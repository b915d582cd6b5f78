// ep-sim's fleet model: determinism, anomaly labels and shapes, per-metric intervals,
// and payload lines that ep-ingest accepts.
#include <rapidjson/document.h>

#include <cmath>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "ep/json.h"
#include "ep/records.h"
#include "rng.h"
#include "sim.h"
#ifdef EP_HAVE_INGEST
#include "payload.h"
#endif

namespace ep::sim {
namespace {

constexpr TimeNs kDay = 86400 * kNsPerSec;

Options base() {
  Options o;
  o.devices = 4;
  o.metrics = "temp,humidity,voltage";
  o.duration = 3 * kDay;
  o.seed = 7;
  o.start = *parse_rfc3339("2026-01-01T00:00:00Z");
  return o;
}

struct Output {
  std::string payloads, truth;
  Stats stats;
};
Output render(const Options& o) {
  auto f = Fleet::make(o);
  EXPECT_TRUE(f) << f.status().message();
  Output out;
  f->generate([&](std::string_view l) {
    out.payloads.append(l);
    out.payloads.push_back('\n');
    return true;
  }, out.stats);
  for (const auto& a : f->anomalies()) out.truth += f->truth_line(a) + "\n";
  return out;
}

// (device, metric) -> ts -> value, from payload lines.
using SeriesMap = std::map<std::pair<std::string, std::string>, std::map<TimeNs, double>>;
SeriesMap parse_series(const std::string& payloads) {
  SeriesMap m;
  size_t start = 0;
  while (start < payloads.size()) {
    size_t nl = payloads.find('\n', start);
    rapidjson::Document d;
    EXPECT_TRUE(parse_json(std::string_view(payloads).substr(start, nl - start), d));
    std::string dev = d["device_external_id"].GetString();
    for (const auto& p : d["metrics"].GetArray())
      m[{dev, p["name"].GetString()}][*parse_rfc3339(p["ts"].GetString())] = p["value"].GetDouble();
    start = nl + 1;
  }
  return m;
}

TEST(Rng, KnownSequenceIsPortable) {
  // xoshiro256** seeded through splitmix64(0): fixed values, whatever the platform.
  Rng r(0);
  std::uint64_t a = r.next(), b = r.next();
  Rng r2(0);
  EXPECT_EQ(r2.next(), a);
  EXPECT_EQ(r2.next(), b);
  std::uint64_t s = 0;
  EXPECT_EQ(splitmix64(s), 0xE220A8397B1DCDAFull);  // published splitmix64 output for seed 0
  double sum = 0, sq = 0;
  for (int i = 0; i < 100000; ++i) {
    double x = r.normal();
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / 100000, 0, 0.02);
  EXPECT_NEAR(sq / 100000, 1, 0.02);
}

TEST(Rng, DetSinMatchesSin) {
  for (double x = -50; x < 50; x += 0.01) EXPECT_NEAR(det_sin(x), std::sin(x), 1e-9) << x;
}

TEST(Fleet, SameSeedIsByteIdenticalDifferentSeedDiffers) {
  Output a = render(base()), b = render(base());
  EXPECT_EQ(a.payloads, b.payloads);
  EXPECT_EQ(a.truth, b.truth);
  Options o = base();
  o.seed = 8;
  Output c = render(o);
  EXPECT_NE(a.payloads, c.payloads);
  EXPECT_NE(a.truth, c.truth);
}

TEST(Fleet, TruthCoversEveryLabelWithValidRecords) {
  Options o = base();
  auto f = Fleet::make(o);
  ASSERT_TRUE(f);
  std::set<std::string> labels;
  std::map<std::pair<int, int>, TimeNs> last_end;
  for (const auto& a : f->anomalies()) {
    rapidjson::Document d;
    ASSERT_TRUE(parse_json(f->truth_line(a), d));
    Truth t;
    ASSERT_TRUE(parse_record(d, t));
    EXPECT_EQ(kind_of(d), Kind::kTruth);
    EXPECT_EQ(t.tenant, "demo");
    EXPECT_LE(t.start, t.end);
    EXPECT_GE(t.start, o.start + kDay * 3 / 4) << "anomalies stay out of the warm-up";
    EXPECT_LT(t.end, o.start + o.duration);
    labels.insert(t.type);
    auto key = std::make_pair(a.device, a.metric);
    if (last_end.count(key)) {
      EXPECT_GT(a.start, last_end[key]) << "anomalies of a series never overlap";
    }
    last_end[key] = a.end;
  }
  EXPECT_EQ(labels, (std::set<std::string>{"spike", "drop", "drift", "stuck", "missingness"}));
  // About --anomaly-rate per series per day after the warm-up.
  EXPECT_GE(f->anomalies().size(), 4u * 3 * 2);
  EXPECT_LE(f->anomalies().size(), 4u * 3 * 4);
}

TEST(Fleet, AnomaliesShapeTheSamplesTheTruthNames) {
  Options o = base();
  Output with = render(o);
  Options clean = o;
  clean.anomaly_rate = 0;
  Output without = render(clean);
  EXPECT_EQ(without.truth, "");
  SeriesMap a = parse_series(with.payloads), b = parse_series(without.payloads);
  auto f = Fleet::make(o);
  std::map<std::pair<std::string, std::string>, std::vector<const Anomaly*>> by_series;
  for (const auto& an : f->anomalies())
    by_series[{f->device_name(an.device), f->metrics()[an.metric].name}].push_back(&an);
  std::map<const Anomaly*, double> stuck_at;  // the first value of each stuck stretch
  for (auto& [key, normal] : b) {
    auto& got = a[key];
    const auto& anoms = by_series[key];
    for (auto& [ts, v] : normal) {
      const Anomaly* in = nullptr;
      for (auto* an : anoms)
        if (ts >= an->start && ts <= an->end) in = an;
      if (in && in->label == Label::kStuck && !stuck_at.count(in)) stuck_at[in] = got[ts];
      if (!in) {
        // Outside every anomaly the data is exactly the clean run's.
        ASSERT_TRUE(got.count(ts)) << key.first << "/" << key.second << " " << format_rfc3339(ts);
        EXPECT_EQ(got[ts], v);
        continue;
      }
      switch (in->label) {
        case Label::kMissingness: EXPECT_FALSE(got.count(ts)) << "gap sample present"; break;
        case Label::kStuck: {
          // Flat: the first value repeated; jitter: one step of the metric's resolution
          // around the stuck value, so within two of the first (+0.5 for rounding).
          const double lsb = std::pow(10.0, -f->metrics()[in->metric].decimals);
          const double tol = in->shape == "flat" ? 0 : 2.5 * lsb;  // the first is jittered too
          EXPECT_LE(std::abs(got[ts] - stuck_at[in]), tol) << in->shape << " stuck value moves";
          break;
        }
        case Label::kSpike: EXPECT_GT(got[ts], v + 4 * std::abs(in->magnitude) / 10); break;
        case Label::kDrop: EXPECT_LT(got[ts], v - 4 * std::abs(in->magnitude) / 10); break;
        case Label::kDrift:
          if (in->shape == "level_shift") {
            EXPECT_NEAR(got[ts] - v, in->magnitude, 0.2);
          }
          break;
      }
    }
  }
}

TEST(Fleet, MetricsSampleAtTheirOwnIntervals) {
  Options o = base();
  o.metrics = "temp,pressure,rpm:15s";
  o.anomaly_rate = 0;
  o.duration = 3600 * kNsPerSec;
  auto s = parse_series(render(o).payloads);
  using K = std::pair<std::string, std::string>;
  EXPECT_EQ(s[K("dev-001", "temp")].size(), 60u);
  EXPECT_EQ(s[K("dev-001", "pressure")].size(), 12u);  // the pressure profile samples 5x slower
  EXPECT_EQ(s[K("dev-001", "rpm")].size(), 240u);
  auto& t = s[K("dev-002", "temp")];
  TimeNs prev = 0;
  for (auto& [ts, v] : t) {
    if (prev) {
      EXPECT_EQ(ts - prev, 60 * kNsPerSec);
    }
    prev = ts;
    EXPECT_GT(v, 5);
    EXPECT_LT(v, 40);
  }
}

TEST(Fleet, ShapeHasDailyCycleAndNoise) {
  Options o = base();
  o.devices = 1;
  o.metrics = "temp";
  o.anomaly_rate = 0;
  auto s = parse_series(render(o).payloads)[{"dev-001", "temp"}];
  // Afternoon is warmer than the small hours; consecutive samples differ (noise).
  double night = 0, day = 0;
  int nn = 0, nd = 0, changes = 0;
  double prev = -1;
  for (auto& [ts, v] : s) {
    int hour = static_cast<int>((ts / kNsPerSec / 3600) % 24);
    if (hour >= 2 && hour < 5) night += v, nn++;
    if (hour >= 13 && hour < 17) day += v, nd++;
    changes += v != prev;
    prev = v;
  }
  EXPECT_GT(day / nd, night / nn + 3);
  EXPECT_GT(changes, static_cast<int>(s.size()) * 9 / 10);
}

TEST(Fleet, BadOptionsAreUsageErrors) {
  Options o = base();
  o.metrics = "temp,,voltage";
  EXPECT_EQ(Fleet::make(o).status().code(), Code::kUsage);
  o.metrics = "temp,temp";
  EXPECT_EQ(Fleet::make(o).status().code(), Code::kUsage);
  o.metrics = "bad name";
  EXPECT_EQ(Fleet::make(o).status().code(), Code::kUsage);
  o = base();
  o.devices = 0;
  EXPECT_EQ(Fleet::make(o).status().code(), Code::kUsage);
  o = base();
  o.interval = 1500;  // not whole ms
  EXPECT_EQ(Fleet::make(o).status().code(), Code::kUsage);
  auto custom = parse_metrics("flux,a.b:c:30s", 60 * kNsPerSec);
  ASSERT_TRUE(custom);
  EXPECT_EQ((*custom)[1].name, "a.b:c");
  EXPECT_EQ((*custom)[1].interval, 30 * kNsPerSec);
  EXPECT_GT((*custom)[0].level, 0);
}

TEST(Fleet, PayloadLinesValidate) {
  Options o = base();
  o.metrics = "temp,humidity,voltage,current,power,pressure,cpu,rpm,custom.metric";
  Output out = render(o);
  size_t start = 0, lines = 0;
  while (start < out.payloads.size()) {
    size_t nl = out.payloads.find('\n', start);
    std::string_view line = std::string_view(out.payloads).substr(start, nl - start);
    start = nl + 1;
    ++lines;
    rapidjson::Document d;
    ASSERT_TRUE(parse_json(line, d));
    ASSERT_TRUE(valid_name(d["device_external_id"].GetString()));
    for (const auto& p : d["metrics"].GetArray()) {
      ASSERT_TRUE(valid_name(p["name"].GetString()));
      ASSERT_TRUE(parse_rfc3339(p["ts"].GetString()));
      ASSERT_TRUE(p["value"].IsNumber());
    }
#ifdef EP_HAVE_INGEST
    // ep-ingest's own validator (docs/architecture.md §4) accepts every line.
    ingest::Limits limits;
    limits.time_bounds = false;
    ingest::Payload payload;
    Status st = ingest::parse_payload(line, limits, now_ns(), payload);
    ASSERT_TRUE(st) << st.message() << "\n" << line;
#endif
  }
  EXPECT_EQ(lines, out.stats.payloads);
}

#ifdef EP_HAVE_INGEST
// Without --start, a week of data passes ep-ingest's default time bounds.
TEST(Fleet, DefaultStartFitsIngestTimeBounds) {
  const TimeNs now = *parse_rfc3339("2026-01-08T12:34:56.789Z");
  Options o = base();
  o.devices = 2;
  o.duration = 7 * kDay;
  o.start = default_start(now, o.duration);
  EXPECT_EQ(o.start % (60 * kNsPerSec), 0);
  auto f = Fleet::make(o);
  ASSERT_TRUE(f);
  ingest::Limits limits;  // time bounds on
  ingest::Payload payload;
  Stats stats;
  size_t bad = 0;
  f->generate([&](std::string_view line) {
    bad += !ingest::parse_payload(line, limits, now, payload);
    return true;
  }, stats);
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(stats.payloads, 0u);
}
#endif


// Stuck sensors look like real ones: stuck at a usual value of the series (inside the
// clean run's range of the day, not an extreme), exactly or with a one-step jitter that
// takes at most three adjacent values and changes often.
TEST(Fleet, StuckSensorsSitAtPlausibleValuesAndSomeJitter) {
  Options o = base();
  o.devices = 10;
  o.duration = 5 * kDay;
  o.anomaly_rate = 3;
  Output with = render(o);
  Options clean = o;
  clean.anomaly_rate = 0;
  SeriesMap a = parse_series(with.payloads), b = parse_series(render(clean).payloads);
  auto f = Fleet::make(o);
  std::set<std::string> shapes;
  int jittering = 0;
  for (const auto& an : f->anomalies()) {
    if (an.label != Label::kStuck) continue;
    shapes.insert(an.shape);
    const std::pair<std::string, std::string> key{f->device_name(an.device), f->metrics()[an.metric].name};
    const auto& got = a[key];
    const auto& normal = b[key];
    std::set<double> values;
    int changes = 0;
    double prev = std::nan("");
    for (auto it = got.lower_bound(an.start); it != got.end() && it->first <= an.end; ++it) {
      values.insert(it->second);
      if (std::isfinite(prev) && it->second != prev) ++changes;
      prev = it->second;
    }
    ASSERT_FALSE(values.empty());
    // Inside the range the clean series takes within a day around the stuck stretch.
    double lo = 1e300, hi = -1e300;
    for (auto it = normal.lower_bound(an.start - kDay / 2); it != normal.end() && it->first <= an.end + kDay / 2; ++it) {
      lo = std::min(lo, it->second);
      hi = std::max(hi, it->second);
    }
    EXPECT_GT(*values.begin(), lo) << key.first << "/" << key.second;
    EXPECT_LT(*values.rbegin(), hi) << key.first << "/" << key.second;
    if (an.shape == "flat") {
      EXPECT_EQ(values.size(), 1u);
    } else {
      ASSERT_EQ(an.shape, "jitter");
      EXPECT_LE(values.size(), 3u);
      if (an.count >= 10 && changes >= an.count / 3) ++jittering;
    }
  }
  EXPECT_EQ(shapes, (std::set<std::string>{"flat", "jitter"}));
  EXPECT_GT(jittering, 0);
}

// Gaps range from a few samples (inside one or two windows, starting anywhere in them)
// to hours; trends are slow (at least 4 h).
TEST(Fleet, GapsStartMidWindowAndTrendsAreSlow) {
  Options o = base();
  o.devices = 20;
  o.duration = 5 * kDay;
  o.anomaly_rate = 2;  // slots of 12 h: no anomaly is cut to fit (at most half a slot)
  auto f = Fleet::make(o);
  int short_gaps = 0, mid_window = 0, trends = 0;
  for (const auto& an : f->anomalies()) {
    const TimeNs iv = f->metrics()[an.metric].interval;
    if (an.label == Label::kMissingness) {
      EXPECT_GE(an.count, 3);
      if (an.end - an.start < 300 * kNsPerSec) ++short_gaps;
      if ((an.start - o.start) % (300 * kNsPerSec) >= iv) ++mid_window;
    }
    if (an.label == Label::kDrift && an.shape == "trend") {
      ++trends;
      EXPECT_GE(an.end - an.start + iv, 4 * 3600 * kNsPerSec - iv);
    }
  }
  EXPECT_GT(short_gaps, 0);
  EXPECT_GT(mid_window, 0);
  EXPECT_GT(trends, 0);
}

}  // namespace
}  // namespace ep::sim
