#include "ep/model.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "ep/fsutil.h"

using namespace ep;
using namespace ep::model;

namespace {

std::string fresh_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/ep_model_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(d);
  return d;
}

Model small_model(const std::string& device = "meter-001") {
  Model m;
  m.tenant = "acme";
  m.device = device;
  m.metric = "voltage";
  m.created_at = 1767225600LL * kNsPerSec;
  m.trained_from = m.created_at - 86400 * kNsPerSec;
  m.trained_to = m.created_at;
  m.windows = 300;
  m.features = {"mean", "max"};
  m.center = {230.5, 233.25};
  m.scale = {0.75, 1.5};
  m.params = iforest::Params{.trees = 10, .sample = 64, .seed = 12345678901234567890ULL};
  m.contamination = 0.01;
  m.threshold = 0.6123456789012345;
  iforest::Rng rng(1);
  arma::mat X(2, 300);
  for (auto& v : X) v = rng.uniform() - 0.5;
  m.forest = std::move(iforest::Forest::fit(X, m.params)).value();
  return m;
}

}  // namespace

TEST(ModelArtefact, RoundTripKeepsEverythingAndScoresIdentically) {
  Model m = small_model();
  m.version = 3;
  std::string text = serialize(m);
  auto back = parse(text, "test");
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->id(), "acme/meter-001/voltage@3");
  EXPECT_EQ(back->features, m.features);
  EXPECT_EQ(back->center, m.center);
  EXPECT_EQ(back->scale, m.scale);
  EXPECT_EQ(back->threshold, m.threshold);  // exact: full-precision parse
  EXPECT_EQ(back->params.seed, m.params.seed);
  EXPECT_EQ(back->trained_from, m.trained_from);
  EXPECT_EQ(back->windows, 300);
  EXPECT_EQ(back->forest.psi(), 64);
  double x[2] = {0.4, -0.3};
  EXPECT_EQ(back->forest.score(x), m.forest.score(x));
  EXPECT_EQ(serialize(*back), text);  // byte-identical re-serialisation
}

TEST(ModelArtefact, ChecksumDetectsAnyEdit) {
  Model m = small_model();
  m.version = 1;
  std::string text = serialize(m);
  ASSERT_TRUE(verify_checksum(text).is_ok());
  std::string tampered = text;
  auto pos = tampered.find("230.5");
  ASSERT_NE(pos, std::string::npos);
  tampered.replace(pos, 5, "231.5");
  auto r = parse(tampered, "m.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kData);
  EXPECT_EQ(r.status().message(), "m.json: checksum: mismatch (artefact corrupted or edited)");
  std::string no_sum = text;
  no_sum.replace(no_sum.find("\"checksum\""), 10, "\"checksuX\"");
  EXPECT_FALSE(parse(no_sum, "m.json").is_ok());
}

TEST(ModelStore, SaveIsAtomicAndVersionsIncrement) {
  Store store(fresh_dir("versions"));
  Model m = small_model();
  ASSERT_TRUE(store.save(m).is_ok());
  EXPECT_EQ(m.version, 1);
  std::string first_path = store.series_dir(m.key()) + "/1.json";
  auto first = fs::read_file(first_path);
  ASSERT_TRUE(first.is_ok());
  ASSERT_TRUE(store.save(m).is_ok());
  EXPECT_EQ(m.version, 2);
  // The earlier version is never overwritten, and no temp files are left behind.
  EXPECT_EQ(*fs::read_file(first_path), *first);
  std::vector<std::string> names;
  for (auto& e : std::filesystem::directory_iterator(store.series_dir(m.key())))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"1.json", "2.json"}));
  auto latest = store.load(m.key());
  ASSERT_TRUE(latest.is_ok());
  EXPECT_EQ(latest->version, 2);
  EXPECT_EQ(store.load(m.key(), 1)->version, 1);
  EXPECT_EQ(store.load(m.key(), 7).status().code(), Code::kNotFound);
  EXPECT_EQ(store.load({"acme", "nope", "voltage"}).status().code(), Code::kNotFound);
}

TEST(ModelStore, NextVersionFollowsTheHighestOnDisk) {
  Store store(fresh_dir("race"));
  Model m = small_model();
  ASSERT_TRUE(store.save(m).is_ok());
  // A version written by another trainer (3) is never reused or overwritten.
  ASSERT_TRUE(fs::write_file_atomic(store.series_dir(m.key()) + "/3.json", "{}").is_ok());
  ASSERT_TRUE(store.save(m).is_ok());
  EXPECT_EQ(m.version, 4);
}

TEST(ModelStore, LoadRejectsAFileThatNamesAnotherSeries) {
  Store store(fresh_dir("misplaced"));
  Model m = small_model();
  ASSERT_TRUE(store.save(m).is_ok());
  Model other = small_model("other");
  other.version = 2;
  ASSERT_TRUE(fs::write_file_atomic(store.series_dir(m.key()) + "/2.json", serialize(other)).is_ok());
  auto r = store.load(m.key());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("artefact names acme/other/voltage@2"), std::string::npos);
}

TEST(ModelStore, ListEscapesNamesAndSortsBySeriesThenVersion) {
  Store store(fresh_dir("list"));
  Model a = small_model("rack/1"), b = small_model(".hidden"), g = small_model(kGroupDevice);
  ASSERT_TRUE(store.save(a).is_ok());
  ASSERT_TRUE(store.save(a).is_ok());
  ASSERT_TRUE(store.save(b).is_ok());
  ASSERT_TRUE(store.save(g).is_ok());
  EXPECT_TRUE(std::filesystem::exists(store.dir() + "/acme/rack%2F1/voltage/2.json"));
  EXPECT_TRUE(std::filesystem::exists(store.dir() + "/acme/%2Ehidden/voltage/1.json"));
  EXPECT_TRUE(std::filesystem::exists(store.dir() + "/acme/%2A/voltage/1.json"));
  auto l = store.list();
  ASSERT_TRUE(l.is_ok());
  std::vector<std::string> ids;
  for (auto& e : *l) ids.push_back(e.id());
  EXPECT_EQ(ids, (std::vector<std::string>{"acme/*/voltage@1", "acme/.hidden/voltage@1",
                                           "acme/rack/1/voltage@1", "acme/rack/1/voltage@2"}));
}

namespace {
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}
}  // namespace

TEST(ModelStore, StagedArtefactsAppearOnlyAtCommit) {
  Store store(fresh_dir("stage"));
  Model a = small_model("a"), b = small_model("b");
  ASSERT_TRUE(store.save(b).is_ok());  // b already has version 1
  auto sa = store.stage(a);
  auto sb = store.stage(b);
  ASSERT_TRUE(sa.is_ok() && sb.is_ok());
  EXPECT_EQ(sa->version, 1);
  EXPECT_EQ(sb->version, 2);
  EXPECT_EQ(sb->path, store.series_dir(b.key()) + "/2.json");
  // Staged: only a temporary, which readers ignore.
  EXPECT_EQ(store.load(a.key()).status().code(), Code::kNotFound);
  EXPECT_EQ(*store.latest_version(b.key()), 1);
  ASSERT_EQ(files_in(store.series_dir(a.key())).size(), 1u);
  EXPECT_NE(files_in(store.series_dir(a.key()))[0].find("1.json.tmp."), std::string::npos);
  EXPECT_EQ(store.list()->size(), 1u);

  std::vector<Store::Staged> batch{*sa, *sb};
  ASSERT_TRUE(store.commit(batch).is_ok());
  EXPECT_TRUE(batch[0].status.is_ok() && batch[1].status.is_ok());
  EXPECT_EQ(files_in(store.series_dir(a.key())), (std::vector<std::string>{"1.json"}));
  EXPECT_EQ(files_in(store.series_dir(b.key())), (std::vector<std::string>{"1.json", "2.json"}));
  auto back = store.load(b.key());
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->version, 2);
  EXPECT_EQ(serialize(*back), serialize(b));
}

TEST(ModelStore, CommitTakesTheNextVersionWhenAnotherWriterTookTheStagedOne) {
  Store store(fresh_dir("stage_race"));
  Model m = small_model();
  auto st = store.stage(m);
  ASSERT_TRUE(st.is_ok());
  ASSERT_EQ(st->version, 1);
  Model other = small_model();
  other.threshold = 0.7;
  ASSERT_TRUE(store.save(other).is_ok());  // a concurrent trainer stores version 1 first
  ASSERT_EQ(other.version, 1);
  std::vector<Store::Staged> batch{*st};
  ASSERT_TRUE(store.commit(batch).is_ok());
  EXPECT_EQ(batch[0].version, 2);
  EXPECT_EQ(batch[0].path, store.series_dir(m.key()) + "/2.json");
  EXPECT_EQ(store.load(m.key(), 1)->threshold, 0.7);  // never overwritten
  auto mine = store.load(m.key(), 2);
  ASSERT_TRUE(mine.is_ok());
  EXPECT_EQ(mine->threshold, m.threshold);
  EXPECT_EQ(files_in(store.series_dir(m.key())), (std::vector<std::string>{"1.json", "2.json"}));
}

TEST(ModelStore, CommitReportsALostTemporary) {
  Store store(fresh_dir("stage_lost"));
  Model m = small_model();
  auto st = store.stage(m);
  ASSERT_TRUE(st.is_ok());
  std::filesystem::remove(st->tmp);
  std::vector<Store::Staged> batch{*st};
  Status s = store.commit(batch);
  EXPECT_EQ(s.code(), Code::kIo);
  EXPECT_EQ(batch[0].status.code(), Code::kIo);
  EXPECT_EQ(store.load(m.key()).status().code(), Code::kNotFound);
}

TEST(SeriesRef, ParsesVersionAndDevicesWithSlashes) {
  auto r = parse_series_ref("acme/rack/1/voltage@12");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->key.tenant, "acme");
  EXPECT_EQ(r->key.device, "rack/1");
  EXPECT_EQ(r->key.metric, "voltage");
  EXPECT_EQ(r->version, 12);
  EXPECT_EQ(parse_series_ref("acme/d/m")->version, 0);
  EXPECT_EQ(parse_series_ref("acme/m").status().code(), Code::kUsage);
  EXPECT_EQ(parse_series_ref("acme/d/m@x").status().code(), Code::kUsage);
  EXPECT_EQ(parse_series_ref("acme/d/m@0").status().code(), Code::kUsage);
}

TEST(RobustStats, MedianIqrThenMadThenFloor) {
  auto r = robust_stats({1, 2, 3, 4, 100, std::nan("")});
  EXPECT_EQ(r.count, 5u);
  EXPECT_DOUBLE_EQ(r.center, 3);
  EXPECT_DOUBLE_EQ(r.scale, (4.0 - 2.0) / 1.349);
  // IQR 0 but MAD > 0 is impossible; IQR 0 with outliers: MAD of {5,5,5,5,9} is 0 -> std.
  auto s = robust_stats({5, 5, 5, 5, 5, 5, 9});
  EXPECT_DOUBLE_EQ(s.center, 5);
  EXPECT_GT(s.scale, 0);
  auto c = robust_stats({0, 0, 0});
  EXPECT_DOUBLE_EQ(c.scale, 0.01);
  auto big = robust_stats({1000, 1000});
  EXPECT_DOUBLE_EQ(big.scale, 10);
}

TEST(Calibrate, ThresholdMapsToOneHalfMonotonically) {
  EXPECT_DOUBLE_EQ(calibrate(0.62, 0.62), 0.5);
  EXPECT_DOUBLE_EQ(calibrate(0, 0.62), 0);
  EXPECT_DOUBLE_EQ(calibrate(1, 0.62), 1);
  EXPECT_LT(calibrate(0.61, 0.62), 0.5);
  EXPECT_GT(calibrate(0.63, 0.62), 0.5);
  EXPECT_LT(calibrate(0.7, 0.62), calibrate(0.71, 0.62));
}
