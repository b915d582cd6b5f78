// Stream mode of ep-score: anomaly likelihood, range novelty and the rest period.
#include <gtest/gtest.h>

#include <cmath>

#include "ep/iforest.h"
#include "score.h"
#include "surprise.h"

using namespace ep;
using namespace ep::score;

namespace {

// A count window of 8 points ending in `last` on a level of `level` +- 1: what
// `ep-features --window 8pts --hop 1pts` writes for one new point.
Window point_window(int i, double last, double level) {
  Window w;
  w.tenant = "acme";
  w.device = "d";
  w.metric = "temp";
  w.start = (1767225600LL + i * 60LL) * kNsPerSec;
  w.end = w.start + 7 * 60 * kNsPerSec;
  w.n = 8;
  w.features = {{"mean", (7 * level + last) / 8},
                {"median", level},
                {"min", std::min(level - 1, last)},
                {"max", std::max(level + 1, last)},
                {"last", last}};
  return w;
}

Scored feed(Scorer& s, int i, double v) {
  Status err;
  Scored out = s.score(point_window(i, v, 20), err);
  EXPECT_TRUE(err.is_ok()) << err.message();
  return out;
}

// Noise in [-1, 1] around 20 (deterministic).
double noisy(iforest::Rng& rng) { return 20 + 2 * (rng.uniform() - 0.5); }

}  // namespace

TEST(LikelihoodScore, HalfAtOneInAHundredThousandAndMonotone) {
  EXPECT_NEAR(likelihood_score(1e-5), 0.5, 1e-4);
  EXPECT_NEAR(likelihood_score(0.5), std::log(0.5) / std::log(1e-10), 1e-9);
  EXPECT_DOUBLE_EQ(likelihood_score(0), 1.0);
  EXPECT_DOUBLE_EQ(likelihood_score(1), 0.0);
  double prev = 1;
  for (double p = 1e-12; p <= 1; p *= 10) {
    EXPECT_LE(likelihood_score(p), prev);
    prev = likelihood_score(p);
  }
}

TEST(Likelihood, WarmsUpThenFlagsAJumpInScoresButNotTheirUsualNoise) {
  Likelihood lk(10, 1000, 100);
  iforest::Rng rng(3);
  for (int i = 0; i < 100; ++i) EXPECT_LT(lk.push(0.3 + 0.2 * rng.uniform()), 0) << i;
  int alarms = 0;
  for (int i = 0; i < 2000; ++i) alarms += lk.push(0.3 + 0.2 * rng.uniform()) >= 0.5;
  EXPECT_EQ(alarms, 0);  // the series' own noise, however high, is its normal
  double peak = 0;
  for (int i = 0; i < 10; ++i) peak = std::max(peak, lk.push(0.95));
  EXPECT_GT(peak, 0.9);
}

TEST(Likelihood, ForgetsOldHistoryBeyondItsWindow) {
  // After a long quiet stretch the same noise that was normal before alarms again only
  // if the history forgot it: with history 200, 2000 quiet windows dominate.
  Likelihood lk(1, 200, 10);
  iforest::Rng rng(4);
  for (int i = 0; i < 500; ++i) lk.push(rng.uniform());
  for (int i = 0; i < 2000; ++i) lk.push(0.1 + 0.001 * rng.uniform());
  EXPECT_GT(lk.push(0.9), 0.5);
  Likelihood keep(1, 100000, 10);
  for (int i = 0; i < 500; ++i) keep.push(rng.uniform());
  for (int i = 0; i < 2000; ++i) keep.push(0.1 + 0.001 * rng.uniform());
  EXPECT_LT(keep.push(0.9), 0.5);
}

TEST(RangeNovelty, FlagsValuesBeyondTheSeenRangeByMoreThanTheTolerance) {
  RangeNovelty r(0.1, 3);
  EXPECT_EQ(r.push(0, 10), 0);
  EXPECT_EQ(r.push(50, 50), 0);  // before `after` windows: never novel, range grows
  EXPECT_EQ(r.push(5, 5), 0);
  EXPECT_EQ(r.push(54, 54), 0);   // within 10% of the range [0, 50]
  EXPECT_EQ(r.push(60, 60), 1);   // 60 > 54 + 0.1 * 54
  EXPECT_DOUBLE_EQ(r.previous_high(), 54);
  EXPECT_DOUBLE_EQ(r.previous_low(), 0);
  EXPECT_EQ(r.push(60, 60), 0);   // now part of the range
  EXPECT_EQ(r.push(-7, 3), -1);
  EXPECT_EQ(r.push(std::nan(""), std::nan("")), 0);
  EXPECT_EQ(r.push(std::nan(""), 200), 1);  // a missing side takes the other
}

TEST(StreamMode, LikelihoodWarmsThenNoveltyScoresOneWithSpikeAndExplanation) {
  Options opt;
  opt.likelihood = 10;
  opt.likelihood_min = 50;
  opt.novelty = 0.05;
  opt.novelty_after = 50;
  Scorer s(opt, nullptr);
  iforest::Rng rng(7);
  int i = 0;
  for (; i < 50; ++i) {
    Scored r = feed(s, i, noisy(rng));
    EXPECT_EQ(r.score.status, "warming");
    EXPECT_EQ(r.score.score, 0);
    EXPECT_FALSE(r.score.anomaly);
  }
  int alarms = 0;
  for (; i < 2000; ++i) alarms += feed(s, i, noisy(rng)).score.anomaly;
  // The likelihood flags runs of unusual scores; on pure noise such runs are rare.
  EXPECT_LE(alarms, 10);
  Scored spike = feed(s, i++, 30);
  EXPECT_EQ(spike.novel, 1);
  EXPECT_TRUE(spike.score.anomaly);
  EXPECT_EQ(spike.score.score, 1.0);
  EXPECT_EQ(spike.score.label, "spike");
  EXPECT_TRUE(spike.onset);
  ASSERT_FALSE(spike.score.explanation.empty());
  EXPECT_EQ(spike.score.explanation[0].feature, "max");
  EXPECT_EQ(spike.score.explanation[0].value, 30);
  EXPECT_EQ(spike.score.explanation[0].baseline, 21);
  EXPECT_DOUBLE_EQ(spike.score.explanation[0].z, (30.0 - 21) / (21 - 19));
  Scored drop = feed(s, i + 200, 5);
  EXPECT_EQ(drop.novel, -1);
  EXPECT_EQ(drop.score.label, "drop");
  EXPECT_EQ(drop.score.explanation[0].feature, "min");
}

TEST(StreamMode, RestPeriodMakesLaterDetectionsRepeatsThenEnds) {
  Options opt;
  opt.novelty = 0.0;
  opt.novelty_after = 10;
  opt.rest = 5;
  opt.dedupe = true;
  Scorer s(opt, nullptr);
  iforest::Rng rng(8);
  int i = 0;
  for (; i < 100; ++i) feed(s, i, noisy(rng));
  Scored a = feed(s, i++, 40);
  EXPECT_TRUE(a.onset);
  EXPECT_GT(a.score.score, 0.5);
  // Five windows of rest: new highs are anomalous but repeat the event, scored below 0.5.
  for (int k = 0; k < 5; ++k) {
    Scored r = feed(s, i++, 50 + 10 * k);
    EXPECT_TRUE(r.score.anomaly) << k;
    EXPECT_TRUE(r.repeat) << k;
    EXPECT_FALSE(r.onset) << k;
    EXPECT_LT(r.score.score, 0.5) << k;
  }
  Scored b = feed(s, i++, 200);
  EXPECT_TRUE(b.onset);
  EXPECT_FALSE(b.repeat);
  EXPECT_EQ(b.score.score, 1.0);
}

TEST(StreamMode, OffByDefault) {
  Scorer s(Options{}, nullptr);
  iforest::Rng rng(9);
  for (int i = 0; i < 100; ++i) feed(s, i, noisy(rng));
  Scored r = feed(s, 100, 1000);
  EXPECT_EQ(r.novel, 0);
  EXPECT_EQ(r.score.status, "warming");  // the fallback's status, not the likelihood's
  EXPECT_LT(r.score.score, 1.0);
}
