// Idempotency-Key across restarts: the key travels in the archived batch record, and a
// restarted ep-ingest restores the answers of the last window from the archive. Real
// processes on one file:// archive (format 2); ep-archive replay counts the batches.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "cli_run.h"
#include "harness.h"

namespace ep::ingest::test {
namespace {

std::string batch_id_of(const std::string& json_text) {
  rapidjson::Document d;
  d.Parse(json_text.c_str());
  if (!d.IsObject() || !d.HasMember("batch_id")) return "";
  return d["batch_id"].GetString();
}

class IngestRestart : public KeyedTest {
 protected:
  void SetUp() override {
    KeyedTest::SetUp();
    uri_ = "file://" + dir_ + "/archive";
  }
  std::unique_ptr<Server> start() {
    return std::make_unique<Server>(dir_, std::vector<std::string>{"--keys", keys_path_, "--archive", uri_});
  }
  std::map<std::string, std::string> headers(const std::string& idem) {
    return {{"X-API-Key", key_.key}, {"Idempotency-Key", idem}};
  }
  void stop(Server& s, int sig) {
    s.process().signal(sig);
    EXPECT_EQ(s.process().wait(), sig == SIGKILL ? 128 + SIGKILL : 0) << s.process().err();
  }
  eptest::Proc archive_tool(const std::string& args) {
    return eptest::run_tool(EP_ARCHIVE_BIN, args + " --archive " + uri_, "", dir_);
  }
  // batch_id -> how many times `ep-archive replay` emits it.
  std::map<std::string, int> replayed() {
    auto r = archive_tool("replay");
    EXPECT_EQ(r.code, 0) << r.err;
    std::map<std::string, int> n;
    for (const auto& line : lines_of(r.out)) n[batch_id_of(line)]++;
    return n;
  }
  // Posts with a key, restarts (after `between`), retries: the original answer, once.
  void retry_across_restart(int sig, const std::function<void()>& between) {
    std::string body = payload("dev-a", 3);
    std::string first;
    {
      auto s = start();
      Client c(s->port());
      Reply r = c.post(body, headers("order-17"));
      ASSERT_EQ(r.status, 202u) << r.body;
      first = r.body;
      ASSERT_EQ(c.post(payload("dev-b", 2), {{"X-API-Key", key_.key}}).status, 202u);
      stop(*s, sig);
    }
    between();
    auto s = start();
    EXPECT_NE(s->process().err().find("idempotency: 1 keyed batches"), std::string::npos) << s->process().err();
    Client c(s->port());
    Reply again = c.post(body, headers("order-17"));
    EXPECT_EQ(again.status, 202u);
    EXPECT_EQ(again.body, first) << "the same 202 body: batch_id and points";
    EXPECT_EQ(again.headers["Idempotent-Replayed"], "true");
    Reply other = c.post(payload("dev-c", 3), headers("order-17"));
    EXPECT_EQ(other.status, 422u) << other.body;
    stop(*s, SIGTERM);
    auto n = replayed();
    EXPECT_EQ(n[batch_id_of(first)], 1) << "the batch is archived once";
    EXPECT_EQ(n.size(), 2u) << "no second batch";
  }
  // The archive's active segment file (the tests write one tenant-day).
  std::string active_segment() {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/archive"))
      if (e.path().extension() == ".wal") return e.path();
    return "";
  }
  std::string uri_;
};

TEST_F(IngestRestart, RetryAfterSigkillGetsTheOriginalBatch) {
  retry_across_restart(SIGKILL, [] {});
}

TEST_F(IngestRestart, RetryAfterACleanRestartGetsTheOriginalBatch) {
  retry_across_restart(SIGTERM, [] {});
}

TEST_F(IngestRestart, RetryAfterTheSegmentWasSealedGetsTheOriginalBatch) {
  retry_across_restart(SIGKILL, [&] {
    auto r = archive_tool("seal");
    ASSERT_EQ(r.code, 0) << r.err;
    size_t sealed = 0, active = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/archive")) {
      sealed += e.path().extension() == ".seg";
      active += e.path().extension() == ".wal";
    }
    EXPECT_EQ(sealed, 1u);
    EXPECT_EQ(active, 0u) << "the key is read back from the sealed segment";
  });
}

TEST_F(IngestRestart, ADamagedRecordIsSkippedAndReportedAndTheOthersAreRestored) {
  std::string body1 = payload("dev-damaged", 1), body2 = payload("dev-intact", 1);
  std::string second;
  {
    auto s = start();
    Client c(s->port());
    ASSERT_EQ(c.post(body1, headers("k-1")).status, 202u);
    Reply r = c.post(body2, headers("k-2"));
    ASSERT_EQ(r.status, 202u);
    second = r.body;
    stop(*s, SIGKILL);
  }
  std::string wal = active_segment();
  ASSERT_FALSE(wal.empty());
  {
    // Flip one byte of the first record (its device name): its checksum fails.
    std::string bytes = read_text(wal);
    size_t at = bytes.find("dev-damaged");
    ASSERT_NE(at, std::string::npos);
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at));
    f.put('X');
  }
  auto s = start();
  std::string err = s->process().err();
  EXPECT_NE(err.find("idempotency recovery: "), std::string::npos) << err;
  EXPECT_NE(err.find("(skipped)"), std::string::npos) << err;
  EXPECT_NE(err.find("1 damaged or torn records skipped"), std::string::npos) << err;
  Client c(s->port());
  Reply again = c.post(body2, headers("k-2"));
  EXPECT_EQ(again.body, second) << "the intact record's key is restored";
  Reply lost = c.post(body1, headers("k-1"));
  EXPECT_EQ(lost.status, 202u);
  EXPECT_EQ(lost.headers.count("Idempotent-Replayed"), 0u) << "a damaged record restores nothing";
  stop(*s, SIGTERM);
}

TEST_F(IngestRestart, ATornTailIsSkippedAndReported) {
  std::string body = payload("dev-a", 2), first;
  {
    auto s = start();
    Client c(s->port());
    Reply r = c.post(body, headers("k-1"));
    ASSERT_EQ(r.status, 202u);
    first = r.body;
    stop(*s, SIGKILL);
  }
  std::string wal = active_segment();
  ASSERT_FALSE(wal.empty());
  {
    // A write cut short: a record's magic and a few bytes at the end of the file.
    std::ofstream f(wal, std::ios::app | std::ios::binary);
    f << "EPR2\x10\x00\x00\x00partial";
  }
  auto s = start();
  std::string err = s->process().err();
  EXPECT_NE(err.find("idempotency recovery: "), std::string::npos) << err;
  EXPECT_NE(err.find("torn tail"), std::string::npos) << err;
  EXPECT_NE(err.find("1 damaged or torn records skipped"), std::string::npos) << err;
  Client c(s->port());
  EXPECT_EQ(c.post(body, headers("k-1")).body, first) << "the complete record before it is restored";
  stop(*s, SIGTERM);
}

TEST_F(IngestRestart, KeysThatAreNotPrintableAsciiAreRefused) {
  auto s = start();
  Client c(s->port());
  Reply r = c.post(payload("d1", 1), headers("caf\xc3\xa9"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("Idempotency-Key: only printable ASCII"), std::string::npos) << r.body;
  stop(*s, SIGTERM);
}

}  // namespace
}  // namespace ep::ingest::test
