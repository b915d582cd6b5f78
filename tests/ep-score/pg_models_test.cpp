// ep-score reading models from the Postgres models table (real Postgres, pg_virtualenv):
//  * DbModelSource in process: current = highest active version, explicit versions,
//    group rows, rows of another series, both checksums, errors naming the model;
//  * the binaries: ep-train --db then ep-score --db --since-last scores with the table's
//    model, a retrained version is used by the next run, the group model covers series
//    without their own, a tampered row is reported (exit 65) while its windows are
//    scored by the fallback, and --models DIR on the command line overrides the table.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "ep/crypto.h"
#include "ep/iforest.h"
#include "ep/model.h"
#include "pg_fixture.h"
#include "pg_io.h"

namespace {

using eptest::count;
using eptest::run;

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

std::size_t lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

// A small valid artefact for series tenant/device/metric, version `version`.
std::string artefact(const std::string& device, const std::string& metric, int version) {
  ep::model::Model m;
  m.tenant = "acme";
  m.device = device;
  m.metric = metric;
  m.version = version;
  m.windows = 64;
  m.features = {"mean", "max"};
  m.center = {10, 11};
  m.scale = {0.1, 0.2};
  m.params.trees = 8;
  m.params.sample = 32;
  arma::mat X(2, 64);
  for (arma::uword j = 0; j < 64; ++j) {
    X(0, j) = static_cast<double>(j % 7) - 3;
    X(1, j) = static_cast<double>(j % 5) - 2;
  }
  m.forest = std::move(ep::iforest::Forest::fit(X, m.params)).value();
  return ep::model::serialize(m);
}

// A migrated database with series acme/d/m.
using PgWithSeries = eptest::SeriesDbTest;

class ModelsTable : public PgWithSeries {
 protected:
  void SetUp() override {
    PgWithSeries::SetUp();
    metric_d2_ = eptest::create_series(c_, "acme", "d2", "m").metric_id;
    ASSERT_FALSE(metric_d2_.empty());
  }
  // Inserts a row; `text` defaults to a valid artefact of the row's series and version.
  void insert(const std::string& name, int version, const ep::pg::Param& metric_id, bool active,
              std::string text = "") {
    if (text.empty()) {
      auto slash = name.rfind('/');
      text = artefact(name.substr(0, slash), name.substr(slash + 1), version);
    }
    EP_ASSERT_OK(c_.run(
        "INSERT INTO models (tenant_id, name, version, metric_id, artefact, sha256, active) "
        "VALUES ($1, $2, $3, $4, convert_to($5, 'UTF8'), $6, $7)",
        {tenant_id_, name, version, metric_id, text, ep::crypto::sha256_hex(text), active}));
  }

  std::string metric_d2_;
};

TEST_F(ModelsTable, CurrentModelIsTheHighestActiveVersion) {
  insert("d/m", 1, metric_id_, false);
  insert("d/m", 2, metric_id_, true);
  insert("d/m", 3, metric_id_, false);  // rolled back
  ep::score::DbModelSource src(c_);
  auto m = src.load({"acme", "d", "m"});
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(m->id(), "acme/d/m@2");
  auto v3 = src.load({"acme", "d", "m"}, 3);  // an explicit version, active or not
  ASSERT_TRUE(v3.is_ok()) << v3.status().message();
  EXPECT_EQ(v3->id(), "acme/d/m@3");
  EXPECT_EQ(src.load({"acme", "d", "m"}, 4).status().code(), ep::Code::kNotFound);
  EXPECT_EQ(src.artefacts_read(), 2);
  EXPECT_EQ(src.describe(), "the models table");
}

TEST_F(ModelsTable, GroupModelRowHasNoSeries) {
  insert("*/m", 1, nullptr, true);
  ep::score::DbModelSource src(c_);
  auto g = src.load({"acme", ep::model::kGroupDevice, "m"});
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_EQ(g->id(), "acme/*/m@1");
  EXPECT_EQ(src.load({"acme", "d", "m"}).status().code(), ep::Code::kNotFound)
      << "the series has no model of its own (the Scorer falls back to the group)";
}

TEST_F(ModelsTable, WhatIsNotThereIsNotFound) {
  ep::score::DbModelSource src(c_);
  EXPECT_EQ(src.load({"acme", "d", "m"}).status().code(), ep::Code::kNotFound)
      << "a tenant without models";
  EXPECT_EQ(src.load({"ghost", "d", "m"}).status().code(), ep::Code::kNotFound)
      << "an unknown tenant";
  insert("d/m", 1, metric_id_, true);
  EXPECT_EQ(src.load({"acme", "d", "m"}).status().code(), ep::Code::kNotFound)
      << "the tenant's active rows are read once per run";
  ep::score::DbModelSource next_run(c_);
  EXPECT_TRUE(next_run.load({"acme", "d", "m"}).is_ok());
}

TEST_F(ModelsTable, RowOfAnotherSeriesIsNotUsed) {
  // Named d/m but recorded for series d2/m: not d/m's model.
  insert("d/m", 1, metric_d2_, true, artefact("d", "m", 1));
  ep::score::DbModelSource src(c_);
  EXPECT_EQ(src.load({"acme", "d", "m"}).status().code(), ep::Code::kNotFound);
}

TEST_F(ModelsTable, ArtefactNotMatchingTheShaColumnIsDataNamingTheModel) {
  insert("d/m", 1, metric_id_, true);
  EP_ASSERT_OK(c_.run("UPDATE models SET artefact = artefact || '\\x20'::bytea"));
  ep::score::DbModelSource src(c_);
  auto m = src.load({"acme", "d", "m"});
  ASSERT_EQ(m.status().code(), ep::Code::kData);
  EXPECT_EQ(m.status().message(),
            "models table acme/d/m@1: artefact does not match the row's sha256 (row corrupted "
            "or edited)");
  // Remembered: a second series asking for the same model does not re-read it.
  EXPECT_EQ(src.load({"acme", "d", "m"}).status().message(), m.status().message());
  EXPECT_EQ(src.artefacts_read(), 1);
}

TEST_F(ModelsTable, EditedArtefactWithARecomputedShaFailsItsOwnChecksum) {
  std::string text = artefact("d", "m", 1);
  auto pos = text.find("\"windows\":64");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 12, "\"windows\":65");
  insert("d/m", 1, metric_id_, true, text);  // sha256 column of the edited bytes
  ep::score::DbModelSource src(c_);
  auto m = src.load({"acme", "d", "m"});
  ASSERT_EQ(m.status().code(), ep::Code::kData);
  EXPECT_EQ(m.status().message(),
            "models table acme/d/m@1: checksum: mismatch (artefact corrupted or edited)");
}

TEST_F(ModelsTable, RowHoldingAnotherModelsArtefactIsData) {
  insert("d/m", 1, metric_id_, true, artefact("d2", "m", 1));
  insert("d2/m", 1, metric_d2_, true, artefact("d2", "m", 2));
  ep::score::DbModelSource src(c_);
  EXPECT_EQ(src.load({"acme", "d", "m"}).status().message(),
            "models table acme/d/m@1: artefact names acme/d2/m@1, not acme/d/m@1");
  EXPECT_EQ(src.load({"acme", "d2", "m"}).status().message(),
            "models table acme/d2/m@1: artefact names acme/d2/m@2, not acme/d2/m@1");
}

TEST_F(ModelsTable, ScorerReadsEachArtefactOnceAndNamesItInTheRecords) {
  insert("d/m", 1, metric_id_, false);
  insert("d/m", 2, metric_id_, true);
  insert("*/m", 3, nullptr, true);
  ep::score::DbModelSource src(c_);
  ep::score::Scorer scorer({}, &src);
  std::vector<std::string> models;
  for (int i = 0; i < 10; ++i) {
    for (const char* device : {"d", "d2", "d9"}) {
      ep::Window w;
      w.tenant = "acme";
      w.device = device;
      w.metric = "m";
      w.start = (1767261600LL + 60 * i) * ep::kNsPerSec;
      w.end = w.start + 59 * ep::kNsPerSec;
      w.n = w.expected = 60;
      w.features = {{"mean", 10.0}, {"max", 11.0}};
      ep::Status err;
      models.push_back(scorer.score(w, err).score.model);
      EXPECT_TRUE(err.is_ok()) << err.message();
    }
  }
  EXPECT_EQ(std::count(models.begin(), models.end(), "acme/d/m@2"), 10);
  EXPECT_EQ(std::count(models.begin(), models.end(), "acme/*/m@3"), 20)
      << "d2 (in Postgres, no model of its own) and d9 (unknown there) use the group model";
  EXPECT_EQ(src.artefacts_read(), 2);
  EXPECT_EQ(scorer.model_loads(), 2);
}

#ifdef EP_TRAIN_BIN
// The binaries end to end.
class ScoreWithTableModels : public PgWithSeries {
 protected:
  void SetUp() override {
    PgWithSeries::SetUp();
    base_ = ::testing::TempDir() + "/ep_score_pgmodels_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_);
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  // Features rows of acme/<device>/m for minutes [from, to); a huge max at `spike`.
  void add_features(const std::string& device, int from, int to, int spike = -1) {
    EP_ASSERT_OK(c_.run(
        "INSERT INTO features (tenant_id, metric_id, window_start, window_end, n, expected, features) "
        "SELECT m.tenant_id, m.metric_id, timestamptz '2026-01-01 10:00Z' + make_interval(mins => i), "
        "timestamptz '2026-01-01 10:00:59Z' + make_interval(mins => i), 60, 60, "
        "jsonb_build_object('mean', 10 + (i % 7) * 0.1, 'max', CASE WHEN i = $5 THEN 1000 "
        "ELSE 11 + (i % 5) * 0.1 END) "
        "FROM metrics m JOIN devices d USING (tenant_id, device_id), generate_series($3, $4 - 1) i "
        "WHERE m.tenant_id = $1 AND d.external_id = $2 AND m.name = 'm'",
        {tenant_id_, device, from, to, spike}));
  }
  eptest::RunResult train(const std::string& dir, std::vector<std::string> extra = {},
                          const std::string& min_windows = "10") {
    std::vector<std::string> a = {EP_TRAIN_BIN, "--no-progress", "--db", db_.url(), "--tenant",
                                  "acme", "--models", dir, "--min-windows", min_windows};
    a.insert(a.end(), extra.begin(), extra.end());
    return run(a);
  }
  eptest::RunResult score(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) {
    std::vector<std::string> a = {EP_SCORE_BIN, "--no-progress", "--db", db_.url(),
                                  "--since-last", "--tenant", "acme"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run(a, "", std::move(env));
  }
  std::int64_t stored(const std::string& model) {
    auto r = c_.exec("SELECT count(*) FROM anomaly_scores WHERE model = $1", {model});
    EXPECT_TRUE(r.is_ok());
    return r.is_ok() ? r->get_int(0, 0) : -1;
  }

  std::string base_;
};

TEST_F(ScoreWithTableModels, TrainedModelIsReadFromTheTableAndARetrainedOneByTheNextRun) {
  add_features("d", 0, 60);
  const std::string train_dir = base_ + "/trainer";  // ep-score is never told about it
  auto t1 = train(train_dir);
  ASSERT_EQ(t1.status, 0) << t1.err;
  auto s1 = score();
  ASSERT_EQ(s1.status, 0) << s1.err;
  EXPECT_NE(s1.err.find("models from the models table"), std::string::npos) << s1.err;
  EXPECT_EQ(lines(s1.out), 60u);
  EXPECT_EQ(occurrences(s1.out, R"("model":"acme/d/m@1")"), 60u) << s1.out.substr(0, 400);
  EXPECT_EQ(stored("acme/d/m@1"), 60);

  // New windows (one a spike), then a retrain: the next run scores with @2.
  add_features("d", 60, 70, 65);
  auto t2 = train(train_dir);
  ASSERT_EQ(t2.status, 0) << t2.err;
  ASSERT_EQ(count(c_, "SELECT version FROM models WHERE active"), 2);
  auto s2 = score();
  ASSERT_EQ(s2.status, 0) << s2.err;
  EXPECT_EQ(lines(s2.out), 10u);
  EXPECT_EQ(occurrences(s2.out, R"("model":"acme/d/m@2")"), 10u) << s2.out.substr(0, 400);
  EXPECT_EQ(stored("acme/d/m@2"), 10);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores WHERE anomaly AND window_start = "
                      "'2026-01-01 11:05Z'"),
            1)
      << s2.out;
}

TEST_F(ScoreWithTableModels, GroupModelScoresSeriesWithoutTheirOwn) {
  eptest::create_series(c_, "acme", "d2", "m");
  add_features("d", 0, 60);
  add_features("d2", 0, 20);
  const std::string dir = base_ + "/trainer";
  auto g = train(dir, {"--group-by", "metric"});
  ASSERT_EQ(g.status, 0) << g.err;
  ASSERT_EQ(count(c_, "SELECT count(*) FROM models WHERE name = '*/m' AND metric_id IS NULL"), 1);
  auto own = train(dir, {}, "30");  // d only: d2 has 20 windows
  ASSERT_EQ(own.status, 0) << own.err;
  auto s = score();
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_EQ(stored("acme/d/m@1"), 60);
  EXPECT_EQ(stored("acme/*/m@1"), 20);
  EXPECT_EQ(occurrences(s.out, R"("device":"d2","metric":"m")"), 20u);
}

TEST_F(ScoreWithTableModels, TamperedRowIsReportedAndItsWindowsScoredByTheFallback) {
  add_features("d", 0, 30);
  auto t = train(base_ + "/trainer");
  ASSERT_EQ(t.status, 0) << t.err;
  EP_ASSERT_OK(c_.run("UPDATE models SET artefact = artefact || '\\x0a'::bytea"));
  auto s = score();
  EXPECT_EQ(s.status, 65) << s.err;
  EXPECT_NE(s.err.find("acme/d/m: models table acme/d/m@1: artefact does not match the row's "
                       "sha256 (row corrupted or edited) (scored by the fallback)"),
            std::string::npos)
      << s.err;
  EXPECT_EQ(occurrences(s.out, R"("model":"fallback")"), 30u);
  EXPECT_EQ(stored("fallback"), 30) << "scored, stored and the cursor moved on";

  // Edited inside (sha256 column recomputed): the artefact's own checksum catches it,
  // also when the series' model is first looked up while replaying its history.
  EP_ASSERT_OK(c_.run(
      "UPDATE models SET artefact = convert_to(replace(convert_from(substring(artefact FROM 1 "
      "FOR length(artefact) - 1), 'UTF8'), '\"windows\":30', '\"windows\":31'), 'UTF8')"));
  ASSERT_EQ(count(c_, "SELECT count(*) FROM models WHERE position('\"windows\":31' IN "
                      "convert_from(artefact, 'UTF8')) > 0"),
            1);
  EP_ASSERT_OK(c_.run("UPDATE models SET sha256 = encode(sha256(artefact), 'hex')"));
  add_features("d", 30, 35);
  auto s2 = score();
  EXPECT_EQ(s2.status, 65) << s2.err;
  EXPECT_NE(s2.err.find("models table acme/d/m@1: checksum: mismatch"), std::string::npos)
      << s2.err;
  EXPECT_EQ(occurrences(s2.out, R"("model":"fallback")"), 5u);
  EXPECT_EQ(stored("fallback"), 35);
}

TEST_F(ScoreWithTableModels, ModelsOnTheCommandLineOverrideTheTable) {
  add_features("d", 0, 30);
  const std::string dir = base_ + "/models";
  ASSERT_EQ(train(dir).status, 0);
  ASSERT_EQ(train(dir).status, 0);  // @2 in the directory and the table
  EP_ASSERT_OK(c_.run("UPDATE models SET active = (version = 1)"));  // the table rolls back to @1
  auto rescore = [&] { EP_EXPECT_OK(c_.run("DELETE FROM cursors")); };

  auto table = score();
  ASSERT_EQ(table.status, 0) << table.err;
  EXPECT_EQ(occurrences(table.out, R"("model":"acme/d/m@1")"), 30u);

  rescore();
  auto flag = score({"--models", dir});
  ASSERT_EQ(flag.status, 0) << flag.err;
  EXPECT_NE(flag.err.find("models from directory " + dir), std::string::npos) << flag.err;
  EXPECT_EQ(occurrences(flag.out, R"("model":"acme/d/m@2")"), 30u);

  rescore();
  auto flag_eq = score({"--models=" + dir});
  ASSERT_EQ(flag_eq.status, 0) << flag_eq.err;
  EXPECT_EQ(occurrences(flag_eq.out, R"("model":"acme/d/m@2")"), 30u);

  // $MODEL_ARTEFACT_STORE is a files-mode default: with --db the table still decides.
  rescore();
  auto env = score({}, {"MODEL_ARTEFACT_STORE=" + dir});
  ASSERT_EQ(env.status, 0) << env.err;
  EXPECT_EQ(occurrences(env.out, R"("model":"acme/d/m@1")"), 30u);

  // Stdin mode with --db reads the table too.
  auto r = run({EP_SCORE_BIN, "--no-progress", "--db", db_.url()},
               R"({"kind":"window","tenant":"acme","device":"d","metric":"m","start":"2026-01-01T12:00:00Z","end":"2026-01-01T12:00:59Z","n":60,"expected":60,"features":{"mean":10,"max":11}})"
               "\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(occurrences(r.out, R"("model":"acme/d/m@1")"), 1u) << r.out;
}
#endif  // EP_TRAIN_BIN

}  // namespace
