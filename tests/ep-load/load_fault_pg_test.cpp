// In-process fault injection (docs/conventions.md 4, LevelDB fault_injection_test): the connection
// is lost at COMMIT (in doubt), before COMMIT, or right after it; ep-load must resolve
// each case by looking at Postgres and end with exactly one copy of every point.
#include <fstream>

#include "load.h"
#include "load_input.h"
#include "pg_fixture.h"
#include "rollups.h"

namespace {

using eptest::count;

class CollectingReporter : public ep::load::Reporter {
 public:
  void reject(std::string_view stream, std::int64_t line, std::string_view reason) override {
    rejects.push_back(std::string(stream) + ":" + std::to_string(line) + ": " + std::string(reason));
  }
  std::vector<std::string> rejects;
};

class LoadFault : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    db_.migrate();
    c_ = db_.connect();
    // retention_days: the 2026-01 points count in the rollups, which must come out
    // exactly once whatever happened to COMMIT.
    EP_ASSERT_OK(c_.run("UPDATE plans SET retention_days = 36500; INSERT INTO tenants (slug) VALUES ('acme')"));
    path_ = "/tmp/ep-load-fault-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".ndjson";
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void expect_rollups(std::int64_t points) {
    EXPECT_EQ(count(c_, "SELECT coalesce(sum(n), 0) FROM rollups_1d"), points);
    EXPECT_EQ(count(c_, "SELECT coalesce(sum(n), 0) FROM rollups_1m"), points);
    EXPECT_EQ(eptest::rollup_mismatches(c_), 0);
  }

  // Runs the loader in-process over `input`; `fault(step, n)` sees every hook call.
  ep::Status run(const std::string& input, std::function<ep::Status(const char*)> fault, ep::load::Summary& sum) {
    std::ofstream(path_) << input;
    ep::load::Options o;
    o.db = db_.url();
    o.inputs = {path_};
    o.batch_size = 10;
    o.max_wait = 20 * ep::kNsPerSec;
    stop_ = false;
    ep::load::RunContext ctx;
    ctx.reporter = &rep_;
    ctx.stop = &stop_;
    ctx.fault = std::move(fault);
    ctx.notice = [this](const std::string& m) { notices_.push_back(m); };
    return ep::load::run(o, ctx, sum);
  }
  // A fault that fails `step` on its n-th occurrence only.
  static std::function<ep::Status(const char*)> once(std::string step, int nth) {
    auto seen = std::make_shared<int>(0);
    return [=](const char* s) {
      if (step == s && ++*seen == nth) return ep::Status::unavailable("injected: connection lost at " + step);
      return ep::Status::ok();
    };
  }

  eptest::TempDatabase db_;
  ep::pg::Conn c_;
  std::string path_;
  std::atomic<bool> stop_{false};
  CollectingReporter rep_;
  std::vector<std::string> notices_;
};

TEST_F(LoadFault, CommitAnsweredButConnectionLostIsResolvedAsCommitted) {
  ep::load::Summary sum;
  auto st = run(eptest::join(eptest::make_batches(50, 10)), once("after_commit", 2), sum);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(sum.write.in_doubt, 1u);
  EXPECT_EQ(sum.write.batches_loaded, 50u);
  EXPECT_EQ(sum.write.points_inserted, 500u);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 500);
  EXPECT_EQ(count(c_, "SELECT sum(points_ingested) FROM usage_daily"), 500);
  expect_rollups(500);
  bool said = false;
  for (auto& n : notices_) said |= n.find("in-doubt COMMIT resolved: the transaction was committed") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(LoadFault, ConnectionLostBeforeCommitReachedServerIsRedone) {
  ep::load::Summary sum;
  auto st = run(eptest::join(eptest::make_batches(50, 10)), once("commit_lost", 3), sum);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(sum.write.in_doubt, 1u);
  EXPECT_EQ(sum.write.batches_loaded, 50u);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 500);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM ingest_batches WHERE status = 'loaded'"), 50);
  EXPECT_EQ(count(c_, "SELECT sum(points_ingested) FROM usage_daily"), 500);
  expect_rollups(500);
  bool said = false;
  for (auto& n : notices_) said |= n.find("not committed; loading the group again") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(LoadFault, PointGroupsInDoubtUseTransactionStatus) {
  std::string pts;
  for (int i = 0; i < 25; ++i)
    pts += R"({"kind":"point","tenant":"acme","device":"p","metric":"t","ts":"2026-01-05T10:00:00.)" +
           std::to_string(100 + i) + R"(Z","value":1}
)";
  ep::load::Summary sum;
  auto st = run(pts, once("after_commit", 1), sum);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(sum.write.in_doubt, 1u);
  EXPECT_EQ(sum.write.points_inserted, 25u);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 25);
  ep::load::Summary sum2;
  st = run(pts, once("commit_lost", 1), sum2);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(sum2.write.points_inserted, 0u);
  EXPECT_EQ(count(c_, "SELECT sum(points_ingested) FROM usage_daily"), 25);
  expect_rollups(25);
}

TEST_F(LoadFault, FailureBeforeCommitIsRetriedFromScratch) {
  ep::load::Summary sum;
  auto st = run(eptest::join(eptest::make_batches(30, 10)), once("before_commit", 1), sum);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(sum.write.retries, 1u);
  EXPECT_EQ(sum.write.in_doubt, 0u);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 300);
  EXPECT_EQ(count(c_, "SELECT sum(batches) FROM usage_daily"), 30);
  expect_rollups(300);
}

TEST_F(LoadFault, NonRetryableFailureStopsWithNothingPartial) {
  ep::load::Summary sum;
  auto fault = [n = 0](const char* s) mutable {
    if (std::string(s) == "before_commit" && ++n == 2) return ep::Status::software("injected bug");
    return ep::Status::ok();
  };
  auto st = run(eptest::join(eptest::make_batches(50, 10)), fault, sum);
  EXPECT_EQ(st.code(), ep::Code::kSoftware);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 100);  // the first group only
  EXPECT_EQ(count(c_, "SELECT count(*) FROM ingest_batches"), 10);
  EXPECT_GT(sum.records_not_loaded, 0u);
}

}  // namespace
