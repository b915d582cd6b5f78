// NAB scoring against hand-computed cases. Window rows [50, 59] (width 10) in a 100-row
// file; probation = floor(0.15 * 100) = 15 rows.
#include "nab.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace ep;
using namespace ep::eval::nab;

namespace {

constexpr TimeNs kMin = 60 * kNsPerSec;
const Profile kStandard = profiles()[0];

File make_file(std::size_t rows, std::vector<std::pair<std::size_t, std::size_t>> windows,
               std::string name = "cat/file.csv") {
  File f;
  f.name = std::move(name);
  for (std::size_t i = 0; i < rows; ++i) f.ts.push_back(1'400'000'000 * kNsPerSec + i * 5 * kMin);
  f.score.assign(rows, 0.0);
  for (auto [a, b] : windows) f.windows.emplace_back(f.ts[a], f.ts[b]);
  return f;
}

double S(double y) { return 2.0 / (1.0 + std::exp(5.0 * y)) - 1.0; }

ProfileResult score(const std::vector<File>& files, std::optional<double> t = std::nullopt,
                    const Profile& p = kStandard) {
  auto r = score_corpus(files, p, t);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? *r : ProfileResult{};
}

}  // namespace

TEST(NabSigmoid, MatchesNabDefinition) {
  EXPECT_NEAR(scaled_sigmoid(-1.0), 0.98661429815143, 1e-12);
  EXPECT_NEAR(scaled_sigmoid(-0.5), 0.84828363995751, 1e-12);
  EXPECT_DOUBLE_EQ(scaled_sigmoid(0.0), 0.0);
  EXPECT_NEAR(scaled_sigmoid(1.0), -0.98661429815143, 1e-12);
  EXPECT_NEAR(scaled_sigmoid(3.0), S(3.0), 1e-15);  // 3 itself is still on the curve
  EXPECT_EQ(scaled_sigmoid(3.0001), -1.0);
}

TEST(NabProbation, FifteenPercentCappedAt750) {
  EXPECT_EQ(probation_rows(100), 15u);
  EXPECT_EQ(probation_rows(4032), 604u);  // floor(604.8)
  EXPECT_EQ(probation_rows(5000), 750u);
  EXPECT_EQ(probation_rows(22695), 750u);
  EXPECT_EQ(probation_rows(0), 0u);
}

TEST(NabScore, DetectionAtWindowStartEarnsFullTruePositiveWeight) {
  File f = make_file(100, {{50, 59}});
  f.score[50] = 1.0;
  auto r = score({f});
  EXPECT_DOUBLE_EQ(r.threshold, 1.0);
  EXPECT_NEAR(r.score, 1.0, 1e-12);
  EXPECT_NEAR(r.null_score, -1.0, 1e-12);
  EXPECT_NEAR(r.perfect_score, 1.0, 1e-12);
  EXPECT_NEAR(r.normalized, 100.0, 1e-9);
  EXPECT_EQ(r.counts.tp, 1);
  EXPECT_EQ(r.counts.fn, 9);
  EXPECT_EQ(r.counts.windows_hit, 1);
}

TEST(NabScore, DetectionAtWindowEndEarnsLittle) {
  File f = make_file(100, {{50, 59}});
  f.score[59] = 1.0;
  auto r = score({f});
  double w = S(-0.1) / S(-1.0);  // position -(59 - 59 + 1) / 10
  EXPECT_NEAR(w, 0.24824, 1e-5);
  EXPECT_NEAR(r.score, w, 1e-12);
  EXPECT_NEAR(r.normalized, 100.0 * (w + 1.0) / 2.0, 1e-9);
}

TEST(NabScore, OnlyTheEarliestDetectionInAWindowCounts) {
  File f = make_file(100, {{50, 59}});
  f.score[55] = 1.0;  // position -0.5
  f.score[57] = 1.0;
  f.score[58] = 1.0;
  auto r = score({f});
  EXPECT_NEAR(r.score, S(-0.5) / S(-1.0), 1e-12);
  EXPECT_EQ(r.counts.tp, 3);
}

TEST(NabScore, FalsePositiveJustAfterAWindowCostsLessThanFarAway) {
  File near = make_file(100, {{50, 59}});
  near.score[60] = 1.0;  // y = |59 - 60| / (10 - 1)
  File far = make_file(100, {{50, 59}});
  far.score[95] = 1.0;   // y = 36 / 9 = 4 > 3: full cost
  File before = make_file(100, {{50, 59}});
  before.score[20] = 1.0;  // no preceding window: full cost
  double fn = -1.0;
  EXPECT_NEAR(score({near}, 1.0).score, fn + 0.11 * S(1.0 / 9.0), 1e-12);
  EXPECT_NEAR(score({far}, 1.0).score, fn - 0.11, 1e-12);
  EXPECT_NEAR(score({before}, 1.0).score, fn - 0.11, 1e-12);
  EXPECT_GT(score({near}, 1.0).score, score({far}, 1.0).score);
  // Optimised, firing never pays for a false positive: the threshold stays above it.
  auto opt = score({near});
  EXPECT_DOUBLE_EQ(opt.threshold, 1.1);
  EXPECT_NEAR(opt.normalized, 0.0, 1e-9);
}

TEST(NabScore, ProbationRowsAreNeverScored) {
  File f = make_file(100, {{50, 59}});
  f.score[10] = 1.0;  // inside probation: would be a false positive otherwise
  auto r = score({f}, 0.5);
  EXPECT_NEAR(r.score, -1.0, 1e-12);
  EXPECT_EQ(r.counts.fp, 0);
  EXPECT_EQ(r.counts.tn + r.counts.fn, 85);
}

TEST(NabScore, NullDetectorScoresZeroAndPerfectHundredInEveryProfile) {
  File a = make_file(200, {{50, 59}, {120, 139}}, "a/x.csv");
  File b = make_file(400, {{300, 339}}, "b/y.csv");
  File c = make_file(300, {}, "c/none.csv");
  for (const Profile& p : profiles()) {
    auto null = score({a, b, c}, std::nullopt, p);
    EXPECT_NEAR(null.normalized, 0.0, 1e-9) << p.name;
    EXPECT_NEAR(null.null_score, -3.0 * p.fn, 1e-12) << p.name;
    File pa = a, pb = b;
    pa.score[50] = pa.score[120] = 1.0;
    pb.score[300] = 1.0;
    auto perfect = score({pa, pb, c}, std::nullopt, p);
    EXPECT_NEAR(perfect.normalized, 100.0, 1e-9) << p.name;
    EXPECT_NEAR(perfect.score, 3.0 * p.tp, 1e-12) << p.name;
  }
}

TEST(NabScore, ThresholdOptimisationPicksTheBestOverAllFiles) {
  File f = make_file(100, {{50, 59}});
  f.score[50] = 0.9;  // true positive at the window start
  f.score[95] = 0.95; // false positive far away
  f.score[20] = 0.5;  // false positive before any window
  // 1.1: -1; 0.95: -1.11; 0.9: 0.89; 0.5: 0.78; 0.0: every row fires.
  auto r = score({f});
  EXPECT_DOUBLE_EQ(r.threshold, 0.9);
  EXPECT_NEAR(r.score, 0.89, 1e-12);
  EXPECT_EQ(r.counts.tp, 1);
  EXPECT_EQ(r.counts.fp, 1);
  // One threshold for the whole corpus: a second file whose only (perfect) detection
  // scores 0.5 moves the optimum down even though it costs the first file 0.11.
  File g = make_file(100, {{70, 79}}, "cat/g.csv");
  g.score[70] = 0.5;
  auto both = score({f, g});
  // At 0.9: f 0.89, g -1 = -0.11. At 0.5: f 0.78, g 1 = 1.78.
  EXPECT_DOUBLE_EQ(both.threshold, 0.5);
  EXPECT_NEAR(both.score, 1.78, 1e-12);
  ASSERT_EQ(both.files.size(), 2u);
  EXPECT_NEAR(both.files[0].score, 0.78, 1e-12);
  EXPECT_NEAR(both.files[1].score, 1.0, 1e-12);
  EXPECT_EQ(both.counts.windows_hit, 2);
  EXPECT_EQ(score({f, g}, 0.9).counts.windows_hit, 1);
}

TEST(NabScore, TiesFavourTheHigherThreshold) {
  // Lowering the threshold from 0.8 to 0.7 adds only a later row of the same window:
  // the total is unchanged, and NAB keeps the first (higher) threshold.
  File f = make_file(100, {{50, 59}});
  f.score[50] = 0.8;
  f.score[52] = 0.7;
  auto r = score({f});
  EXPECT_DOUBLE_EQ(r.threshold, 0.8);
  // Equal scores are one threshold: both rows fire together.
  File g = make_file(100, {{50, 59}});
  g.score[50] = 0.6;
  g.score[90] = 0.6;
  auto rg = score({g});
  EXPECT_DOUBLE_EQ(rg.threshold, 0.6);
  EXPECT_NEAR(rg.score, 1.0 - 0.11, 1e-12);
}

TEST(NabScore, ScoreAtUsesScoreGreaterOrEqualThreshold) {
  File f = make_file(100, {{50, 59}});
  f.score[50] = 0.7;
  auto spans = locate_windows(f);
  ASSERT_TRUE(spans.is_ok());
  auto sweep = scores_by_threshold(sweep_rows(f, *spans, kStandard, 0), kStandard);
  EXPECT_NEAR(score_at(sweep, 0.7).score, 1.0, 1e-12);
  EXPECT_NEAR(score_at(sweep, 0.65).score, 1.0, 1e-12);
  EXPECT_NEAR(score_at(sweep, 0.75).score, -1.0, 1e-12);
  EXPECT_NEAR(score_at(sweep, 2.0).score, -1.0, 1e-12);
}

TEST(NabWindows, RepeatedTimestampsFollowRowOrder) {
  // Rows 0..9, then the clock jumps back: row 10 repeats row 5's time.
  File f = make_file(20, {});
  for (std::size_t i = 10; i < 20; ++i) f.ts[i] = f.ts[i - 5];
  f.windows.emplace_back(f.ts[12], f.ts[14]);  // times of rows 7..9: first occurrences
  auto spans = locate_windows(f);
  ASSERT_TRUE(spans.is_ok()) << spans.status().message();
  EXPECT_EQ((*spans)[0].first, 7u);
  EXPECT_EQ((*spans)[0].last, 9u);
}

TEST(NabWindows, BadWindowsAreErrorsNamingTheFile) {
  File f = make_file(100, {});
  f.windows.emplace_back(f.ts[99] + kMin, f.ts[99] + 2 * kMin);
  auto r = locate_windows(f);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("cat/file.csv: window 1"), std::string::npos);
  EXPECT_NE(r.status().message().find("covers no row"), std::string::npos);
  File g = make_file(100, {{50, 60}, {55, 70}});
  EXPECT_FALSE(locate_windows(g).is_ok());
}

TEST(NabWindows, OneRowWindowFalsePositiveAfterItCostsFullWeight) {
  File f = make_file(100, {{50, 50}});
  f.score[51] = 1.0;
  auto r = score({f}, 1.0);
  EXPECT_NEAR(r.score, -1.0 - 0.11, 1e-12);
}
