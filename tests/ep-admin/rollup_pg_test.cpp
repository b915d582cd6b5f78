// ep-admin and rollups: plan options per resolution, retention of each rollup table by
// its own plan column, and `rollup rebuild` from raw points equal to a from-scratch
// GROUP BY (tests/pgtest/rollups.h), one tenant at a time.
#include "pg_fixture.h"
#include "rollups.h"

namespace {

using eptest::count;

eptest::RunResult admin(std::vector<std::string> args, const std::string& db) {
  std::vector<std::string> argv = {EP_ADMIN_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--db");
  argv.push_back(db);
  return eptest::run(argv);
}

TEST(AdminRollup, PlanRetentionPerResolution) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  db.migrate();
  auto r = admin({"plan", "add", "pro", "--retention-days", "14", "--retention-1m-days", "30"}, db.url());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("retention_days=14 retention_1m_days=30 retention_1h_days=730 retention_1d_days=1825"),
            std::string::npos) << r.err;
  r = admin({"plan", "set", "pro", "--retention-1h-days", "400", "--retention-1d-days", "3650"}, db.url());
  ASSERT_EQ(r.status, 0) << r.err;
  r = admin({"plan", "list", "--json"}, db.url());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(R"("plan":"pro","points_per_minute":60000,"max_series":1000,"retention_days":14,)"
                       R"("retention_1m_days":30,"retention_1h_days":400,"retention_1d_days":3650,"tenants":0)"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("plan":"default","points_per_minute":60000,"max_series":1000,"retention_days":30,)"
                       R"("retention_1m_days":90,"retention_1h_days":730,"retention_1d_days":1825)"),
            std::string::npos) << r.out;
  for (const char* bad : {"--retention-1m-days", "--retention-1h-days", "--retention-1d-days"}) {
    r = admin({"plan", "set", "pro", bad, "0"}, db.url());
    EXPECT_EQ(r.status, 64) << bad;
    EXPECT_NE(r.err.find(std::string(bad) + " must be > 0"), std::string::npos) << r.err;
  }
}

TEST(AdminRollup, RetentionRemovesEachResolutionByItsOwnPlanColumn) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  db.migrate();
  ASSERT_EQ(admin({"plan", "add", "p", "--retention-days", "2", "--retention-1m-days", "3", "--retention-1h-days",
                   "5", "--retention-1d-days", "10"}, db.url()).status, 0);
  ASSERT_EQ(admin({"tenant", "add", "a", "--plan", "p"}, db.url()).status, 0);
  ASSERT_EQ(admin({"tenant", "add", "b"}, db.url()).status, 0);  // default plan: keeps everything here
  auto c = db.connect();
  auto ids = eptest::create_series(c, "a", "d", "m");
  auto idb = eptest::create_series(c, "b", "d", "m");
  // One bucket a day for 12 days before 2026-03-01 in every table, for both tenants.
  for (const char* t : {"rollups_1m", "rollups_1h", "rollups_1d"})
    EP_ASSERT_OK(c.run(std::string("INSERT INTO ") + t + " SELECT tenant_id, metric_id,"
                       " '2026-03-01T00:00:00Z'::timestamptz - make_interval(days => d), 1, 1, 1, 1, 1,"
                       " '2026-03-01T00:00:00Z'::timestamptz - make_interval(days => d), 1,"
                       " '2026-03-01T00:00:00Z'::timestamptz - make_interval(days => d), 1"
                       " FROM metrics, generate_series(1, 12) AS d"));
  auto dry = admin({"retention", "--now", "2026-03-01T00:00:00Z", "--dry-run", "--json"}, db.url());
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find(R"({"tenant":"a","table":"rollups_1m","retention_days":3,"cutoff":"2026-02-26T00:00:00.000Z","would_remove":9})"),
            std::string::npos) << dry.out;
  EXPECT_EQ(count(c, "SELECT count(*) FROM rollups_1m"), 24);
  auto r = admin({"retention", "--now", "2026-03-01T00:00:00Z", "--chunk", "2", "--json"}, db.url());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(R"({"tenant":"a","table":"rollups_1h","retention_days":5,"cutoff":"2026-02-24T00:00:00.000Z","removed":7})"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"({"tenant":"a","table":"rollups_1d","retention_days":10,"cutoff":"2026-02-19T00:00:00.000Z","removed":2})"),
            std::string::npos) << r.out;
  // A bucket starting at the cutoff stays: a keeps days 1..3, 1..5, 1..10; b all 12.
  auto kept = [&](const char* t, const std::string& tid) {
    return count(c, std::string("SELECT count(*) FROM ") + t + " WHERE tenant_id = '" + tid + "'");
  };
  EXPECT_EQ(kept("rollups_1m", ids.tenant_id), 3);
  EXPECT_EQ(kept("rollups_1h", ids.tenant_id), 5);
  EXPECT_EQ(kept("rollups_1d", ids.tenant_id), 10);
  for (const char* t : {"rollups_1m", "rollups_1h", "rollups_1d"}) EXPECT_EQ(kept(t, idb.tenant_id), 12) << t;
  EXPECT_EQ(count(c, "SELECT count(*) FROM rollups_1m WHERE tenant_id = '" + ids.tenant_id +
                         "' AND bucket < '2026-02-26T00:00:00Z'"), 0);
}

TEST(AdminRollup, RebuildEqualsTheReferenceForOneTenant) {
  eptest::TempDatabase db;
  ASSERT_TRUE(db.ok());
  db.migrate();
  auto c = db.connect();
  EP_ASSERT_OK(c.run("UPDATE plans SET retention_days = 36500"));
  auto a = eptest::create_series(c, "a", "d", "m");
  auto a2 = eptest::create_series(c, "a", "d", "n");
  auto b = eptest::create_series(c, "b", "d", "m");
  EP_ASSERT_OK(c.run("SELECT edgepulse_ensure_day_partition(d::date) FROM generate_series('2026-01-04'::date,"
                     " '2026-01-07'::date, interval '1 day') d"));
  // 7 s apart across midnight, values with up to 17 digits and both signs.
  EP_ASSERT_OK(c.run("INSERT INTO datapoints SELECT m.tenant_id, m.metric_id,"
                     " '2026-01-05T23:00:00Z'::timestamptz + make_interval(secs => 7 * i + 0.000001 * i),"
                     " (i % 17) / 3.0 - 2.5 + (i % 5) * 1e-9 FROM metrics m, generate_series(0, 1200) AS i"));
  auto r = admin({"rollup", "rebuild", "--tenant", "a", "--since", "2026-01-05T23:30:00Z", "--until", "2026-01-06T01:00:00Z",
                  "--now", "2026-01-08"}, db.url());
  ASSERT_EQ(r.status, 0) << r.err;
  // The range widened to whole UTC days.
  EXPECT_NE(r.out.find("2026-01-05  2026-01-07  2"), std::string::npos) << r.out;
  const std::string only_a = "tenant_id = '" + a.tenant_id + "'";
  EXPECT_EQ(eptest::rollup_mismatches(c, only_a, only_a), 0);
  EXPECT_EQ(count(c, "SELECT count(*) FROM rollups_1d WHERE tenant_id = '" + b.tenant_id + "'"), 0);
  EXPECT_EQ(count(c, "SELECT sum(n) FROM rollups_1h WHERE metric_id = '" + a2.metric_id + "'"), 1201);
  // Stale rows in the range are replaced, rows of b are not touched.
  EP_ASSERT_OK(c.run("UPDATE rollups_1m SET n = 99, sum = 0 WHERE " + only_a));
  r = admin({"rollup", "rebuild", "--now", "2026-01-08"}, db.url());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(eptest::rollup_mismatches(c), 0);
  r = admin({"rollup", "rebuild", "--since", "2026-01-07", "--until", "2026-01-06"}, db.url());
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("--since must be before --until"), std::string::npos) << r.err;
  r = admin({"rollup", "rebuild", "--since", "yesterday"}, db.url());
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("--since 'yesterday' is not a date"), std::string::npos) << r.err;
}

}  // namespace
