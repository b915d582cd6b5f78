// Rollups kept by ep-load (a process) against real Postgres, compared with a
// from-scratch GROUP BY over datapoints (tests/pgtest/rollups.h) after loads, replays,
// re-sent points, late points and faults; UTC bucket boundaries; exact sums; points past
// raw retention; and `ep-admin rollup rebuild` agreeing bit for bit with the incremental
// result.
#include "load_input.h"
#include "pg_fixture.h"
#include "rollups.h"

namespace {

using eptest::count;
using eptest::join;
using eptest::rollup_mismatches;
using eptest::rollup_snapshot;

constexpr ep::TimeNs kBase = 1767652200LL * ep::kNsPerSec;  // 2026-01-05T22:30:00Z

// n batches from `first`: device dev-(i % 3), 12 points each over 4 metrics, 13 s apart
// per metric, batch i starting at kBase + 37 i s (200 batches cross midnight UTC);
// values with 0 to 17 significant digits, negative ones too.
std::vector<std::string> spread_batches(int n, int first = 0, const std::string& id_tag = "8000") {
  std::vector<std::string> out;
  for (int i = first; i < first + n; ++i) {
    ep::Batch b;
    char id[40];
    std::snprintf(id, sizeof id, "0190a0b0-0000-7000-%s-%012d", id_tag.c_str(), i);
    b.batch_id = id;
    b.tenant = "acme";
    b.device = "dev-" + std::to_string(i % 3);
    b.source = "test";
    b.received_at = kBase + i * 37 * ep::kNsPerSec;
    b.sha256 = std::string(64, '0');
    for (int k = 0; k < 12; ++k) {
      double v = k % 3 == 0 ? (i * 7 + k) / 3.0 - 40 : k % 3 == 1 ? i + k / 1000.0 : -0.1 * k;
      b.points.push_back({"m" + std::to_string(k % 4), b.received_at + (k / 4) * 13 * ep::kNsPerSec, v, "V"});
    }
    out.push_back(ep::to_ndjson(b));
  }
  return out;
}

std::string point(const std::string& device, const std::string& metric, const std::string& ts, const std::string& v) {
  return R"({"kind":"point","tenant":"acme","device":")" + device + R"(","metric":")" + metric + R"(","ts":")" + ts +
         R"(","value":)" + v + "}\n";
}

class Rollup : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    db_.migrate();
    c_ = db_.connect();
    // The fixed 2026-01 timestamps must be within raw retention for rollups to count them.
    EP_ASSERT_OK(c_.run("UPDATE plans SET retention_days = 36500; INSERT INTO tenants (slug) VALUES ('acme'), ('beta')"));
  }
  eptest::RunResult load(const std::string& input, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {EP_LOAD_BIN, "--db", db_.url(), "--no-progress"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return eptest::run(argv, input);
  }
  eptest::RunResult admin(std::vector<std::string> args) {
    std::vector<std::string> argv = {EP_ADMIN_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--db");
    argv.push_back(db_.url());
    return eptest::run(argv);
  }
  std::int64_t total(const char* table) { return count(c_, std::string("SELECT coalesce(sum(n), 0) FROM ") + table); }

  eptest::TempDatabase db_;
  ep::pg::Conn c_;
};

TEST_F(Rollup, IncrementalEqualsReferenceThroughLoadsReplaysAndLatePoints) {
  auto lines = spread_batches(200);
  ASSERT_EQ(load(join(lines, 0, 100), {"--batch-size", "7"}).status, 0);
  EXPECT_EQ(rollup_mismatches(c_), 0);
  EXPECT_EQ(total("rollups_1m"), 1200);
  // Overlapping replay with repeats inside it.
  auto r = load(join(lines, 50, 200) + join(lines, 190, 200), {"--batch-size", "13"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(rollup_mismatches(c_), 0);
  for (const char* t : {"rollups_1m", "rollups_1h", "rollups_1d"}) EXPECT_EQ(total(t), 2400) << t;
  EXPECT_EQ(count(c_, "SELECT count(*) FROM rollups_1d"), 24);  // 12 series x 2 UTC days
  const std::string before = rollup_snapshot(c_);
  // Replays change nothing, by either copy path.
  ASSERT_EQ(load(join(lines)).status, 0);
  ASSERT_EQ(load(join(lines), {"--copy-mode", "staging"}).status, 0);
  EXPECT_EQ(rollup_snapshot(c_), before);
  // The same points under new batch ids (direct COPY conflicts, staging inserts only
  // the one new point), and point records, some of them already present.
  auto resent = spread_batches(3, 10, "9000");
  resent[2].replace(resent[2].find("\"points\":["), 10,
                    R"("points":[{"metric":"extra","ts":"2026-01-05T22:40:00.5Z","value":2.5},)");
  std::string pts = point("dev-0", "m0", "2026-01-05T22:30:00Z", "99") +     // present
                    point("dev-0", "m0", "2026-01-05T22:29:59.25Z", "-7.125") +  // earlier than any: new first
                    point("dev-1", "m1", "2026-01-05T23:59:59.999999Z", "1e-300") +
                    point("dev-1", "m1", "2026-01-06T00:00:00Z", "1e300");
  r = load(join(resent) + pts + pts, {"--batch-size", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("loaded 3 batches and 4 points"), std::string::npos) << r.err;
  EXPECT_EQ(rollup_mismatches(c_), 0);
  EXPECT_EQ(total("rollups_1d"), 2404);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM rollups_1m WHERE first_value = -7.125 AND n = 1"
                      " AND bucket = '2026-01-05T22:29:00Z'"), 1);
  // Late points into existing buckets update them (n, sum, last point).
  const std::string late = point("dev-2", "m3", "2026-01-06T00:30:00.5Z", "0.1");
  r = load(late + late);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(rollup_mismatches(c_), 0);
  EXPECT_EQ(total("rollups_1d"), 2405);
}

TEST_F(Rollup, BucketsAreUtcMinutesHoursAndDays) {
  std::string in = point("d", "m", "2026-01-05T23:59:59.999999Z", "1") + point("d", "m", "2026-01-06T00:00:00Z", "2") +
                   point("d", "m", "2026-01-06T00:00:59.999999Z", "4") + point("d", "m", "2026-01-06T00:01:00Z", "8") +
                   point("d", "m", "2026-01-06T00:59:59.999999Z", "16") + point("d", "m", "2026-01-06T01:00:00Z", "32") +
                   point("d", "m", "2026-01-06T23:59:59.999999Z", "64") +
                   point("d", "m", "2026-01-07T01:00:00+01:00", "128");  // = 2026-01-07T00:00:00Z
  // The loader's own time zone plays no part.
  auto r = eptest::run({EP_LOAD_BIN, "--db", db_.url(), "--no-progress"}, in, {"TZ=Asia/Kolkata", "PGTZ=Asia/Kolkata"});
  ASSERT_EQ(r.status, 0) << r.err;
  EP_ASSERT_OK(c_.run("SET TimeZone = 'Asia/Kolkata'"));  // a half-hour offset
  EXPECT_EQ(rollup_mismatches(c_), 0);
  auto sums = [&](const char* table) {
    auto q = c_.exec(std::string("SELECT string_agg(to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI') || '=' || "
                                 "sum::text, ' ' ORDER BY bucket) FROM ") + table);
    return q ? q->str(0, 0) : q.status().message();
  };
  EXPECT_EQ(sums("rollups_1m"), "2026-01-05T23:59=1 2026-01-06T00:00=6 2026-01-06T00:01=8 2026-01-06T00:59=16 "
                                "2026-01-06T01:00=32 2026-01-06T23:59=64 2026-01-07T00:00=128");
  EXPECT_EQ(sums("rollups_1h"), "2026-01-05T23:00=1 2026-01-06T00:00=30 2026-01-06T01:00=32 2026-01-06T23:00=64 "
                                "2026-01-07T00:00=128");
  EXPECT_EQ(sums("rollups_1d"), "2026-01-05T00:00=1 2026-01-06T00:00=126 2026-01-07T00:00=128");
  EXPECT_EQ(count(c_, "SELECT count(*) FROM rollups_1d WHERE bucket = '2026-01-06T00:00:00Z' AND n = 6 AND min = 2"
                      " AND max = 64 AND first_value = 2 AND last_value = 64 AND sumsq = 5460"
                      " AND last_ts = '2026-01-06T23:59:59.999999Z'"), 1);
}

TEST_F(Rollup, SumsAreExactDecimals) {
  std::string in;
  for (int i = 0; i < 10; ++i) in += point("d", "m", "2026-01-05T10:00:0" + std::to_string(i) + "Z", "0.1");
  in += point("d", "big", "2026-01-05T10:00:00Z", "1e300") + point("d", "big", "2026-01-05T10:00:01Z", "-1e-300") +
        point("d", "big", "2026-01-05T10:00:02Z", "0.3333333333333333");
  ASSERT_EQ(load(in, {"--batch-size", "3"}).status, 0);
  EXPECT_EQ(rollup_mismatches(c_), 0);
  auto r = c_.exec("SELECT r.sum::text, r.sumsq::text FROM rollups_1h r JOIN metrics m USING (tenant_id, metric_id)"
                   " WHERE m.name = 'm'");
  ASSERT_TRUE(r && r->size() == 1);
  EXPECT_EQ(r->str(0, 0), "1.0");
  EXPECT_EQ(r->str(0, 1), "0.10");
  // Text and scale equal the reference's too (EXCEPT compares values only).
  EP_ASSERT_OK(c_.run("SET extra_float_digits = 1"));
  EXPECT_EQ(count(c_, "SELECT count(*) FROM rollups_1m r JOIN (" + eptest::rollup_reference(eptest::kRollupLevels[0]) +
                          ") f USING (tenant_id, metric_id, bucket) WHERE r.sum::text = f.sum::text"
                          " AND r.sumsq::text = f.sumsq::text"), 2);
}

TEST_F(Rollup, PointsPastRawRetentionAreLoadedButNotCounted) {
  // After retention removed a point, a replay inserts it again: counting it would double
  // it in rollups that outlive raw points. Plan keeps raw points 2 days.
  EP_ASSERT_OK(c_.run("INSERT INTO plans (name, retention_days) VALUES ('short', 2);"
                      " UPDATE tenants SET plan = 'short' WHERE slug = 'acme'"));
  const ep::TimeNs now = ep::now_ns();
  std::string in = point("d", "m", ep::format_rfc3339(now - 3 * 86400 * ep::kNsPerSec), "1") +
                   point("d", "m", ep::format_rfc3339(now - 86400 * ep::kNsPerSec), "2");
  ASSERT_EQ(load(in).status, 0);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 2);
  EXPECT_EQ(total("rollups_1m"), 1);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM rollups_1m WHERE sum = 2"), 1);
  EXPECT_EQ(rollup_mismatches(c_, "ts >= now() - interval '2 days'"), 0);
}

TEST_F(Rollup, NoRollupsLeavesThemAndRebuildAgreesExactly) {
  auto lines = spread_batches(120);
  ASSERT_EQ(load(join(lines, 0, 80), {"--batch-size", "9"}).status, 0);
  ASSERT_EQ(load(point("d", "m", "2026-01-06T00:10:00Z", "3.75")).status, 0);
  // beta's rollups are not touched by a rebuild of acme.
  ASSERT_EQ(load(R"({"kind":"point","tenant":"beta","device":"d","metric":"m","ts":"2026-01-05T23:00:00Z","value":1})" "\n").status, 0);
  EXPECT_EQ(rollup_mismatches(c_), 0);
  const std::string incremental = rollup_snapshot(c_);
  const std::vector<std::string> range = {"--since", "2026-01-04", "--until", "2026-01-07T12:00:00Z", "--now", "2026-01-10"};
  auto rebuild = [&](std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"rollup", "rebuild", "--json"};
    a.insert(a.end(), range.begin(), range.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return admin(a);
  };
  auto r = rebuild();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(R"({"tenant":"acme","from":"2026-01-04","until":"2026-01-08","days":4,)"), std::string::npos) << r.out;
  EXPECT_EQ(rollup_snapshot(c_), incremental);
  // From nothing: the same bits.
  EP_ASSERT_OK(c_.run("DELETE FROM rollups_1m; DELETE FROM rollups_1h; DELETE FROM rollups_1d"));
  ASSERT_EQ(rebuild().status, 0);
  EXPECT_EQ(rollup_snapshot(c_), incremental);
  // --no-rollups loads points only; a rebuild of acme brings the rollups up to date.
  ASSERT_EQ(load(join(lines, 80, 120), {"--no-rollups"}).status, 0);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 120 * 12 + 2);
  EXPECT_EQ(total("rollups_1d"), 80 * 12 + 2);
  EXPECT_GT(rollup_mismatches(c_), 0);
  EP_ASSERT_OK(c_.run("UPDATE rollups_1d SET n = n + 100 WHERE tenant_id = (SELECT tenant_id FROM tenants WHERE slug = 'beta')"));
  r = rebuild({"--tenant", "acme"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(rollup_mismatches(c_, "tenant_id <> (SELECT tenant_id FROM tenants WHERE slug = 'beta')",
                              "tenant_id <> (SELECT tenant_id FROM tenants WHERE slug = 'beta')"), 0);
  EXPECT_EQ(total("rollups_1d"), 120 * 12 + 2 + 100);
  // Loading the same again with rollups on changes nothing (nothing is inserted).
  const std::string rebuilt = rollup_snapshot(c_);
  ASSERT_EQ(load(join(lines)).status, 0);
  EXPECT_EQ(rollup_snapshot(c_), rebuilt);
}

TEST_F(Rollup, RebuildRacingALoaderMissesAndDoublesNothing) {
  // Small transactions of a loader while rebuilds of the same days run back to back:
  // the tenant lock orders each rebuilt day against every load transaction.
  eptest::Proc loader({EP_LOAD_BIN, "--db", db_.url(), "--no-progress", "--batch-size", "3"});
  loader.write(join(spread_batches(300)));
  loader.close_stdin();
  int rebuilds = 0;
  std::vector<std::string> a = {EP_ADMIN_BIN, "rollup", "rebuild", "--since", "2026-01-05", "--until", "2026-01-07",
                                "--now", "2026-01-10", "--db", db_.url()};
  // Until the loader says it is done (its summary line), at most 1000 rebuilds.
  while (loader.err_so_far().find("summary:") == std::string::npos && rebuilds < 1000) {
    auto r = eptest::run(a);
    ASSERT_EQ(r.status, 0) << r.err;
    ++rebuilds;
  }
  ASSERT_EQ(loader.wait(), 0) << loader.err();
  EXPECT_GE(rebuilds, 1);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 300 * 12);
  EXPECT_EQ(rollup_mismatches(c_), 0);
  EXPECT_EQ(total("rollups_1d"), 300 * 12);
}

TEST_F(Rollup, RebuildNeverGoesBeforeRawRetention) {
  ASSERT_EQ(load(join(spread_batches(40))).status, 0);
  const std::string kept = rollup_snapshot(c_);
  // Raw retention of 2 days at --now 2026-01-08T06:00Z: 2026-01-06T06:00Z, so only days
  // from 2026-01-07 are rebuilt; the raw points of 2026-01-05 are deleted first.
  EP_ASSERT_OK(c_.run("UPDATE plans SET retention_days = 2; DELETE FROM datapoints WHERE ts < '2026-01-06'"));
  auto r = admin({"rollup", "rebuild", "--since", "2026-01-01", "--now", "2026-01-08T06:00:00Z"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("tenant 'acme' keeps raw points 2 days: rebuilding from 2026-01-07, not 2026-01-01"),
            std::string::npos) << r.err;
  EXPECT_EQ(rollup_snapshot(c_), kept);
}

}  // namespace
