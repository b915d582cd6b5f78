#include "score.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <functional>

#include "ep/fsutil.h"
#include "ep/iforest.h"

using namespace ep;
using namespace ep::score;

namespace {

const std::vector<std::string> kNames = {"mean", "std", "median", "mad", "min", "max",
                                         "range", "slope", "missing_rate", "stuck"};

// A normal window: level ~230, noise sd ~1 (sums of uniforms: deterministic).
std::vector<double> normal_row(iforest::Rng& rng) {
  double m = 230 + (rng.uniform() + rng.uniform() + rng.uniform() - 1.5);
  double sd = 1 + 0.2 * (rng.uniform() - 0.5);
  return {m, sd, m + 0.1 * (rng.uniform() - 0.5), 0.67 * sd, m - 2.5 * sd, m + 2.5 * sd,
          5 * sd, 0.01 * (rng.uniform() - 0.5), 0, 0};
}

Window window_of(const std::string& device, int i, const std::vector<double>& row) {
  Window w;
  w.tenant = "acme";
  w.device = device;
  w.metric = "voltage";
  w.start = (1767225600LL + i * 300LL) * kNsPerSec;
  w.end = w.start + 300 * kNsPerSec;
  w.n = 300;
  w.expected = 300;
  for (std::size_t f = 0; f < kNames.size(); ++f) w.features.push_back({kNames[f], row[f]});
  if (row.size() > kNames.size()) w.features.push_back({"flat_surprise", row[kNames.size()]});
  return w;
}

// A model of `names` over 1000 rows from make_row, as ep-train builds it.
model::Model train_model(const std::string& device, const std::vector<std::string>& names,
                         const std::function<std::vector<double>(iforest::Rng&, std::size_t)>& make_row) {
  iforest::Rng rng(11);
  const std::size_t n = 1000;
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < n; ++i) rows.push_back(make_row(rng, i));
  model::Model m;
  m.tenant = "acme";
  m.device = device;
  m.metric = "voltage";
  m.windows = n;
  m.features = names;
  arma::mat X(names.size(), n);
  for (std::size_t f = 0; f < names.size(); ++f) {
    std::vector<double> col(n);
    for (std::size_t j = 0; j < n; ++j) col[j] = rows[j][f];
    auto rs = model::robust_stats(col);
    m.center.push_back(rs.center);
    m.scale.push_back(rs.scale);
    for (std::size_t j = 0; j < n; ++j) X(f, j) = (rows[j][f] - rs.center) / rs.scale;
  }
  m.forest = std::move(iforest::Forest::fit(X, m.params)).value();
  arma::vec s = m.forest.score(X);
  std::vector<double> sv(s.begin(), s.end());
  m.contamination = 0.01;
  m.threshold = model::quantile_in_place(sv, 0.99);
  return m;
}

model::Model train_model(const std::string& device) {
  return train_model(device, kNames, [](iforest::Rng& rng, std::size_t) { return normal_row(rng); });
}

const std::string& store_dir() {
  static const std::string dir = [] {
    // Per process: ctest -j runs each test in its own process, in parallel.
    std::string d = ::testing::TempDir() + "/ep_score_models_" + std::to_string(::getpid());
    std::filesystem::remove_all(d);
    model::Store store(d);
    model::Model a = train_model("d");
    model::Model g = train_model(model::kGroupDevice);
    EXPECT_TRUE(store.save(a).is_ok());
    EXPECT_TRUE(store.save(g).is_ok());
    return d;
  }();
  return dir;
}

// A row with some features changed.
std::vector<double> base_row() {
  iforest::Rng rng(99);
  std::vector<double> r = normal_row(rng);
  r[0] = r[2] = 230;
  r[1] = 1;
  r[3] = 0.67;
  r[4] = 227.5;
  r[5] = 232.5;
  r[6] = 5;
  r[7] = 0;
  return r;
}

Scored score_one(Scorer& s, const std::string& device, int i, const std::vector<double>& row) {
  Status err;
  Scored out = s.score(window_of(device, i, row), err);
  EXPECT_TRUE(err.is_ok()) << err.message();
  return out;
}

}  // namespace

TEST(Scorer, NormalWindowIsNormalAndNamesTheModel) {
  model::Store store(store_dir());
  Scorer s(Options{}, &store);
  Scored r = score_one(s, "d", 0, base_row());
  EXPECT_FALSE(r.score.anomaly);
  EXPECT_EQ(r.score.label, "normal");
  EXPECT_EQ(r.score.model, "acme/d/voltage@1");
  EXPECT_EQ(r.score.status, "");
  EXPECT_GE(r.score.score, 0.0);
  EXPECT_LT(r.score.score, 0.5);
  EXPECT_EQ(r.score.explanation.size(), 3u);
}

TEST(Scorer, LabelsEachAnomalyType) {
  model::Store store(store_dir());
  struct Case {
    const char* label;
    std::function<void(std::vector<double>&)> edit;
  };
  std::vector<Case> cases = {
      {"spike", [](auto& r) { r[5] = 260; r[6] = r[5] - r[4]; r[1] = 4; }},
      {"drop", [](auto& r) { r[4] = 200; r[6] = r[5] - r[4]; r[1] = 4; }},
      {"drift", [](auto& r) { for (int f : {0, 2, 4, 5}) r[f] += 15; r[7] = 0.05; }},
      {"missingness", [](auto& r) { r[8] = 0.5; }},
      {"stuck", [](auto& r) { r[9] = 1; r[1] = r[3] = r[6] = 0; r[4] = r[5] = r[0]; }},
  };
  for (const auto& c : cases) {
    Scorer s(Options{}, &store);
    auto row = base_row();
    c.edit(row);
    Scored r = score_one(s, "d", 0, row);
    EXPECT_TRUE(r.score.anomaly) << c.label;
    EXPECT_EQ(r.score.label, c.label);
    EXPECT_GT(r.score.score, 0.5) << c.label;
    EXPECT_TRUE(r.onset) << c.label;
  }
}

TEST(Scorer, ExplanationNamesTopFeatureWithValueBaselineAndRobustZ) {
  model::Store store(store_dir());
  auto m = store.load({"acme", "d", "voltage"});
  ASSERT_TRUE(m.is_ok());
  Scorer s(Options{}, &store);
  auto row = base_row();
  row[8] = 0.3;  // missing_rate: constant 0 in training, scale floor 0.01 -> z = 30
  Scored r = score_one(s, "d", 0, row);
  ASSERT_FALSE(r.score.explanation.empty());
  const Explanation& e = r.score.explanation[0];
  EXPECT_EQ(e.feature, "missing_rate");
  EXPECT_DOUBLE_EQ(e.value, 0.3);
  EXPECT_DOUBLE_EQ(e.baseline, m->center[8]);
  EXPECT_DOUBLE_EQ(e.z, (0.3 - m->center[8]) / m->scale[8]);
  EXPECT_NEAR(e.z, 30, 1e-9);
  for (std::size_t i = 1; i < r.score.explanation.size(); ++i)
    EXPECT_LE(std::fabs(r.score.explanation[i].z), std::fabs(r.score.explanation[i - 1].z));
}

TEST(Scorer, LevelShiftStopsAlarmingAfterKWindows) {
  model::Store store(store_dir());
  for (std::size_t k : {12u, 5u}) {
    Options opt;
    opt.adapt_after = k;
    Scorer s(opt, &store);
    iforest::Rng rng(3);
    int i = 0;
    for (; i < 20; ++i) EXPECT_FALSE(score_one(s, "d", i, base_row()).score.anomaly);
    std::vector<bool> flags;
    for (int j = 0; j < 40; ++j, ++i) {
      auto row = normal_row(rng);
      for (int f : {0, 2, 4, 5}) row[f] += 20;  // the new normal: +20 sigma
      flags.push_back(score_one(s, "d", i, row).score.anomaly);
    }
    // Windows 1..K of the new level alarm; from K+1 it is the new normal. Later windows
    // may still see the model's ordinary false-positive rate (1% contamination), so
    // allow one stray alarm after the first 10 quiet windows.
    for (std::size_t j = 0; j < k; ++j) EXPECT_TRUE(flags[j]) << "k=" << k << " window " << j;
    for (std::size_t j = k; j < k + 10; ++j) EXPECT_FALSE(flags[j]) << "k=" << k << " window " << j;
    EXPECT_LE(std::count(flags.begin() + static_cast<long>(k), flags.end(), true), 1) << "k=" << k;
  }
}

TEST(Scorer, TheEndOfAnAdaptedLevelShiftIsNormalAndRestoresTheTrainedBaseline) {
  model::Store store(store_dir());
  Scorer s(Options{}, &store);
  iforest::Rng rng(5);
  int i = 0;
  auto shifted = [&] {
    auto row = normal_row(rng);
    for (int f : {0, 2, 4, 5}) row[f] += 20;
    return row;
  };
  for (; i < 5; ++i) EXPECT_FALSE(score_one(s, "d", i, base_row()).score.anomaly);
  for (int j = 0; j < 30; ++j, ++i) score_one(s, "d", i, shifted());  // adapted after 12
  EXPECT_FALSE(score_one(s, "d", i++, shifted()).score.anomaly);
  // Back at the trained level: normal from the first window (before, K windows alarmed).
  for (int j = 0; j < 5; ++j, ++i) {
    Scored r = score_one(s, "d", i, base_row());
    EXPECT_FALSE(r.score.anomaly) << "return window " << j << " score " << r.score.score;
  }
  // The baseline is the trained one again: the shifted level alarms anew.
  EXPECT_TRUE(score_one(s, "d", i++, shifted()).score.anomaly);
  // A spike on the way back is still a spike: it fits neither baseline.
  for (int j = 0; j < 30; ++j, ++i) score_one(s, "d", i, shifted());
  auto spike = base_row();
  spike[5] = 300, spike[6] = spike[5] - spike[4], spike[1] = 10;
  Scored r = score_one(s, "d", i++, spike);
  EXPECT_TRUE(r.score.anomaly);
  EXPECT_EQ(r.score.label, "spike");
}

TEST(Scorer, GapsAndStuckStretchesNeverBecomeTheNewNormal) {
  // Longer than K (12) windows of a fault: every one alarms with its label, and the first
  // window after it is normal again (a re-centred baseline would make the recovery alarm).
  model::Store store(store_dir());
  struct Case {
    const char* label;
    std::function<void(std::vector<double>&)> edit;
  };
  std::vector<Case> cases = {
      {"missingness", [](auto& r) { r[8] = 1; }},
      {"stuck", [](auto& r) { r[9] = 1; r[1] = r[3] = r[6] = 0; r[4] = r[5] = r[0]; }},
  };
  for (const auto& c : cases) {
    Scorer s(Options{}, &store);
    int i = 0;
    for (; i < 5; ++i) EXPECT_FALSE(score_one(s, "d", i, base_row()).score.anomaly);
    for (int j = 0; j < 30; ++j, ++i) {
      auto row = base_row();
      c.edit(row);
      Scored r = score_one(s, "d", i, row);
      EXPECT_TRUE(r.score.anomaly) << c.label << " window " << j;
      EXPECT_EQ(r.score.label, c.label) << "window " << j;
    }
    for (int j = 0; j < 5; ++j, ++i)
      EXPECT_FALSE(score_one(s, "d", i, base_row()).score.anomaly) << c.label << " recovery " << j;
  }
}

TEST(GuardZ, SpreadAboveItsBaselineIsMeasuredOnTheLogScale) {
  // mad twice its baseline of 0.1 with scale 0.02: robust z 5, log-ratio z ln 2 * 5 = 3.47.
  EXPECT_NEAR(guard_z("mad", 0.2, 0.1, 5.0), std::log(2.0) * 0.1 / 0.02, 1e-12);
  for (const char* f : {"std", "mad", "range", "diff_std", "max_abs_diff"}) {
    EXPECT_TRUE(is_spread_feature(f)) << f;
    EXPECT_LT(guard_z(f, 0.2, 0.1, 5.0), 5.0) << f;
    // A hundredfold spread (a spike's max_abs_diff) stays far past any guard.
    EXPECT_GT(guard_z(f, 10.0, 0.1, 495.0), 20.0) << f;
  }
  // Below the baseline, and for level features, the robust z itself.
  EXPECT_DOUBLE_EQ(guard_z("std", 0.05, 0.1, -2.5), -2.5);
  EXPECT_DOUBLE_EQ(guard_z("mean", 240, 230, 10), 10);
  EXPECT_FALSE(is_spread_feature("mean"));
}

TEST(GuardZ, MissingRateIsMeasuredOnTheShareOfPointsPresent) {
  // Usually 25% missing (scale 0.25): an empty window has robust z 3, but on the log scale
  // of the share present (floored at 1%) it is ln(0.75 / 0.01) * 0.75 / 0.25 = 13.
  EXPECT_NEAR(guard_z("missing_rate", 1, 0.25, 3), std::log(75.0) * 3, 1e-9);
  EXPECT_GT(fallback_score(guard_z("missing_rate", 1, 0.25, 3), 6), 0.8);
  // Half the points gone where none usually are: ln 2 / scale.
  EXPECT_NEAR(guard_z("missing_rate", 0.5, 0, 2.5), std::log(2.0) / 0.2, 1e-9);
  // Fewer missing than usual, or a series that is always missing: unchanged.
  EXPECT_DOUBLE_EQ(guard_z("missing_rate", 0, 0.25, -1), -1);
  EXPECT_DOUBLE_EQ(guard_z("missing_rate", 1, 1, 0), 0);
}

TEST(Scorer, NoisyWindowIsScoredByTheGuardOnTheLogScale) {
  // mad 1.5 times the usual, everything else typical: robust z ~7 on mad (past the guard
  // of 6, which alone would score it 0.57), log-ratio z ~5.4.
  model::Store store(store_dir());
  auto row = base_row();
  row[3] = 0.67 * 1.5;  // mad
  Options plain;
  plain.z_guard = 0;
  Scorer forest_only(plain, &store);
  double forest = score_one(forest_only, "d", 0, row).score.score;
  Scorer s(Options{}, &store);
  Scored r = score_one(s, "d", 0, row);
  ASSERT_EQ(r.score.explanation[0].feature, "mad");
  double z = r.score.explanation[0].z, base = r.score.explanation[0].baseline;
  ASSERT_GT(z, 6.0);
  double expect = std::max(forest, fallback_score(guard_z("mad", row[3], base, z), 6.0));
  EXPECT_DOUBLE_EQ(r.score.score, expect);
  EXPECT_LT(r.score.score, fallback_score(z, 6.0));
}

TEST(Scorer, ReloadModelsTakesTheLatestVersionOnTheNextWindow) {
  std::string dir = ::testing::TempDir() + "/ep_score_reload_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  model::Store store(dir);
  model::Model m = train_model("r");
  ASSERT_TRUE(store.save(m).is_ok());
  Scorer s(Options{}, &store);
  EXPECT_EQ(score_one(s, "r", 0, base_row()).score.model, "acme/r/voltage@1");
  model::Model m2 = train_model("r");
  ASSERT_TRUE(store.save(m2).is_ok());
  EXPECT_EQ(score_one(s, "r", 1, base_row()).score.model, "acme/r/voltage@1");  // cached
  s.reload_models();
  EXPECT_EQ(score_one(s, "r", 2, base_row()).score.model, "acme/r/voltage@2");
  std::filesystem::remove_all(dir);
}

TEST(Scorer, SpikesDoNotMoveTheBaseline) {
  model::Store store(store_dir());
  Scorer s(Options{}, &store);
  auto spike = base_row();
  spike[5] = 260;
  spike[6] = spike[5] - spike[4];
  for (int i = 0; i < 30; ++i) {
    EXPECT_TRUE(score_one(s, "d", 2 * i, spike).score.anomaly) << i;
    EXPECT_FALSE(score_one(s, "d", 2 * i + 1, base_row()).score.anomaly) << i;
  }
}

TEST(Scorer, OnsetMarksTheFirstWindowOfAnEvent) {
  model::Store store(store_dir());
  Options opt;
  opt.event_gap = 2;
  Scorer s(opt, &store);
  auto spike = base_row();
  spike[5] = 260;
  spike[6] = spike[5] - spike[4];
  EXPECT_TRUE(score_one(s, "d", 0, spike).onset);
  EXPECT_FALSE(score_one(s, "d", 1, spike).onset);   // same event
  EXPECT_FALSE(score_one(s, "d", 2, base_row()).onset);
  EXPECT_FALSE(score_one(s, "d", 3, spike).onset);   // gap of 1 < 2: still the same event
  EXPECT_FALSE(score_one(s, "d", 4, base_row()).onset);
  EXPECT_FALSE(score_one(s, "d", 5, base_row()).onset);
  Scored again = score_one(s, "d", 6, spike);
  EXPECT_TRUE(again.score.anomaly);
  EXPECT_TRUE(again.onset);  // a new event after 2 normal windows
  EXPECT_NE(to_record(again).find(R"(,"onset":true})"), std::string::npos);
  EXPECT_EQ(to_record(score_one(s, "d", 7, base_row())).find("onset"), std::string::npos);
}

TEST(Scorer, SeriesWithoutModelUsesGroupModelElseFallback) {
  model::Store store(store_dir());
  Scorer s(Options{}, &store);
  EXPECT_EQ(score_one(s, "other", 0, base_row()).score.model, "acme/*/voltage@1");
  Window w = window_of("x", 0, base_row());
  w.metric = "current";
  Status err;
  Scored r = s.score(w, err);
  EXPECT_EQ(r.score.model, "fallback");
  EXPECT_EQ(r.score.status, "warming");
}

TEST(Scorer, FallbackWarmsUpThenScoresByRobustZ) {
  Options opt;
  opt.fallback_min = 8;
  Scorer s(opt, nullptr);
  iforest::Rng rng(5);
  for (int i = 0; i < 8; ++i) {
    Scored r = score_one(s, "d", i, normal_row(rng));
    EXPECT_EQ(r.score.model, "fallback");
    EXPECT_EQ(r.score.status, "warming");
    EXPECT_EQ(r.score.score, 0);
    EXPECT_FALSE(r.score.anomaly);
    EXPECT_TRUE(r.score.explanation.empty());
  }
  for (int i = 8; i < 40; ++i) EXPECT_FALSE(score_one(s, "d", i, normal_row(rng)).score.anomaly);
  auto drop = normal_row(rng);
  drop[4] = 150;
  drop[6] = drop[5] - drop[4];
  Scored r = score_one(s, "d", 40, drop);
  EXPECT_TRUE(r.score.anomaly);
  EXPECT_EQ(r.score.label, "drop");
  EXPECT_EQ(r.score.status, "warming");
  EXPECT_GT(r.score.score, 0.9);
  ASSERT_FALSE(r.score.explanation.empty());
}

TEST(Scorer, CorruptModelIsReportedAndTheSeriesFallsBack) {
  std::string d = ::testing::TempDir() + "/ep_score_corrupt_" + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  model::Store store(d);
  model::Model m = train_model("bad");
  ASSERT_TRUE(store.save(m).is_ok());
  std::string path = store.series_dir(m.key()) + "/1.json";
  std::string text = *fs::read_file(path);
  text[text.find("\"windows\":1000") + 11] = '2';
  ASSERT_TRUE(fs::write_file_atomic(path, text).is_ok());
  Scorer s(Options{}, &store);
  Status err;
  Scored r = s.score(window_of("bad", 0, base_row()), err);
  EXPECT_EQ(err.code(), Code::kData);
  EXPECT_NE(err.message().find("checksum: mismatch"), std::string::npos);
  EXPECT_EQ(r.score.model, "fallback");
}

TEST(Scorer, ModelLoadedOnceAndReloadedOnlyAfterEviction) {
  model::Store store(store_dir());
  Scorer s(Options{}, &store);
  for (int i = 0; i < 50; ++i) score_one(s, "d", i, base_row());
  EXPECT_EQ(s.model_loads(), 1);
  Options small;
  small.model_cache = 1;
  Scorer t(small, &store);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(score_one(t, "d", i, base_row()).score.model, "acme/d/voltage@1");
    EXPECT_EQ(score_one(t, "other", i, base_row()).score.model, "acme/*/voltage@1");
  }
  EXPECT_EQ(t.model_loads(), 10);
}

TEST(LabelFor, RulesOnRobustZ) {
  std::vector<std::string> n = {"mean", "min", "max", "missing_rate", "stuck"};
  std::vector<double> v(5, 0), b(5, 0);
  EXPECT_EQ(label_for(n, v, b, {0, 0, 9, 0, 0}), "spike");
  EXPECT_EQ(label_for(n, v, b, {0, -9, 1, 0, 0}), "drop");
  EXPECT_EQ(label_for(n, v, b, {8, 7, 9, 0, 0}), "drift");
  EXPECT_EQ(label_for(n, v, b, {0, 0, 1, 6, 0}), "missingness");
  std::vector<double> stuck_v = {0, 0, 0, 0, 1};
  EXPECT_EQ(label_for(n, stuck_v, b, {0, 0, 0, 0, 100}), "stuck");
  EXPECT_EQ(label_for({"slope"}, {1}, {0}, {-7}), "drift");
  EXPECT_EQ(label_for({"last"}, {1}, {0}, {-7}), "drop");
}

TEST(FallbackScore, HalfAtZ0) {
  EXPECT_DOUBLE_EQ(fallback_score(5, 5), 0.5);
  EXPECT_DOUBLE_EQ(fallback_score(-5, 5), 0.5);
  EXPECT_DOUBLE_EQ(fallback_score(0, 5), 0);
  EXPECT_LT(fallback_score(4, 5), fallback_score(6, 5));
}

TEST(Scorer, DedupeCapsRepeatsOfAnEventButKeepsAnomalyTrue) {
  model::Store store(store_dir());
  Options opt;
  opt.dedupe = true;
  Scorer s(opt, &store);
  auto spike = base_row();
  spike[5] = 245;
  spike[6] = spike[5] - spike[4];
  Scored first = score_one(s, "d", 0, spike);
  EXPECT_TRUE(first.onset);
  EXPECT_FALSE(first.repeat);
  EXPECT_GT(first.score.score, 0.5);
  Scored second = score_one(s, "d", 1, spike);
  EXPECT_TRUE(second.score.anomaly);  // still anomalous
  EXPECT_TRUE(second.repeat);
  EXPECT_LT(second.score.score, 0.5);
  EXPECT_GT(second.score.score, 0.4999);
  EXPECT_NE(to_record(second).find(R"("anomaly":true)"), std::string::npos);
  EXPECT_NE(to_record(second).find(R"(,"repeat":true})"), std::string::npos);
  // An escalation well beyond the event's peak is reported again.
  auto bigger = base_row();
  bigger[4] = 100;
  bigger[5] = 400;
  bigger[6] = 300;
  bigger[1] = 80;
  Scored third = score_one(s, "d", 2, bigger);
  EXPECT_FALSE(third.repeat);
  EXPECT_GT(third.score.score, first.score.score);
  // Without --dedupe the same windows keep their scores.
  Scorer plain(Options{}, &store);
  score_one(plain, "d", 0, spike);
  EXPECT_GT(score_one(plain, "d", 1, spike).score.score, 0.5);
}

// Found by tests/fuzz/fuzz_state.cpp: a count such as "normal_run": 1e300 was cast to
// size_t out of range. A count is a non-negative integer; anything else makes the state
// unreadable (moved aside, fresh start).
TEST(Scorer, StateWithACountOutOfRangeIsSetAside) {
  std::string path = ::testing::TempDir() + "/ep_score_state_count_" + std::to_string(::getpid());
  for (const char* n : {"1e300", "-1", "2.5", "18446744073709551615"}) {
    std::string text = R"({"format":"ep-score-state","version":1,"series":[{"tenant":"a","device":"d","metric":"m","in_event":false,"event_peak":0,"normal_run":)" +
                       std::string(n) + R"(,"rest_left":0}]})";
    ASSERT_TRUE(fs::write_file_atomic(path, text));
    Scorer s(Options{}, nullptr);
    Status st = s.load_state(path);
    EXPECT_EQ(st.code(), Code::kData) << n;
    EXPECT_NE(st.message().find("series[0].normal_run: expected a non-negative integer"),
              std::string::npos)
        << st.message();
    EXPECT_EQ(s.series(), 0u);
    std::filesystem::remove(path + ".corrupt");
  }
  ASSERT_TRUE(fs::write_file_atomic(path, R"({"format":"ep-score-state","version":1,"series":[{"tenant":"a","device":"d","metric":"m","in_event":false,"event_peak":0,"normal_run":9223372036854775807,"rest_left":0}]})"));
  Scorer s(Options{}, nullptr);
  EXPECT_TRUE(s.load_state(path));
  EXPECT_EQ(s.series(), 1u);
  std::filesystem::remove(path);
}

TEST(Scorer, StateCarriesDriftAdaptationAcrossRunsExactly) {
  // A level shift half-way through its K = 12 adaptation when the first run ends: the
  // second run, from the saved state, re-centres at the same window as one long run.
  model::Store store(store_dir());
  std::vector<std::vector<double>> rows;
  iforest::Rng rng(3);
  for (int i = 0; i < 20; ++i) rows.push_back(base_row());
  for (int j = 0; j < 30; ++j) {
    auto row = normal_row(rng);
    for (int f : {0, 2, 4, 5}) row[f] += 20;
    rows.push_back(row);
  }
  Options opt;
  Scorer whole(opt, &store);
  std::vector<Scored> expect;
  for (std::size_t i = 0; i < rows.size(); ++i)
    expect.push_back(score_one(whole, "d", static_cast<int>(i), rows[i]));
  const std::string path = ::testing::TempDir() + "/ep_score_state_" + std::to_string(::getpid());
  std::filesystem::remove(path);
  {
    Scorer first(opt, &store);
    ASSERT_TRUE(first.load_state(path).is_ok());  // missing file: a fresh start
    for (int i = 0; i < 26; ++i) score_one(first, "d", i, rows[i]);
    ASSERT_TRUE(first.save_state(path).is_ok());
  }
  Scorer second(opt, &store);
  ASSERT_TRUE(second.load_state(path).is_ok());
  EXPECT_TRUE(second.has_state(SeriesKey{"acme", "d", "voltage"}));
  for (std::size_t i = 26; i < rows.size(); ++i) {
    Scored got = score_one(second, "d", static_cast<int>(i), rows[i]);
    EXPECT_EQ(got.score.score, expect[i].score.score) << "window " << i;
    EXPECT_EQ(got.score.anomaly, expect[i].score.anomaly) << "window " << i;
    EXPECT_EQ(got.onset, expect[i].onset) << "window " << i;
  }
  // The shift did alarm and did become the new normal within the second run.
  EXPECT_TRUE(expect[26].score.anomaly);
  EXPECT_FALSE(expect.back().score.anomaly);
  std::filesystem::remove(path);
}

TEST(LabelFor, FlatSurpriseFarAboveItsBaselineIsStuck) {
  std::vector<std::string> n = {"mean", "min", "max", "flat_surprise"};
  std::vector<double> b = {0, 0, 0, 0.5};
  // Even with extremes that would say spike, a stretch that flat is a stuck sensor.
  EXPECT_EQ(label_for(n, {0, 0, 0, 0.5 + kStuckSurprise}, b, {0, 0, 4, 3}), "stuck");
  EXPECT_EQ(label_for(n, {0, 0, 0, 0.4 + kStuckSurprise}, b, {0, 0, 4, 3}), "spike");
}

TEST(GuardZ, FlatSurpriseIsItsOwnMeasure) {
  // Whatever the model's scale (z), decades above the baseline.
  EXPECT_DOUBLE_EQ(guard_z("flat_surprise", 9, 1, 0.1), 8);
  EXPECT_DOUBLE_EQ(guard_z("flat_surprise", 9, 1, 400), 8);
  EXPECT_DOUBLE_EQ(guard_z("flat_surprise", 0.5, 1, -3), 0);
}

// A model trained on history that holds stuck stretches of its own (5% of the windows
// with a large flat_surprise, which inflates the feature's scale): a window stuck with
// a one-step jitter (std and range small but not 0, "stuck" false) is anomalous and
// labelled stuck for as long as it lasts, never becomes the baseline, and a normal
// window with a short flat run stays normal.
TEST(Scorer, JitteringStuckSensorIsFoundThroughFlatSurprise) {
  std::vector<std::string> names = kNames;
  names.push_back("flat_surprise");
  auto row = [](iforest::Rng& rng, std::size_t i) {
    std::vector<double> r = normal_row(rng);
    r.push_back(i % 20 == 0 ? 10 + 40 * rng.uniform() : (rng.uniform() < 0.2 ? 0.8 : 0));
    return r;
  };
  std::string dir = ::testing::TempDir() + "/ep_score_flat_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  model::Store store(dir);
  model::Model m = train_model("f", names, row);
  ASSERT_TRUE(store.save(m).is_ok());
  Scorer s(Options{}, &store);
  auto normal = base_row();
  normal.push_back(1.6);  // a run of three in a series with one flat step in five
  Scored n0 = score_one(s, "f", 0, normal);
  EXPECT_FALSE(n0.score.anomaly) << n0.score.score;
  for (int i = 1; i <= 30; ++i) {
    auto stuck = base_row();
    stuck[1] = 0.08, stuck[3] = 0.1, stuck[4] = 229.9, stuck[5] = 230.1, stuck[6] = 0.2;
    stuck.push_back(0.7 * 5 * i);  // five more flat samples per window
    Scored r = score_one(s, "f", i, stuck);
    if (i >= 2) {
      EXPECT_TRUE(r.score.anomaly) << "window " << i << " score " << r.score.score;
      EXPECT_EQ(r.score.label, "stuck") << "window " << i;
    }
  }
  normal.back() = 0;
  Scored after = score_one(s, "f", 31, normal);
  EXPECT_FALSE(after.score.anomaly) << after.score.score;
  std::filesystem::remove_all(dir);
}

TEST(LabelFor, ALevelThatJumpedSinceThePreviousWindowIsASpikeOrDropNotDrift) {
  std::vector<std::string> n = {"median", "max", "min", "max_abs_diff", "delta_mean", "season_day"};
  std::vector<double> b = {20, 21, 19, 0.2, 0, 0};
  // The whole window sits 8 above the usual value, no jump inside it.
  std::vector<double> z = {8, 7, 7, 0, 9, 8};
  // It got there since the previous window: a spike (or a drop, below).
  EXPECT_EQ(label_for(n, {28, 29, 27, 0.2, 7.5, 8}, b, z), "spike");
  EXPECT_EQ(label_for(n, {12, 13, 11, 0.2, -7.5, -8}, b, {-8, -7, -7, 0, -9, -8}), "drop");
  // It got there over many windows: drift.
  EXPECT_EQ(label_for(n, {28, 29, 27, 0.2, 1, 8}, b, {8, 7, 7, 0, 1.2, 8}), "drift");
  EXPECT_EQ(label_for(n, {28, 29, 27, 0.2, 3, 8}, b, {8, 7, 7, 0, 3.6, 8}), "drift");
}
