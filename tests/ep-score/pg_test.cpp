// ep-score --db against a real Postgres (pg_virtualenv sets PGHOST etc.): scores stored
// in anomaly_scores exactly once, unknown series reported, unreachable server -> 69,
// --since-last with its cursor.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "pg_fixture.h"

namespace {

using eptest::count;
using eptest::eventually;
using eptest::run;

std::string window(const std::string& tenant, const std::string& device, const std::string& metric,
                   int i, double max) {
  std::ostringstream s;
  s << R"({"kind":"window","tenant":")" << tenant << R"(","device":")" << device
    << R"(","metric":")" << metric << R"(","start":"2026-01-01T10:)" << (i < 10 ? "0" : "") << i
    << R"(:00Z","end":"2026-01-01T10:)" << (i < 10 ? "0" : "") << i
    << R"(:59Z","n":60,"expected":60,"features":{"mean":)" << 10 + (i % 3) * 0.1
    << R"(,"max":)" << max + (i % 5) * 0.1 << "}}\n";
  return s.str();
}

std::size_t lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

class ScorePg : public eptest::SeriesDbTest {
 protected:
  std::vector<std::string> score(std::vector<std::string> args) {
    args.insert(args.begin(), {EP_SCORE_BIN, "--no-progress"});
    return args;
  }
  // Inserts features rows for windows [from, to) of acme/d/m in one transaction.
  void add_features(int from, int to, double spike_at = -1) {
    for (int i = from; i < to; ++i) {
      double max = i == spike_at ? 60 : 11 + (i % 5) * 0.1;
      EP_ASSERT_OK(c_.run(
          "INSERT INTO features (tenant_id, metric_id, window_start, window_end, n, expected, features) "
          "VALUES ($1, $2, timestamptz '2026-01-01 10:00Z' + make_interval(mins => $3), "
          "timestamptz '2026-01-01 10:00:59Z' + make_interval(mins => $3), 60, 60, "
          "jsonb_build_object('mean', 10 + ($3 % 3) * 0.1, 'max', $4::float8))",
          {tenant_id_, metric_id_, i, max}));
    }
  }
};

TEST_F(ScorePg, StoresEveryScoreExactlyOnceWhenRunTwice) {
  std::string in;
  for (int i = 0; i < 30; ++i) in += window("acme", "d", "m", i, i == 25 ? 60 : 11);
  for (int pass = 0; pass < 2; ++pass) {
    auto r = run(score({"--db", db_.url()}), in);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(lines(r.out), 30u) << "score records are still echoed on stdout";
    EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores"), 30);
  }
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores WHERE tenant_id = '" + tenant_id_ +
                          "' AND metric_id = '" + metric_id_ + "'"),
            30);
  // The spike is stored as anomalous, with its explanation, label and model.
  auto a = c_.exec(
      "SELECT label, model, status, explanation->0->>'feature', window_start "
      "FROM anomaly_scores WHERE anomaly ORDER BY window_end");
  ASSERT_TRUE(a.is_ok());
  ASSERT_EQ(a->size(), 1);
  EXPECT_EQ(a->str(0, 0), "spike");
  EXPECT_EQ(a->str(0, 1), "fallback");
  EXPECT_EQ(a->str(0, 2), "warming");
  EXPECT_EQ(a->str(0, 3), "max");
  EXPECT_EQ(a->str(0, 4), "2026-01-01 10:25:00+00");
  // Usage counts windows stored for the first time: the re-run adds nothing.
  EXPECT_EQ(count(c_, "SELECT coalesce(sum(windows_scored), 0) FROM usage_daily"), 30);
}

TEST_F(ScorePg, ScoresOfAPausedStreamAreStoredBeforeItEnds) {
  eptest::Proc p({EP_SCORE_BIN, "--no-progress", "--db", db_.url()});
  std::string in;
  for (int i = 0; i < 7; ++i) in += window("acme", "d", "m", i, 11);
  ASSERT_TRUE(p.write(in));
  // stdin stays open: the batch is far from full, the pause alone must store it.
  EXPECT_TRUE(eventually([&] { return count(c_, "SELECT count(*) FROM anomaly_scores") == 7; }))
      << p.err_so_far();
  p.close_stdin();
  EXPECT_EQ(p.wait(), 0) << p.err();
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores"), 7);
}

TEST_F(ScorePg, SameWindowTwiceInOneInputIsStoredOnceWithTheLastScore) {
  std::string in;
  for (int i = 0; i < 20; ++i) in += window("acme", "d", "m", i, 11);
  in += window("acme", "d", "m", 5, 11);
  auto r = run(score({"--db", db_.url(), "--fallback-min", "2"}), in);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores"), 20);
}

TEST_F(ScorePg, UnknownTenantOrSeriesIsReportedAndNotStored) {
  std::string in;
  for (int i = 0; i < 10; ++i) in += window("acme", "d", "m", i, 11);
  in += window("acme", "d", "nope", 1, 11);
  in += window("ghost", "d", "m", 1, 11);
  auto r = run(score({"--db", db_.url()}), in);
  EXPECT_EQ(r.status, 65) << r.err;
  EXPECT_EQ(lines(r.out), 12u);
  EXPECT_NE(r.err.find("acme/d/nope"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ghost/d/m"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 windows of series unknown"), std::string::npos) << r.err;
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores"), 10);
}

TEST_F(ScorePg, UnreachablePostgresExits69) {
  std::string url = "host=127.0.0.1 port=" + std::to_string(eptest::free_port()) +
                    " dbname=x connect_timeout=3";
  auto r = run(score({"--db", url}), window("acme", "d", "m", 1, 11));
  EXPECT_EQ(r.status, 69) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(ScorePg, SinceLastNeedsTenantAndDb) {
  EXPECT_EQ(run(score({"--since-last", "--tenant", "acme"})).status, 64);
  EXPECT_EQ(run(score({"--db", db_.url(), "--since-last"})).status, 64);
  auto r = run(score({"--db", db_.url(), "--since-last", "--tenant", "nobody"}));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("nobody"), std::string::npos) << r.err;
}

TEST_F(ScorePg, SinceLastScoresOnlyWhatIsNewAndAdvancesTheCursor) {
  add_features(0, 20);
  auto sl = score({"--db", db_.url(), "--since-last", "--tenant", "acme"});
  auto r1 = run(sl);
  ASSERT_EQ(r1.status, 0) << r1.err;
  EXPECT_EQ(lines(r1.out), 20u);
  EXPECT_NE(r1.out.find(R"("start":"2026-01-01T10:00:00)"), std::string::npos) << r1.out;
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores"), 20);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM cursors WHERE name = 'ep-score' AND position IS NOT NULL"), 1);

  auto r2 = run(sl);
  ASSERT_EQ(r2.status, 0) << r2.err;
  EXPECT_EQ(r2.out, "") << "nothing new since the cursor";
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores"), 20);

  // New windows, one of them a spike: only they are scored, and the series' earlier
  // windows serve as the fallback's history (the spike is caught in a 5-window run).
  add_features(20, 25, 23);
  auto r3 = run(sl);
  ASSERT_EQ(r3.status, 0) << r3.err;
  EXPECT_EQ(lines(r3.out), 5u) << r3.out;
  EXPECT_EQ(r3.out.find(R"("start":"2026-01-01T10:19:00)"), std::string::npos) << r3.out;
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores"), 25);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores WHERE anomaly AND "
                      "window_start = '2026-01-01 10:23Z'"),
            1);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores WHERE anomaly"), 1);
}

TEST_F(ScorePg, SinceLastWaitsForRowsOfTransactionsStillRunning) {
  add_features(0, 3);
  // A writer that started before these rows commit: its rows carry its start time.
  auto w = db_.connect();
  EP_ASSERT_OK(w.begin());
  EP_ASSERT_OK(w.run(
      "INSERT INTO features (tenant_id, metric_id, window_start, window_end, n, expected, features) "
      "VALUES ($1, $2, '2026-01-02 00:00Z', '2026-01-02 00:00:59Z', 60, 60, '{\"mean\":10}')",
      {tenant_id_, metric_id_}));
  add_features(3, 6);  // committed, but created after the open transaction began
  auto sl = score({"--db", db_.url(), "--since-last", "--tenant", "acme"});
  auto r1 = run(sl);
  ASSERT_EQ(r1.status, 0) << r1.err;
  EXPECT_EQ(lines(r1.out), 3u) << "stops before the open transaction's start: " << r1.out;
  EP_ASSERT_OK(w.commit());
  auto r2 = run(sl);
  ASSERT_EQ(r2.status, 0) << r2.err;
  EXPECT_EQ(lines(r2.out), 4u) << r2.out;
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores"), 7);
}

}  // namespace

TEST_F(ScorePg, SinceLastWithStateContinuesStreamModeAcrossCronRuns) {
  // Stream mode needs 100 windows of history before its likelihood scores; a cron run
  // sees a few new ones. --state carries what the series learnt: the second run scores
  // exactly as one run over all windows would, and catches the spike.
  const std::string state = ::testing::TempDir() + "/ep_score_pg_state_" + db_.name();
  std::remove(state.c_str());
  auto sl = score({"--db", db_.url(), "--since-last", "--tenant", "acme", "--stream",
                   "--likelihood-min", "100", "--novelty-after", "100", "--state", state});
  add_features(0, 150);
  auto r1 = run(sl);
  ASSERT_EQ(r1.status, 0) << r1.err;
  EXPECT_EQ(lines(r1.out), 150u);
  add_features(150, 200, 180);
  auto r2 = run(sl);
  ASSERT_EQ(r2.status, 0) << r2.err;
  EXPECT_EQ(lines(r2.out), 50u);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores WHERE anomaly AND "
                      "window_start = '2026-01-01 13:00Z'"),
            1);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM anomaly_scores"), 200);
  // One run over all 200 windows, without a state, from a reset cursor.
  EP_ASSERT_OK(c_.run("DELETE FROM cursors"));
  sl.resize(sl.size() - 2);  // drop --state FILE
  auto whole = run(sl);
  ASSERT_EQ(whole.status, 0) << whole.err;
  ASSERT_EQ(lines(whole.out), 200u);
  std::size_t at = 0;
  for (int i = 0; i < 150; ++i) at = whole.out.find('\n', at) + 1;
  EXPECT_EQ(r2.out, whole.out.substr(at));
  std::remove(state.c_str());
}
