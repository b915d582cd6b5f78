// ep-load as a process against real Postgres: idempotency, replay, rejects, --emit,
// SIGKILL mid-stream, two loaders, Postgres stopped and restarted mid-load.
#include "load_input.h"
#include "pg_fixture.h"

namespace {

using eptest::count;
using eptest::join;
using eptest::make_batches;

class Load : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    db_.migrate();
    c_ = db_.connect();
    EP_ASSERT_OK(c_.run("INSERT INTO tenants (slug) VALUES ('acme'), ('beta')"));
  }
  eptest::RunResult load(const std::string& input, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {EP_LOAD_BIN, "--db", db_.url(), "--no-progress"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return eptest::run(argv, input);
  }
  std::int64_t rows() { return count(c_, "SELECT count(*) FROM datapoints"); }
  std::int64_t distinct_keys() {
    return count(c_, "SELECT count(*) FROM (SELECT DISTINCT tenant_id, metric_id, ts FROM datapoints) k");
  }
  // Rows equal exactly the points of batches [0, n) of make_batches(n, points).
  void expect_exactly(int n, int points) {
    EXPECT_EQ(rows(), static_cast<std::int64_t>(n) * points);
    EXPECT_EQ(distinct_keys(), rows());
    EXPECT_EQ(count(c_, "SELECT count(*) FROM ingest_batches WHERE status = 'loaded'"), n);
    EXPECT_EQ(count(c_, "SELECT coalesce(sum(points_ingested), 0) FROM usage_daily"), rows());
    EXPECT_EQ(count(c_, "SELECT coalesce(sum(batches), 0) FROM usage_daily"), n);
    // Every batch is whole: its points are exactly its count.
    EXPECT_EQ(count(c_, "SELECT coalesce(sum(points), 0) FROM ingest_batches"), rows());
  }

  eptest::TempDatabase db_;
  ep::pg::Conn c_;
};

TEST_F(Load, SameInputTwiceLeavesOneCopy) {
  auto input = join(make_batches(50, 20));
  auto r1 = load(input, {"--batch-size", "7"});
  ASSERT_EQ(r1.status, 0) << r1.err;
  expect_exactly(50, 20);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM devices"), 3);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM metrics"), 12);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM metrics WHERE unit = 'V'"), 12);
  auto r2 = load(input);
  ASSERT_EQ(r2.status, 0) << r2.err;
  EXPECT_NE(r2.err.find("loaded 0 batches and 0 points"), std::string::npos) << r2.err;
  EXPECT_NE(r2.err.find("skipped 50 batches already loaded"), std::string::npos) << r2.err;
  expect_exactly(50, 20);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM devices"), 3);
}

TEST_F(Load, PointsGoToDayPartitionsOrTheDefault) {
  // Today's points get a day partition; a stray timestamp from 1999 goes to the default.
  std::string today = ep::format_rfc3339(ep::now_ns());
  std::string input =
      R"({"kind":"point","tenant":"acme","device":"d","metric":"t","ts":")" + today + R"(","value":1})" "\n"
      R"({"kind":"point","tenant":"acme","device":"d","metric":"t","ts":"1999-12-31T23:59:59Z","value":2})" "\n";
  auto r = load(input);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints_default"), 1);
  std::string part = "datapoints_p" + today.substr(0, 4) + today.substr(5, 2) + today.substr(8, 2);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM " + part), 1);
  // Loading again: one copy each, whichever partition holds it.
  r = load(input);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(rows(), 2);
}

TEST_F(Load, OverlappingReplayLoadsOnlyTheRest) {
  auto lines = make_batches(100, 10);
  ASSERT_EQ(load(join(lines, 0, 60)).status, 0);
  expect_exactly(60, 10);
  // The replay overlaps 30..59, and repeats some batches inside itself.
  auto r = load(join(lines, 30, 100) + join(lines, 90, 100), {"--batch-size", "13"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("loaded 40 batches and 400 points"), std::string::npos) << r.err;
  expect_exactly(100, 10);
}

TEST_F(Load, PointRecordsAreIdempotentPerPoint) {
  std::string pts;
  for (int i = 0; i < 30; ++i)
    pts += R"({"kind":"point","tenant":"acme","device":"p1","metric":"t","ts":"2026-01-05T10:00:)" +
           std::string(i < 10 ? "0" : "") + std::to_string(i) + R"(Z","value":)" + std::to_string(i) + "}\n";
  // Duplicates inside one input, then the same input again.
  auto r = load(pts + pts, {"--batch-size", "8"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(rows(), 30);
  r = load(pts);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("loaded 0 batches and 0 points"), std::string::npos) << r.err;
  EXPECT_EQ(rows(), 30);
  EXPECT_EQ(count(c_, "SELECT sum(points_ingested) FROM usage_daily"), 30);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM ingest_batches"), 0);
}

TEST_F(Load, NewBatchCarryingExistingPointsKeepsOneCopy) {
  auto lines = make_batches(5, 8);
  ASSERT_EQ(load(join(lines)).status, 0);
  // Same points under new batch ids (e.g. a device re-sent them), plus one new point.
  std::string again;
  for (int i = 0; i < 5; ++i) {
    std::string l = lines[i];
    auto pos = l.find("0190a0b0-0000-7000-8000-");
    l.replace(pos, 36, "0190a0b0-0000-7000-9000-00000000000" + std::to_string(i));
    if (i == 4) l.replace(l.find("\"points\":["), 10, R"("points":[{"metric":"extra","ts":"2026-01-05T11:00:00Z","value":1},)");
    again += l + "\n";
  }
  auto r = load(again);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("loaded 5 batches and 1 points"), std::string::npos) << r.err;
  EXPECT_EQ(rows(), 41);
  EXPECT_EQ(distinct_keys(), 41);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM ingest_batches"), 10);
  EXPECT_EQ(count(c_, "SELECT sum(points_ingested) FROM usage_daily"), 41);
}

TEST_F(Load, StagingAndDirectModesGiveTheSameRows) {
  auto lines = make_batches(20, 10);
  ASSERT_EQ(load(join(lines, 0, 10), {"--copy-mode", "staging"}).status, 0);
  ASSERT_EQ(load(join(lines, 5, 20), {"--copy-mode", "direct"}).status, 0);
  expect_exactly(20, 10);
}

TEST_F(Load, EmitWritesOnlyNewlyLoadedPoints) {
  auto lines = make_batches(4, 3);
  auto r = load(join(lines, 0, 2), {"--emit"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 6);
  EXPECT_EQ(r.out.rfind(R"({"kind":"point","tenant":"acme","device":"dev-0","metric":"m0","ts":"2026-01-05T10:00:00.000Z","value":0.0,"unit":"V","batch_id":"0190a0b0-0000-7000-8000-000000000000"})", 0), 0u) << r.out;
  r = load(join(lines), {"--emit"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 6);  // only batches 2 and 3
  EXPECT_NE(r.out.find("\"device\":\"dev-2\""), std::string::npos);
  EXPECT_EQ(r.out.find("-000000000000\""), std::string::npos);  // batch 0 was loaded before
  EXPECT_EQ(r.out.find("-000000000001\""), std::string::npos);
  r = load(join(lines), {"--emit"});
  EXPECT_EQ(r.out, "");
}

TEST_F(Load, BadRecordsAreReportedCountedAndSkipped) {
  auto lines = make_batches(3, 2);
  std::string input = lines[0] + "\n{not json\n" + make_batches(1, 2, "nobody", 3, 7)[0] + "\n" +
                      R"({"kind":"window","tenant":"acme"})" + "\n\n" + lines[1] + "\n";
  auto r = load(input);
  EXPECT_EQ(r.status, 65) << r.err;
  EXPECT_NE(r.err.find("ep-load: stdin:2: invalid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ep-load: stdin:3: tenant: unknown tenant 'nobody'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ep-load: stdin:4: kind: 'window' is not loaded by ep-load"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rejected 3"), std::string::npos) << r.err;
  EXPECT_EQ(rows(), 4);
  // --create-tenants makes the unknown tenant instead.
  r = load(make_batches(1, 2, "nobody", 3, 7)[0] + "\n", {"--create-tenants"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(c_, "SELECT count(*) FROM tenants WHERE slug = 'nobody'"), 1);
  EXPECT_EQ(rows(), 6);
  // --strict stops at the first bad record.
  r = load("{bad\n" + lines[2] + "\n", {"--strict"});
  EXPECT_EQ(r.status, 65);
  EXPECT_EQ(rows(), 6);
}

TEST_F(Load, CreateTenantsRefusesNamesTheArchiveCannotHold) {
  // A tenant is one archive path segment: "a/b/../c" and ".hidden" are rejected with a
  // numbered line (never created), the valid records around them load.
  std::string input = make_batches(1, 2, "newco", 3, 20)[0] + "\n" +
                      make_batches(1, 2, "a/b/../c", 3, 21)[0] + "\n" +
                      make_batches(1, 2, ".hidden", 3, 22)[0] + "\n" +
                      make_batches(1, 2, "newco", 3, 23)[0] + "\n";
  auto r = load(input, {"--create-tenants"});
  EXPECT_EQ(r.status, 65) << r.err;
  const std::string why = "tenant: not a valid tenant name ([A-Za-z0-9._:-]{1,128}, not starting with '.')";
  EXPECT_NE(r.err.find("ep-load: stdin:2: " + why), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ep-load: stdin:3: " + why), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rejected 2"), std::string::npos) << r.err;
  EXPECT_EQ(count(c_, "SELECT count(*) FROM tenants WHERE slug = 'newco'"), 1);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM tenants WHERE slug LIKE '%/%' OR slug LIKE '.%'"), 0);
  EXPECT_EQ(rows(), 4);
}

TEST_F(Load, MissingSchemaAndBadFlagsAreClearErrors) {
  eptest::TempDatabase empty;
  ASSERT_TRUE(empty.ok());
  auto r = eptest::run({EP_LOAD_BIN, "--db", empty.url(), "--max-wait", "1s"}, "");
  EXPECT_EQ(r.status, 69);
  EXPECT_NE(r.err.find("run 'ep-admin migrate'"), std::string::npos) << r.err;
  r = eptest::run({EP_LOAD_BIN, "--flush-interval", "soon"}, "");
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("--flush-interval: 'soon' is not a positive duration"), std::string::npos) << r.err;
  r = eptest::run({EP_LOAD_BIN, "--copy-mode", "fast"}, "");
  EXPECT_EQ(r.status, 64);
}

// Feeds lines to a running ep-load a few at a time.
void feed(eptest::Proc& p, const std::vector<std::string>& lines, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) ASSERT_TRUE(p.write(lines[i] + "\n"));
}

TEST_F(Load, SigkillMidStreamThenReloadGivesExactRows) {
  auto lines = make_batches(400, 25);
  eptest::Proc p({EP_LOAD_BIN, "--db", db_.url(), "--no-progress", "--batch-size", "10", "--flush-interval", "20ms"});
  feed(p, lines, 0, 150);
  // Wait until some groups are committed, then kill it while it is busy.
  ASSERT_TRUE(eptest::eventually([&] { return rows() >= 50 * 25; }));
  feed(p, lines, 150, 200);
  p.kill(SIGKILL);
  EXPECT_EQ(p.wait(), 128 + SIGKILL);
  // Only whole batches are in: every loaded batch has all its points.
  std::int64_t loaded = count(c_, "SELECT count(*) FROM ingest_batches WHERE status = 'loaded'");
  EXPECT_GE(loaded, 50);
  EXPECT_EQ(rows(), loaded * 25);
  // Replay everything (as `ep-archive replay | ep-load` would).
  auto r = load(join(lines));
  ASSERT_EQ(r.status, 0) << r.err;
  expect_exactly(400, 25);
}

TEST_F(Load, SigtermLoadsWhatWasReadAndExitsCleanly) {
  auto lines = make_batches(30, 5);
  // A long flush interval and a big group: without SIGTERM nothing would be loaded
  // until stdin closes.
  eptest::Proc p({EP_LOAD_BIN, "--db", db_.url(), "--no-progress", "--flush-interval", "1h"});
  feed(p, lines, 0, 30);
  // Once the loader has read everything from the pipe, it is waiting for more.
  ASSERT_TRUE(eptest::eventually([&] { return p.unread_stdin() == 0; }));
  EXPECT_EQ(rows(), 0);
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait(), 0) << p.err();
  EXPECT_NE(p.err().find("loaded 30 batches and 150 points"), std::string::npos) << p.err();
  expect_exactly(30, 5);
}

TEST_F(Load, TwoLoadersOnOneStreamLoadEachPointOnce) {
  auto lines = make_batches(300, 10);
  // Both get the whole stream at the same time; interleaved writes keep them racing.
  eptest::Proc a({EP_LOAD_BIN, "--db", db_.url(), "--no-progress", "--batch-size", "9", "--flush-interval", "5ms"});
  eptest::Proc b({EP_LOAD_BIN, "--db", db_.url(), "--no-progress", "--batch-size", "11", "--flush-interval", "5ms"});
  for (size_t i = 0; i < lines.size(); i += 10) {
    feed(a, lines, i, std::min(lines.size(), i + 10));
    feed(b, lines, i, std::min(lines.size(), i + 10));
  }
  a.close_stdin();
  b.close_stdin();
  ASSERT_EQ(a.wait(), 0) << a.err();
  ASSERT_EQ(b.wait(), 0) << b.err();
  expect_exactly(300, 10);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM devices"), 3);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM metrics"), 12);
}

TEST_F(Load, TwoLoadersOnASplitStreamWithOverlap) {
  auto lines = make_batches(300, 10);
  eptest::Proc a({EP_LOAD_BIN, "--db", db_.url(), "--no-progress", "--batch-size", "25"});
  eptest::Proc b({EP_LOAD_BIN, "--db", db_.url(), "--no-progress", "--batch-size", "25"});
  feed(a, lines, 0, 180);
  feed(b, lines, 120, 300);
  a.close_stdin();
  b.close_stdin();
  ASSERT_EQ(a.wait(), 0) << a.err();
  ASSERT_EQ(b.wait(), 0) << b.err();
  expect_exactly(300, 10);
}

// Postgres stopped under a running loader, then started again: the loader retries and
// ends with exactly the input; with the server down past --max-wait it exits 69
// having loaded only whole groups.
class LoadRestart : public eptest::OwnClusterTest {
 protected:
  std::int64_t rows() { return count_now("SELECT count(*) FROM datapoints"); }
};

TEST_F(LoadRestart, PostgresRestartedMidLoadLosesAndDoublesNothing) {
  auto lines = make_batches(300, 20);
  eptest::Proc p({EP_LOAD_BIN, "--db", cluster_.url("ep"), "--no-progress", "--batch-size", "10",
                  "--flush-interval", "20ms", "--max-wait", "120s"});
  feed(p, lines, 0, 100);
  ASSERT_TRUE(eptest::eventually([&] { return rows() == 100 * 20; }));
  c_ = ep::pg::Conn();
  ASSERT_TRUE(cluster_.stop("fast"));
  // The rest arrives while the server is down (from another thread: once its queue is
  // full the loader stops reading and the pipe fills up).
  std::thread feeder([&] { feed(p, lines, 100, 300); });
  // The loader sees the failure and backs off before the server comes back.
  bool retried = eptest::eventually([&] { return p.err_so_far().find("retry") != std::string::npos; });
  bool started = cluster_.start();
  feeder.join();
  ASSERT_TRUE(started);
  ASSERT_TRUE(retried) << p.err_so_far();
  p.close_stdin();
  ASSERT_EQ(p.wait(), 0) << p.err();
  EXPECT_NE(p.err().find("retry"), std::string::npos) << p.err();
  EXPECT_EQ(rows(), 300 * 20);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM (SELECT DISTINCT metric_id, ts FROM datapoints) k"), 300 * 20);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM ingest_batches WHERE status = 'loaded'"), 300);
  EXPECT_EQ(count(c_, "SELECT sum(points_ingested) FROM usage_daily"), 300 * 20);
}

TEST_F(LoadRestart, DownPastMaxWaitExits69WithNothingPartial) {
  auto lines = make_batches(100, 20);
  eptest::Proc p({EP_LOAD_BIN, "--db", cluster_.url("ep"), "--no-progress", "--batch-size", "10",
                  "--flush-interval", "20ms", "--max-wait", "2s"});
  feed(p, lines, 0, 40);
  ASSERT_TRUE(eptest::eventually([&] { return rows() == 40 * 20; }));
  c_ = ep::pg::Conn();
  ASSERT_TRUE(cluster_.stop("immediate"));
  // Written from another thread: the loader stops reading when its queue is full, and
  // once it gives up the pipe is closed (writes fail; that is expected here).
  std::thread feeder([&] {
    for (size_t i = 40; i < 100; ++i)
      if (!p.write(lines[i] + "\n")) break;
    p.close_stdin();
  });
  EXPECT_EQ(p.wait(), 69) << p.err();
  feeder.join();
  EXPECT_NE(p.err().find("NOT loaded"), std::string::npos) << p.err();
  EXPECT_NE(p.err().find("nothing was loaded partially"), std::string::npos) << p.err();
  ASSERT_TRUE(cluster_.start());
  EXPECT_EQ(rows(), 40 * 20);
  // The rest comes back with a replay.
  auto r = eptest::run({EP_LOAD_BIN, "--db", cluster_.url("ep"), "--no-progress"}, join(lines));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(rows(), 100 * 20);
}

}  // namespace
