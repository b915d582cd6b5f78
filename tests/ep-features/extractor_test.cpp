// The window engine on hand-computed inputs: tumbling, sliding and count windows,
// lateness, missing rate, empty windows, delta/season features, interleaved series,
// and memory that does not grow with the stream.
#include <gtest/gtest.h>

#include <cmath>

#include "extractor.h"
#include "test_util.h"

namespace ep::features {
namespace {

using test::Collect;
using test::count_opts;
using test::kS;
using test::kT0;
using test::time_opts;

// Feeds value f(i) at kT0 + i*step for i in [from, to).
template <typename F>
void feed(Extractor& x, Extractor::SeriesHandle h, int from, int to, TimeNs step, F f) {
  for (int i = from; i < to; ++i) x.add(h, kT0 + i * step, f(i));
}

TEST(Extractor, TumblingWindowsOfTenSeconds) {
  Collect c;
  Extractor x(time_opts(10 * kS), c);
  auto h = x.series("t", "d", "m");
  feed(x, h, 0, 30, kS, [](int i) { return double(i); });
  ASSERT_EQ(c.got.size(), 2u);  // [0,10) and [10,20) closed by the stream
  x.finish();
  ASSERT_EQ(c.got.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    const auto& w = c.got[k];
    EXPECT_EQ(w.series, "t/d/m");
    EXPECT_EQ(w.start, kT0 + k * 10 * kS);
    EXPECT_EQ(w.end, kT0 + (k + 1) * 10 * kS);
    EXPECT_EQ(w.n, 10);
    EXPECT_EQ(w.expected, 10);
    EXPECT_DOUBLE_EQ(w[kMean], 10 * k + 4.5);
    EXPECT_DOUBLE_EQ(w[kMissingRate], 0);
    EXPECT_DOUBLE_EQ(w[kSlope], 1);
    EXPECT_DOUBLE_EQ(w[kLast], 10 * k + 9);
    if (k) {
      EXPECT_DOUBLE_EQ(w[kDeltaMean], 10);
    } else {
      EXPECT_FALSE(w.has(kDeltaMean));
    }
  }
}

TEST(Extractor, WindowsAlignToMultiplesOfTheHop) {
  Collect c;
  Extractor x(time_opts(10 * kS), c);
  auto h = x.series("t", "d", "m");
  feed(x, h, 3, 25, kS, [](int) { return 1.0; });  // starts mid-window
  x.finish();
  ASSERT_EQ(c.got.size(), 3u);
  EXPECT_EQ(c.got[0].start, kT0);
  EXPECT_EQ(c.got[0].n, 7);
  // The series began at 3 s: the seconds before it are not missing.
  EXPECT_EQ(c.got[0].expected, 7);
  EXPECT_DOUBLE_EQ(c.got[0][kMissingRate], 0);
  // At the end of input the last window is judged up to its last point (24 s).
  EXPECT_EQ(c.got[2].n, 5);
  EXPECT_EQ(c.got[2].expected, 5);
}

TEST(Extractor, SlidingWindowsOverlapByHop) {
  Collect c;
  Extractor x(time_opts(10 * kS, 5 * kS), c);
  auto h = x.series("t", "d", "m");
  feed(x, h, 0, 30, kS, [](int i) { return double(i); });
  x.finish();
  ASSERT_EQ(c.got.size(), 6u);  // starts 0 5 10 15 20 25
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(c.got[k].start, kT0 + k * 5 * kS);
    EXPECT_EQ(c.got[k].end, kT0 + k * 5 * kS + 10 * kS);
  }
  EXPECT_EQ(c.got[1].n, 10);
  EXPECT_DOUBLE_EQ(c.got[1][kMean], 9.5);      // 5..14
  EXPECT_DOUBLE_EQ(c.got[1][kDeltaMean], 5);   // versus 0..9
  EXPECT_DOUBLE_EQ(c.got[1][kMedian], 9.5);
  EXPECT_EQ(c.got[5].n, 5);                    // 25..29, end of input
  EXPECT_DOUBLE_EQ(c.got[5][kMissingRate], 0);
}

TEST(Extractor, CountWindowsGiveOneWindowPerPoint) {
  Collect c;
  Extractor x(count_opts(4, 1), c);
  auto h = x.series("t", "d", "m");
  feed(x, h, 0, 10, kS, [](int i) { return double(i * i); });
  x.finish();
  ASSERT_EQ(c.got.size(), 10u);
  EXPECT_EQ(c.got[0].n, 1);
  EXPECT_EQ(c.got[2].n, 3);
  for (int k = 3; k < 10; ++k) {
    const auto& w = c.got[k];
    EXPECT_EQ(w.n, 4);
    EXPECT_EQ(w.start, kT0 + (k - 3) * kS);
    EXPECT_EQ(w.end, kT0 + k * kS);  // the window's last point
    double a = (k - 3) * (k - 3), b = (k - 2) * (k - 2), cc = (k - 1) * (k - 1), d = k * k;
    EXPECT_DOUBLE_EQ(w[kMean], (a + b + cc + d) / 4);
    EXPECT_DOUBLE_EQ(w[kMedian], (b + cc) / 2);
    EXPECT_DOUBLE_EQ(w[kMaxAbsDiff], d - cc);
    EXPECT_DOUBLE_EQ(w[kLast], d);
    EXPECT_EQ(w.expected, 4);
  }
}

TEST(Extractor, CountWindowsWithHopAndAPartialLastWindow) {
  Collect c;
  Extractor x(count_opts(4, 4), c);
  auto h = x.series("t", "d", "m");
  feed(x, h, 0, 10, kS, [](int i) { return double(i); });
  x.finish();
  ASSERT_EQ(c.got.size(), 3u);
  EXPECT_DOUBLE_EQ(c.got[0][kMean], 1.5);
  EXPECT_DOUBLE_EQ(c.got[1][kMean], 5.5);
  EXPECT_EQ(c.got[2].n, 2);  // points 8 and 9 only: no overlap with the window before
  EXPECT_DOUBLE_EQ(c.got[2][kMean], 8.5);
}

TEST(Extractor, SlidingCountWindowMedianMatchesRecomputation) {
  Collect c;
  Extractor x(count_opts(7, 1), c);
  auto h = x.series("t", "d", "m");
  std::vector<double> v;
  for (int i = 0; i < 200; ++i) v.push_back(std::fmod(i * 37.0, 11.0) + (i % 3 == 0 ? 0.5 : 0));
  for (int i = 0; i < 200; ++i) x.add(h, kT0 + i * kS, v[i]);
  x.finish();
  ASSERT_EQ(c.got.size(), 200u);
  for (int k = 6; k < 200; ++k) {
    std::vector<double> w(v.begin() + k - 6, v.begin() + k + 1);
    std::sort(w.begin(), w.end());
    double med = w[3];
    std::vector<double> dev;
    for (double a : w) dev.push_back(std::fabs(a - med));
    std::sort(dev.begin(), dev.end());
    EXPECT_DOUBLE_EQ(c.got[k][kMedian], med) << k;
    EXPECT_DOUBLE_EQ(c.got[k][kMad], dev[3]) << k;
  }
}

TEST(Extractor, OutOfOrderPointInAnOpenWindowIsAcceptedWithoutLateness) {
  Collect c;
  Extractor x(time_opts(10 * kS), c);
  auto h = x.series("t", "d", "m");
  for (int i : {0, 1, 3, 2, 4})
    EXPECT_EQ(x.add(h, kT0 + i * kS, i), AddResult::kAccepted);
  x.finish();
  ASSERT_EQ(c.got.size(), 1u);
  EXPECT_EQ(c.got[0].n, 5);
  EXPECT_DOUBLE_EQ(c.got[0][kSlope], 1);       // sorted by time before the pass
  EXPECT_DOUBLE_EQ(c.got[0][kMaxAbsDiff], 1);
}

TEST(Extractor, LatenessKeepsWindowsOpenAndLaterPointsAreCounted) {
  Options o = time_opts(10 * kS);
  o.lateness = 5 * kS;
  Collect c;
  Extractor x(o, c);
  auto h = x.series("t", "d", "m");
  for (int i = 0; i < 13; ++i)
    if (i != 8) x.add(h, kT0 + i * kS, 1);
  EXPECT_TRUE(c.got.empty());  // watermark 12 < end 10 + lateness 5
  EXPECT_EQ(x.add(h, kT0 + 8 * kS, 1), AddResult::kAccepted);
  x.add(h, kT0 + 15 * kS, 1);  // closes [0,10)
  ASSERT_EQ(c.got.size(), 1u);
  EXPECT_EQ(c.got[0].n, 10);
  EXPECT_EQ(x.add(h, kT0 + 9 * kS, 1), AddResult::kLate);
  EXPECT_EQ(x.stats().late, 1u);
  x.finish();
  EXPECT_EQ(c.got[1].n, 4);  // 10 11 12 15 and not the late 9
}

TEST(Extractor, WithoutLatenessAPointForAClosedWindowIsLate) {
  Collect c;
  Extractor x(time_opts(10 * kS), c);
  auto h = x.series("t", "d", "m");
  x.add(h, kT0 + 5 * kS, 1);
  x.add(h, kT0 + 12 * kS, 1);
  EXPECT_EQ(x.add(h, kT0 + 9 * kS, 1), AddResult::kLate);
  EXPECT_EQ(x.stats().late, 1u);
  EXPECT_EQ(x.stats().points, 2u);
}

TEST(Extractor, CountWindowsReorderPointsWithinLateness) {
  Options o = count_opts(3, 1);
  o.lateness = 2 * kS;
  Collect c;
  Extractor x(o, c);
  auto h = x.series("t", "d", "m");
  for (int i : {0, 1, 3, 2, 4, 5, 6}) x.add(h, kT0 + i * kS, i);
  EXPECT_EQ(x.add(h, kT0 + 1 * kS, 1), AddResult::kLate);  // 4 already released
  x.finish();
  ASSERT_EQ(c.got.size(), 7u);
  for (int k = 0; k < 7; ++k) {
    EXPECT_EQ(c.got[k].end, kT0 + k * kS);
    EXPECT_DOUBLE_EQ(c.got[k][kLast], k);
  }
}

TEST(Extractor, MissingRateCountsGapsAgainstTheInterval) {
  for (bool inferred : {false, true}) {
    Options o = time_opts(10 * kS);
    if (!inferred) o.interval = kS;
    Collect c;
    Extractor x(o, c);
    auto h = x.series("t", "d", "m");
    for (int i = 0; i < 20; ++i)
      if (i < 3 || i > 5) x.add(h, kT0 + i * kS, i);
    x.finish();
    ASSERT_EQ(c.got.size(), 2u);
    EXPECT_EQ(c.got[0].n, 7);
    EXPECT_EQ(c.got[0].expected, 10);
    EXPECT_NEAR(c.got[0][kMissingRate], 0.3, 1e-12) << inferred;
    EXPECT_DOUBLE_EQ(c.got[1][kMissingRate], 0);
  }
}

TEST(Extractor, AGapEmitsEmptyWindowsUpToMaxEmpty) {
  for (std::int64_t max_empty : {288, 1, 0}) {
    Options o = time_opts(10 * kS);
    o.max_empty = max_empty;
    Collect c;
    Extractor x(o, c);
    auto h = x.series("t", "d", "m");
    feed(x, h, 0, 10, kS, [](int) { return 1.0; });
    feed(x, h, 40, 50, kS, [](int) { return 2.0; });
    x.finish();
    std::int64_t empties = std::min<std::int64_t>(3, max_empty);
    ASSERT_EQ(c.got.size(), static_cast<size_t>(2 + empties)) << max_empty;
    for (int k = 1; k <= empties; ++k) {
      EXPECT_EQ(c.got[k].n, 0);
      EXPECT_EQ(c.got[k].start, kT0 + k * 10 * kS);
      EXPECT_EQ(c.got[k].expected, 10);
      EXPECT_DOUBLE_EQ(c.got[k][kMissingRate], 1);
      EXPECT_FALSE(c.got[k].has(kMean));
    }
    EXPECT_EQ(c.got.back().start, kT0 + 40 * kS);
    EXPECT_FALSE(c.got.back().has(kDeltaMean));  // the window before it had no mean
    EXPECT_EQ(x.stats().skipped_windows, static_cast<std::uint64_t>(3 - empties));
  }
}

TEST(Extractor, SeasonFeaturesCompareWithTheUsualDayAndAWeekEarlier) {
  Options o = time_opts(3600 * kS);
  o.season = Season::kWeek;
  o.season_bucket = 3600 * kS;
  Collect c;
  Extractor x(o, c);
  auto h = x.series("t", "d", "m");
  // Every 10 minutes for 9 days; value = 100 * day + hour.
  for (int i = 0; i < 9 * 144; ++i) {
    int day = i / 144, hour = (i % 144) / 6;
    x.add(h, kT0 + i * 600 * kS, 100.0 * day + hour);
  }
  x.finish();
  ASSERT_EQ(c.got.size(), 9u * 24);
  for (size_t k = 0; k < c.got.size(); ++k) {
    const auto& w = c.got[k];
    int day = static_cast<int>(k / 24);
    EXPECT_EQ(w.has(kSeasonDay), day >= 1) << k;
    EXPECT_EQ(w.has(kSeasonWeek), day >= 7) << k;
    if (day >= 1) {
      // The median of the last min(day, 7) days at this hour: 100 * (day - (m + 1) / 2).
      int m = std::min(day, 7);
      EXPECT_DOUBLE_EQ(w[kSeasonDay], 100.0 * (m + 1) / 2) << k;
    }
    if (day >= 7) {
      EXPECT_DOUBLE_EQ(w[kSeasonWeek], 700) << k;
    }
  }
}

TEST(Extractor, AnUnusualDayDoesNotComeBackTheNextDay) {
  // Hourly windows, value = hour of day, except day 3 which is 50 higher all day (a level
  // shift that ended). From day 4 on season_day is 0 again: the usual value at this hour
  // is the median over the days held, and one unusual day does not move it.
  Options o = time_opts(3600 * kS);
  o.season = Season::kWeek;
  Collect c;
  Extractor x(o, c);
  auto h = x.series("t", "d", "m");
  feed(x, h, 0, 6 * 24, 3600 * kS, [](int i) { return (i % 24) + (i / 24 == 3 ? 50.0 : 0.0); });
  x.finish();
  ASSERT_EQ(c.got.size(), 6u * 24);
  for (size_t k = 24; k < c.got.size(); ++k) {
    int day = static_cast<int>(k / 24);
    ASSERT_TRUE(c.got[k].has(kSeasonDay)) << k;
    EXPECT_DOUBLE_EQ(c.got[k][kSeasonDay], day == 3 ? 50 : 0) << "day " << day << " window " << k;
  }
}

TEST(Extractor, SeasonDayOnlyKeepsNoWeek) {
  Options o = time_opts(3600 * kS);
  o.season = Season::kDay;
  Collect c;
  Extractor x(o, c);
  auto h = x.series("t", "d", "m");
  feed(x, h, 0, 9 * 24, 3600 * kS, [](int i) { return double(i / 24); });
  x.finish();
  EXPECT_DOUBLE_EQ(c.got.back()[kSeasonDay], 1);
  EXPECT_FALSE(c.got.back().has(kSeasonWeek));
}

TEST(Extractor, InterleavedSeriesAreIndependent) {
  Collect c;
  Extractor x(time_opts(10 * kS), c);
  auto a = x.series("t", "d1", "m");
  auto b = x.series("t", "d2", "m");
  auto a2 = x.series("t", "d1", "m");
  EXPECT_EQ(a, a2);
  for (int i = 0; i < 20; ++i) {
    x.add(a, kT0 + i * kS, 1.0 * i);
    if (i % 2 == 0) x.add(b, kT0 + i * kS + 500 * kNsPerMs, -1.0);
  }
  x.finish();
  ASSERT_EQ(c.got.size(), 4u);
  int na = 0, nb = 0;
  for (const auto& w : c.got) {
    if (w.series == "t/d1/m") {
      ++na;
      EXPECT_EQ(w.n, 10);
      EXPECT_DOUBLE_EQ(w[kMissingRate], 0);
    } else {
      ++nb;
      EXPECT_EQ(w.n, 5);
      EXPECT_EQ(w.expected, 5);  // its own interval: 2 s
      EXPECT_EQ(w[kStuck], 1);
    }
  }
  EXPECT_EQ(na, 2);
  EXPECT_EQ(nb, 2);
  EXPECT_EQ(x.stats().series, 2u);
}

TEST(Extractor, MemoryDoesNotGrowWithTheStream) {
  struct Case {
    Options o;
    size_t bound;
  };
  Options lat = time_opts(300 * kS);
  lat.lateness = 60 * kS;
  std::vector<Case> cases = {{time_opts(300 * kS), 301},
                             {time_opts(300 * kS, 60 * kS), 301},
                             {lat, 361},
                             {count_opts(32, 1), 32}};
  for (auto& cs : cases) {
    Collect c;
    Extractor x(cs.o, c);
    auto h1 = x.series("t", "a", "m");
    auto h2 = x.series("t", "b", "m");
    size_t peak = 0;
    for (int i = 0; i < 200000; ++i) {
      x.add(h1, kT0 + i * kS, i % 17);
      x.add(h2, kT0 + i * kS, i % 5);
      peak = std::max(peak, x.buffered_samples());
      if (c.got.size() > 1000) c.got.clear();
    }
    EXPECT_LE(peak, 2 * cs.bound);
    EXPECT_EQ(x.stats().points, 400000u);
  }
}

TEST(Extractor, MaxBufferDropsAndCountsPointsOfABurst) {
  Options o = time_opts(300 * kS);
  o.max_buffer = 100;
  Collect c;
  Extractor x(o, c);
  auto h = x.series("t", "d", "m");
  for (int i = 0; i < 150; ++i) x.add(h, kT0 + i * kNsPerMs, 1);
  EXPECT_EQ(x.stats().overflow, 50u);
  x.finish();
  EXPECT_EQ(c.got.at(0).n, 100);
}


// flat_surprise: a run of steps within two steps of the series' resolution, weighed by
// how often such flat steps are in the series' history.
TEST(FlatTracker, LearnsTheResolutionAndCountsRunsWithinTwoSteps) {
  FlatTracker f;
  EXPECT_DOUBLE_EQ(f.surprise(), 0);
  // A series quantised to 0.1 (the first step shows it), then noisy steps of at least 1.
  const double noisy[] = {20.0, 20.1, 21.3, 20.1, 22.0, 20.5, 21.6, 20.2};
  for (int i = 0; i < 8; ++i) f.observe(kT0 + i * kS, noisy[i]);
  EXPECT_NEAR(f.resolution(), 0.1, 1e-9);
  EXPECT_EQ(f.run(), 1);
  EXPECT_DOUBLE_EQ(f.surprise(), 0);
  // Stuck with a one-step jitter: every step within two steps of the resolution.
  const double jitter[] = {20.3, 20.2, 20.3, 20.4, 20.3, 20.3, 20.2, 20.3};
  for (int i = 0; i < 8; ++i) f.observe(kT0 + (8 + i) * kS, jitter[i]);
  EXPECT_EQ(f.run(), 9);  // 20.2 and the eight after it
  EXPECT_GT(f.surprise(), 0);
  EXPECT_NEAR(f.surprise(), 8 * -std::log10(f.flat_share()), 1e-12);
  // A step of three resolutions ends the run.
  f.observe(kT0 + 16 * kS, 20.6);
  EXPECT_EQ(f.run(), 1);
  EXPECT_DOUBLE_EQ(f.surprise(), 0);
}

TEST(FlatTracker, TheShareOfFlatStepsIsLearntAndBounded) {
  FlatTracker noisy, flat;
  noisy.observe(kT0, -1);  // resolution 1, then steps of 10
  for (int i = 0; i < 20000; ++i) {
    noisy.observe(kT0 + (i + 1) * kS, (i % 2) * 10);
    flat.observe(kT0 + i * kS, 5.0);
  }
  EXPECT_EQ(noisy.run(), 1);
  EXPECT_EQ(flat.run(), 20000);
  EXPECT_DOUBLE_EQ(noisy.flat_share(), FlatTracker::kMinShare);
  EXPECT_DOUBLE_EQ(flat.flat_share(), FlatTracker::kMaxShare);
  // A series that never moves: each more flat step is hardly a surprise.
  EXPECT_LT(flat.surprise() / static_cast<double>(flat.run()), 0.001);
}

TEST(Extractor, FlatSurpriseGrowsWithAStuckStretchAcrossWindows) {
  Collect c;
  Extractor x(time_opts(10 * kS), c);
  auto h = x.series("t", "d", "m");
  // 400 s of noise on a 0.01 grid (steps of at least 0.05), then 60 s stuck at 21.50
  // with a +-0.01 jitter, then noise again.
  auto v = [](int i) {
    if (i >= 400 && i < 460) return 21.5 + 0.01 * ((i * 7) % 3 - 1);
    return 21.0 + 0.01 * ((i * 37) % 61) * ((i % 2) ? 1 : -1) + 0.05 * (i % 2);
  };
  feed(x, h, 0, 500, kS, v);
  x.finish();
  ASSERT_EQ(c.got.size(), 50u);
  for (int k = 0; k < 50; ++k) {
    ASSERT_TRUE(c.got[k].has(kFlatSurprise)) << k;
    const double fs = c.got[k][kFlatSurprise];
    if (k < 40 || k >= 47) {
      EXPECT_LT(fs, 3) << "window " << k;
    } else if (k >= 41 && k < 46) {
      // The run keeps growing from window to window (it is not cut at the window start).
      EXPECT_GT(fs, c.got[k - 1][kFlatSurprise]) << "window " << k;
    }
  }
  EXPECT_GT(c.got[45][kFlatSurprise], 12);
  // The boolean stays what it was: max == min within the window (false with jitter).
  EXPECT_DOUBLE_EQ(c.got[45][kStuck], 0);
}

TEST(Extractor, CountWindowsCarryFlatSurprise) {
  Collect c;
  Extractor x(count_opts(4, 1), c);
  auto h = x.series("t", "d", "m");
  // Resolution 1 (the first step, 11 to 10), then steps of 10, then 10 equal values.
  feed(x, h, 0, 40, kS, [](int i) { return i == 0 ? 11.0 : i < 30 ? (i % 2) * 10.0 : 7.0; });
  x.finish();
  ASSERT_FALSE(c.got.empty());
  EXPECT_GT(c.got.back()[kFlatSurprise], c.got[c.got.size() - 5][kFlatSurprise]);
  EXPECT_GT(c.got.back()[kFlatSurprise], 5);
}

}  // namespace
}  // namespace ep::features
