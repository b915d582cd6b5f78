// ep-train --db against a real Postgres (pg_virtualenv): trains from the features
// table, leaves out windows flagged anomalous in anomaly_scores, records models in the
// models table next to the artefacts in --models DIR.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "ep/crypto.h"
#include "ep/model.h"
#include "pg_fixture.h"

namespace {

using eptest::count;
using eptest::run;

class TrainPg : public eptest::SeriesDbTest {
 protected:
  void SetUp() override {
    eptest::SeriesDbTest::SetUp();
    if (HasFatalFailure()) return;
    // 60 ordinary windows (minutes 0..59), then 5 with a huge max (minutes 60..64).
    EP_ASSERT_OK(c_.run(
        "INSERT INTO features (tenant_id, metric_id, window_start, window_end, n, expected, features) "
        "SELECT $1, $2, timestamptz '2026-01-01 10:00Z' + make_interval(mins => i), "
        "timestamptz '2026-01-01 10:00:59Z' + make_interval(mins => i), 60, 60, "
        "jsonb_build_object('mean', 10 + (i % 7) * 0.1, 'max', CASE WHEN i >= 60 THEN 1000 "
        "ELSE 11 + (i % 5) * 0.1 END) FROM generate_series(0, 64) i",
        {tenant_id_, metric_id_}));
    models_ = ::testing::TempDir() + "/ep_train_pg_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(models_);
  }
  void TearDown() override { std::filesystem::remove_all(models_); }
  // Flags windows [from, to] (minutes) in anomaly_scores with the given anomaly value.
  void flag(int from, int to, bool anomaly) {
    EP_ASSERT_OK(c_.run(
        "INSERT INTO anomaly_scores (tenant_id, metric_id, window_start, window_end, score, anomaly, model) "
        "SELECT tenant_id, metric_id, window_start, window_end, CASE WHEN $5 THEN 0.9 ELSE 0.1 END, $5, 'fallback' "
        "FROM features WHERE tenant_id = $1 AND metric_id = $2 AND window_start >= "
        "timestamptz '2026-01-01 10:00Z' + make_interval(mins => $3) AND window_start <= "
        "timestamptz '2026-01-01 10:00Z' + make_interval(mins => $4)",
        {tenant_id_, metric_id_, from, to, anomaly}));
  }
  std::vector<std::string> train(std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {EP_TRAIN_BIN, "--no-progress", "--db", db_.url(), "--tenant",
                                  "acme", "--models", models_, "--min-windows", "10"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // The artefact of the latest version in the models table, parsed and checked.
  ep::model::Model latest() {
    auto r = c_.exec(
        "SELECT convert_from(artefact, 'UTF8'), sha256, metric_id, version FROM models "
        "WHERE tenant_id = $1 AND name = 'd/m' ORDER BY version DESC LIMIT 1",
        {tenant_id_});
    EXPECT_TRUE(r.is_ok() && r->size() == 1);
    if (!r.is_ok() || r->size() != 1) return {};
    EXPECT_EQ(r->str(0, 1), ep::crypto::sha256_hex(r->get(0, 0)));
    EXPECT_EQ(r->str(0, 2), metric_id_);
    auto m = ep::model::parse(r->get(0, 0), "models table");
    EXPECT_TRUE(m.is_ok()) << m.status().message();
    if (!m) return {};
    EXPECT_EQ(m->version, r->get_int(0, 3));
    return std::move(m).value();
  }

  std::string models_;
};

TEST_F(TrainPg, WindowsFlaggedAnomalousAreLeftOut) {
  flag(60, 64, true);   // the incident
  flag(0, 4, false);    // scored but normal: still used
  auto r = run(train());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.err.find("5 flagged anomalous left out"), std::string::npos) << r.err;
  ep::model::Model m = latest();
  EXPECT_EQ(m.windows, 60);
  EXPECT_EQ(ep::format_rfc3339(m.trained_to), "2026-01-01T10:59:59.000Z");
  // The same artefact is in the model store ep-score reads.
  auto stored = ep::model::Store(models_).load({"acme", "d", "m"});
  ASSERT_TRUE(stored.is_ok()) << stored.status().message();
  EXPECT_EQ(stored->version, m.version);
  EXPECT_EQ(stored->windows, 60);
}

TEST_F(TrainPg, WithoutFlagsEveryWindowIsUsed) {
  auto r = run(train());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(latest().windows, 65);
}

TEST_F(TrainPg, RangeAndRetrainingMakeANewActiveVersion) {
  auto r1 = run(train({"--from", "2026-01-01T10:10:00Z", "--to", "2026-01-01T10:40:00Z"}));
  ASSERT_EQ(r1.status, 0) << r1.err;
  EXPECT_EQ(latest().windows, 30);  // minutes 10..39 end by 10:39:59
  auto r2 = run(train());
  ASSERT_EQ(r2.status, 0) << r2.err;
  ep::model::Model m = latest();
  EXPECT_EQ(m.version, 2);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM models WHERE active"), 1);
  EXPECT_EQ(count(c_, "SELECT version FROM models WHERE active"), 2);
}

TEST_F(TrainPg, ASecondTrainerHostContinuesTheTablesVersions) {
  // Host A trains twice (v1, v2); host B, with an empty --models directory, trains next:
  // its model is v3 (not a second v1), active, and A's rows are kept.
  ASSERT_EQ(run(train()).status, 0);
  ASSERT_EQ(run(train()).status, 0);
  std::filesystem::remove_all(models_);
  auto r = run(train());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(R"("version":3)"), std::string::npos) << r.out;
  EXPECT_EQ(latest().version, 3);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM models"), 3);
  EXPECT_EQ(count(c_, "SELECT version FROM models WHERE active"), 3);
  EXPECT_TRUE(std::filesystem::exists(models_ + "/acme/d/m/3.json"));
}

#ifdef EP_SCORE_BIN
TEST_F(TrainPg, RoundTripTrainScoreSinceLastRetrainWithoutTheIncident) {
  auto t1 = run(train());
  ASSERT_EQ(t1.status, 0) << t1.err;
  auto s = run({EP_SCORE_BIN, "--no-progress", "--db", db_.url(), "--since-last", "--tenant",
                "acme", "--models", models_});
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_EQ(std::count(s.out.begin(), s.out.end(), '\n'), 65);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores WHERE model = 'acme/d/m@1'"), 65)
      << "every window scored by the model ep-train --db stored";
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores WHERE anomaly AND window_start >= "
                      "'2026-01-01 11:00Z'"),
            5)
      << s.out;
  // Retraining leaves the incident out.
  auto t2 = run(train());
  ASSERT_EQ(t2.status, 0) << t2.err;
  EXPECT_EQ(latest().windows, 65 - count(c_, "SELECT count(*) FROM anomaly_scores WHERE anomaly"));
  EXPECT_LE(latest().windows, 60);
}
#endif

TEST_F(TrainPg, MisuseAndUnreachable) {
  EXPECT_EQ(run({EP_TRAIN_BIN, "--db", db_.url(), "--models", models_}).status, 64)
      << "--db needs --tenant";
  EXPECT_EQ(run({EP_TRAIN_BIN, "--tenant", "acme", "--models", models_}).status, 64);
  auto r = run({EP_TRAIN_BIN, "--db", db_.url(), "--tenant", "nobody", "--models", models_});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("nobody"), std::string::npos) << r.err;
  std::string url = "host=127.0.0.1 port=" + std::to_string(eptest::free_port()) +
                    " dbname=x connect_timeout=3";
  EXPECT_EQ(run({EP_TRAIN_BIN, "--db", url, "--tenant", "acme", "--models", models_}).status, 69);
}

}  // namespace
