#include "train.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fcntl.h>
#include <unistd.h>

#include "ep/fsutil.h"
#include "ep/iforest.h"

using namespace ep;
using namespace ep::train;

namespace {

Window make_window(const std::string& device, int i, double level, ep::iforest::Rng& rng) {
  Window w;
  w.tenant = "acme";
  w.device = device;
  w.metric = "voltage";
  w.start = (1767225600LL + i * 300LL) * kNsPerSec;
  w.end = w.start + 300 * kNsPerSec;
  w.n = 300;
  w.expected = 300;
  double m = level + rng.uniform() - 0.5;
  double sd = 1 + 0.1 * rng.uniform();
  w.features = {{"mean", m}, {"std", sd}, {"min", m - 2 * sd}, {"max", m + 2 * sd},
                {"missing_rate", 0}, {"stuck", 0}};
  return w;
}

std::string fresh_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/ep_train_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(d);
  return d;
}

std::vector<std::vector<double>> rows_of(std::size_t n, std::uint64_t seed) {
  iforest::Rng rng(seed);
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < n; ++i)
    rows.push_back({10 + rng.uniform(), 2 * rng.uniform(), rng.uniform() - 0.5});
  return rows;
}

}  // namespace

TEST(TrainSeries, ThresholdIsTheContaminationQuantileOfTrainingScores) {
  Options opt;
  opt.contamination = 0.05;
  auto rows = rows_of(1000, 1);
  auto m = train_series({"t", "d", "m"}, {"a", "b", "c"}, rows, 0, 1, 1, opt, 42);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  arma::mat X(3, rows.size());
  for (std::size_t j = 0; j < rows.size(); ++j)
    for (std::size_t f = 0; f < 3; ++f) X(f, j) = (rows[j][f] - m->center[f]) / m->scale[f];
  arma::vec s = m->forest.score(X);
  double above = arma::accu(s >= m->threshold);
  EXPECT_NEAR(above / 1000.0, 0.05, 0.01);
  EXPECT_EQ(m->contamination, 0.05);
  EXPECT_EQ(m->created_at, 42);
  EXPECT_EQ(m->params.seed, series_seed(1, {"t", "d", "m"}));
}

// flat_surprise is in decades already and 0 in most windows: its scale is at least 1, so
// a run of two equal readings is not far out; other features keep their robust scale.
TEST(TrainSeries, FlatSurpriseGetsAScaleOfAtLeastOneDecade) {
  Options opt;
  std::vector<std::vector<double>> rows;
  iforest::Rng rng(4);
  for (std::size_t i = 0; i < 1000; ++i)
    rows.push_back({10 + rng.uniform(), i % 10 == 0 ? 0.3 : 0.0, i % 10 == 0 ? 0.3 : 0.0});
  auto m = train_series({"t", "d", "m"}, {"mean", "flat_surprise", "other"}, rows, 0, 1, 1, opt, 0);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(m->scale[1], 1.0);
  EXPECT_LT(m->scale[2], 0.2);  // the same values under another name: the plain std
  EXPECT_LT(m->scale[0], 1.0);
}

TEST(TrainSeries, FixedThresholdAndTooFewWindows) {
  Options opt;
  opt.threshold = 0.7;
  auto m = train_series({"t", "d", "m"}, {"a", "b", "c"}, rows_of(100, 2), 0, 1, 1, opt, 0);
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->threshold, 0.7);
  EXPECT_EQ(m->contamination, 0);
  opt.min_windows = 200;
  auto few = train_series({"t", "d", "m"}, {"a", "b", "c"}, rows_of(100, 2), 0, 1, 1, opt, 0);
  EXPECT_EQ(few.status().code(), Code::kData);
  EXPECT_EQ(few.status().message(), "only 100 windows (need 200)");
}

TEST(TrainSeries, MissingValuesAreImputedAndRareFeaturesDropped) {
  Options opt;
  auto rows = rows_of(200, 3);
  for (std::size_t j = 0; j < rows.size(); ++j) {
    if (j % 4 == 0) rows[j][1] = std::nan("");  // b present in 75%: kept, gaps imputed
    if (j % 4 != 0) rows[j][2] = std::nan("");  // c present in 25%: dropped
  }
  rows[0].resize(1);  // a short row (names seen later): the rest counts as missing
  auto m = train_series({"t", "d", "m"}, {"a", "b", "c"}, rows, 0, 1, 1, opt, 0);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(m->features, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(arma::mat(m->center).is_finite());
}

TEST(Trainer, TrainsPerSeriesReproduciblyRegardlessOfOrderAndThreads) {
  FakeClock clock(1767225600LL * kNsPerSec);
  std::vector<Window> windows;
  iforest::Rng rng(4);
  for (int i = 0; i < 200; ++i)
    for (const char* d : {"d1", "d2", "d3"}) windows.push_back(make_window(d, i, 230, rng));
  auto train_into = [&](const std::string& dir, bool reverse, int threads) {
    Options opt;
    opt.threads = threads;
    Trainer t(opt);
    if (reverse)
      for (auto it = windows.rbegin(); it != windows.rend(); ++it) t.add(*it);
    else
      for (const auto& w : windows) t.add(w);
    std::vector<std::string> ids;
    model::Store store(dir);
    EXPECT_TRUE(t.finish(store, clock, [&](const Outcome& o) {
      EXPECT_TRUE(o.status.is_ok());
      ids.push_back(o.key.to_string());
    }).is_ok());
    EXPECT_EQ(ids, (std::vector<std::string>{"acme/d1/voltage", "acme/d2/voltage", "acme/d3/voltage"}));
    return *fs::read_file(dir + "/acme/d2/voltage/1.json");
  };
  std::string a = train_into(fresh_dir("order_a"), false, 1);
  std::string b = train_into(fresh_dir("order_b"), true, 2);
  EXPECT_EQ(a, b);  // bit-identical artefacts
}

TEST(Trainer, GroupByMetricPoolsDevicesAndRangeFilters) {
  Options opt;
  opt.group_by = GroupBy::kMetric;
  opt.from = (1767225600LL + 50 * 300LL) * kNsPerSec;
  Trainer t(opt);
  iforest::Rng rng(5);
  for (int i = 0; i < 100; ++i)
    for (const char* d : {"d1", "d2"}) t.add(make_window(d, i, 230, rng));
  EXPECT_EQ(t.summary().out_of_range, 100);
  EXPECT_EQ(t.series(), 1u);
  model::Store store(fresh_dir("group"));
  FakeClock clock(0);
  ASSERT_TRUE(t.finish(store, clock, [](const Outcome&) {}).is_ok());
  auto m = store.load({"acme", "*", "voltage"});
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->windows, 100);
  EXPECT_EQ(m->series, 2);
  EXPECT_EQ(m->trained_from, *opt.from);
}

TEST(Trainer, MaxWindowsKeepsTheMostRecent) {
  Options opt;
  opt.max_windows = 40;
  Trainer t(opt);
  iforest::Rng rng(6);
  for (int i = 0; i < 100; ++i) t.add(make_window("d", i, 230, rng));
  model::Store store(fresh_dir("recent"));
  FakeClock clock(0);
  ASSERT_TRUE(t.finish(store, clock, [](const Outcome&) {}).is_ok());
  auto m = store.load({"acme", "d", "voltage"});
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->windows, 40);
  EXPECT_EQ(m->trained_from, (1767225600LL + 60 * 300LL) * kNsPerSec);
}

TEST(Run, BadLinesAreRejectedAndCountedValidOnesTrain) {
  std::string in_path = fresh_dir("run_in") + ".ndjson";
  {
    std::string text;
    iforest::Rng rng(7);
    for (int i = 0; i < 50; ++i) text += to_ndjson(make_window("d", i, 230, rng)) + "\n";
    text += "{not json\n";
    text += "{\"kind\":\"point\",\"tenant\":\"a\"}\n";
    ASSERT_TRUE(fs::write_file_atomic(in_path, text).is_ok());
  }
  LineReader in({in_path});
  RecordWriter out(::open("/dev/null", O_WRONLY));
  model::Store store(fresh_dir("run"));
  Summary summary;
  FakeClock clock(0);
  Status s = run(Options{}, in, out, store, clock, false, summary);
  EXPECT_EQ(s.code(), Code::kData);
  EXPECT_EQ(summary.rejected, 2);
  EXPECT_EQ(summary.windows, 50);
  EXPECT_EQ(summary.trained, 1);
}

TEST(Trainer, ManySeriesAreCommittedInBatchesWithNothingLeftStaged) {
  // More series than one commit batch, and threads: every series ends with exactly one
  // artefact, named <version>.json, loadable, reported once in series order.
  Options opt;
  opt.threads = 2;
  opt.min_windows = 20;
  opt.forest.trees = 5;
  opt.forest.sample = 16;
  Trainer t(opt);
  iforest::Rng rng(8);
  const int series = static_cast<int>(Trainer::kCommitBatch) + 45;
  for (int i = 0; i < 20; ++i)
    for (int d = 0; d < series; ++d) t.add(make_window("d" + std::to_string(1000 + d), i, 230, rng));
  std::string dir = fresh_dir("batches");
  model::Store store(dir);
  FakeClock clock(0);
  std::vector<std::string> ids;
  std::size_t last_progress = 0;
  ASSERT_TRUE(t.finish(store, clock,
                       [&](const Outcome& o) {
                         ASSERT_TRUE(o.status.is_ok()) << o.status.message();
                         EXPECT_EQ(o.version, 1);
                         EXPECT_TRUE(std::filesystem::exists(o.path)) << o.path;
                         ids.push_back(o.key.device);
                       },
                       [&](std::size_t done, std::size_t total) {
                         EXPECT_EQ(total, static_cast<std::size_t>(series));
                         EXPECT_GT(done, last_progress);
                         last_progress = done;
                       })
                  .is_ok());
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(series));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  std::size_t files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    ++files;
    EXPECT_EQ(e.path().filename().string(), "1.json") << e.path();
  }
  EXPECT_EQ(files, static_cast<std::size_t>(series));
  EXPECT_EQ(store.list()->size(), static_cast<std::size_t>(series));
}

TEST(Trainer, FeatureOrderAndSeriesInterleavingDoNotChangeTheModel) {
  // The same windows with features in a different order per window, and the series
  // interleaved, give byte-identical artefacts to the plain input (the fast paths of
  // add() that reuse the previous window's feature positions and series must not
  // misplace a value).
  FakeClock clock(0);
  auto train_into = [&](const std::string& dir, bool shuffle) {
    Trainer t(Options{});
    iforest::Rng rng(9);
    for (int i = 0; i < 120; ++i) {
      for (const char* d : {"a", "b"}) {
        Window w = make_window(d, i, d[0] == 'a' ? 230 : 120, rng);
        if (shuffle && i % 3 == 1) std::reverse(w.features.begin(), w.features.end());
        if (shuffle && i % 5 == 2) w.features.push_back({"extra", 1.0 * i});
        if (!shuffle && i % 5 == 2) w.features.push_back({"extra", 1.0 * i});
        if (shuffle && i % 7 == 3) std::rotate(w.features.begin(), w.features.begin() + 2, w.features.end());
        t.add(w);
      }
    }
    model::Store store(dir);
    EXPECT_TRUE(t.finish(store, clock, [](const Outcome& o) { EXPECT_TRUE(o.status.is_ok()); }).is_ok());
    return *fs::read_file(dir + "/acme/b/voltage/1.json");
  };
  EXPECT_EQ(train_into(fresh_dir("shuffle_a"), false), train_into(fresh_dir("shuffle_b"), true));
}
