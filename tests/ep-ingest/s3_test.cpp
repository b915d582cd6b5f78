// ep-ingest with an s3:// archive (format 2): batches are acknowledged from a local spool
// and uploaded by sealed segment to a real S3-compatible server (s3rver) on loopback.
// Every acknowledged batch is then read back with ep-archive replay from the s3:// URI;
// PUT requests are counted by the server's own log.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "../ep-archive/s3rver.h"
#include "ep/archive.h"
#include "harness.h"

namespace ep::ingest::test {
namespace {

using S3rver = ep::test::S3rver;

class IngestS3 : public KeyedTest {
 protected:
  void SetUp() override {
    KeyedTest::SetUp();
    ASSERT_TRUE(s3_.ok()) << s3_.error();
  }
  std::string uri() const {
    return std::string("s3://") + S3rver::kBucket + "/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  std::map<std::string, std::string> env() const {
    return {{"AWS_ACCESS_KEY_ID", S3rver::kKey}, {"AWS_SECRET_ACCESS_KEY", S3rver::kKey}, {"AWS_REGION", "us-east-1"}};
  }
  std::vector<std::string> args(const std::string& spool, std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {"--keys", keys_path_, "--archive", uri(), "--s3-endpoint", s3_.endpoint(),
                                  "--archive-spool", spool, "--archive-segment-age", "1s", "--threads", "2"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // GET /metrics as name -> value (unlabelled samples).
  static std::map<std::string, double> metrics(unsigned short port) {
    Client c(port);
    Reply r = c.request("GET", "/metrics");
    std::map<std::string, double> m;
    for (const auto& line : lines_of(r.body)) {
      if (line.empty() || line[0] == '#' || line.find('{') != std::string::npos) continue;
      size_t sp = line.find(' ');
      if (sp != std::string::npos) m[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return m;
  }
  // Nothing left in the spool: no active records, no segment waiting for upload.
  static bool drained(unsigned short port) {
    auto m = metrics(port);
    return m.count("ep_ingest_archive_upload_pending_segments") && m["ep_ingest_archive_upload_pending_segments"] == 0 &&
           m["ep_ingest_archive_spool_active_bytes"] == 0;
  }
  // batch_id -> how many times ep-archive replay returns it from the bucket.
  std::map<std::string, int> replayed() const {
    std::vector<std::string> e = {std::string("AWS_ACCESS_KEY_ID=") + S3rver::kKey,
                                  std::string("AWS_SECRET_ACCESS_KEY=") + S3rver::kKey, "AWS_REGION=us-east-1"};
    auto r = ep::test::run({EP_ARCHIVE_BIN, "replay", "--archive", uri(), "--s3-endpoint", s3_.endpoint()}, {}, e);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, int> n;
    for (const auto& line : lines_of(r.out)) {
      rapidjson::Document d;
      d.Parse(line.c_str());
      if (d.IsObject() && d.HasMember("batch_id")) n[d["batch_id"].GetString()]++;
    }
    return n;
  }
  // Posts n batches from `clients` connections; returns the acknowledged batch ids.
  std::set<std::string> post(unsigned short port, int n, int clients = 4) {
    std::mutex mu;
    std::set<std::string> acked;
    std::atomic<int> next{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < clients; ++t)
      ts.emplace_back([&, t] {
        Client c(port);
        for (int i; (i = next++) < n;) {
          Reply r = c.post(payload("dev-" + std::to_string(t) + "-" + std::to_string(i), 3), {{"X-API-Key", key_.key}});
          EXPECT_EQ(r.status, 202u) << r.body;
          rapidjson::Document d;
          d.Parse(r.body.c_str());
          if (r.status != 202 || !d.IsObject()) continue;
          std::lock_guard lock(mu);
          acked.insert(d["batch_id"].GetString());
        }
      });
    for (auto& th : ts) th.join();
    return acked;
  }
  static void expect_each_once(const std::set<std::string>& acked, const std::map<std::string, int>& stored) {
    for (const auto& id : acked) {
      auto it = stored.find(id);
      ASSERT_NE(it, stored.end()) << "acknowledged batch " << id << " is not in the bucket";
      EXPECT_EQ(it->second, 1) << id;
    }
    for (const auto& [id, n] : stored) EXPECT_EQ(n, 1) << id << " replayed " << n << " times";
  }

  S3rver s3_;
};

// Two ingest nodes write one bucket under concurrent load. Every acknowledged batch is
// in the bucket exactly once, segment keys never collide (the objects in the bucket are
// as many as the two nodes uploaded), and the server stored one PUT per segment.
TEST_F(IngestS3, ConcurrentLoadFromTwoNodesStoresEveryAckOnceWithOnePutPerSegment) {
  size_t puts_before = s3_.stored_puts();
  auto started = std::chrono::steady_clock::now();
  Server a(dir_, args(dir_ + "/spool-a"), env());
  Server b(dir_, args(dir_ + "/spool-b"), env());
  std::set<std::string> acked;
  std::thread ta([&] { auto x = post(a.port(), 1500); acked.insert(x.begin(), x.end()); });
  auto xb = post(b.port(), 1500);
  ta.join();
  acked.insert(xb.begin(), xb.end());
  ASSERT_EQ(acked.size(), 3000u);
  // Idle segments are sealed by age (1 s) without further writes, then uploaded.
  ASSERT_TRUE(wait_until([&] { return drained(a.port()) && drained(b.port()); }, std::chrono::seconds(60)));
  auto ma = metrics(a.port()), mb = metrics(b.port());
  double segments = ma["ep_ingest_archive_uploaded_segments_total"] + mb["ep_ingest_archive_uploaded_segments_total"];
  EXPECT_GE(segments, 2);
  EXPECT_EQ(ma["ep_ingest_archive_upload_lag_seconds"], 0);

  expect_each_once(acked, replayed());
  // Distinct segment objects in the bucket: one per upload of either node.
  ArchiveOptions ro;
  ro.create = false;
  ro.s3_endpoint = s3_.endpoint();
  ro.access_key = ro.secret_key = S3rver::kKey;
  ro.s3_region = "us-east-1";
  auto archive = Archive::open(uri(), ro);
  ASSERT_TRUE(archive) << archive.status().message();
  EXPECT_EQ((*archive)->format(), 2);
  std::set<std::string> keys;
  ASSERT_TRUE((*archive)->list_units({}, [&](const ArchiveObject& o) { return keys.insert(o.key), true; }));
  EXPECT_EQ(static_cast<double>(keys.size()), segments);
  for (const auto& k : keys) EXPECT_NE(k.find(".p"), std::string::npos) << k << ": no node id in the name";
  // At the server: FORMAT plus one PUT per segment, for 3000 batches.
  size_t puts = s3_.stored_puts() - puts_before;
  EXPECT_LE(static_cast<double>(puts), segments + 1);
  // Segments roll by age (1 s) per node, not per batch: at most one per second of the run
  // and node, plus the last ones (and a day boundary).
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LE(segments, 2 * (seconds + 3)) << "segments for 3000 batches in " << seconds << " s";
}

// The store goes away under load: ingest keeps acknowledging from the spool, counts the
// failed uploads, and once the store is back every acknowledged batch arrives.
TEST_F(IngestS3, OutageKeepsAcknowledgingAndUploadsAfterwards) {
  Server s(dir_, args(dir_ + "/spool"), env());
  auto before = post(s.port(), 100);
  s3_.stop();
  auto during = post(s.port(), 400);
  EXPECT_EQ(during.size(), 400u);
  ASSERT_TRUE(wait_until([&] { return metrics(s.port())["ep_ingest_archive_upload_failures_total"] > 0; },
                         std::chrono::seconds(30)));
  auto m = metrics(s.port());
  EXPECT_GT(m["ep_ingest_archive_upload_pending_segments"], 0);
  EXPECT_GT(m["ep_ingest_archive_upload_lag_seconds"], 0);
  // The exposition, upload figures included, passes promtool's checks.
  Client mc(s.port());
  auto lint = ep::test::run({"/usr/bin/promtool", "check", "metrics"}, mc.request("GET", "/metrics").body);
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
  s3_.start();
  ASSERT_TRUE(s3_.ok()) << s3_.error();
  ASSERT_TRUE(wait_until([&] { return drained(s.port()); }, std::chrono::seconds(90)));
  std::set<std::string> acked = before;
  acked.insert(during.begin(), during.end());
  expect_each_once(acked, replayed());
}

// A tiny spool budget while the store is down: 202 until it is full, then 503 with
// Retry-After and no server path in the body; after the store returns, uploads free the
// spool and 202s resume. Nothing acknowledged is lost.
TEST_F(IngestS3, FullSpoolBudgetAnswers503UntilUploadsFreeIt) {
  Server s(dir_, args(dir_ + "/spool", {"--archive-spool-budget", "65536"}), env());
  s3_.stop();
  std::set<std::string> acked;
  Client c(s.port());
  // Until 20 requests in a row are refused. (Sealing compresses what was active, so a
  // few more may fit after the first 503: the budget counts bytes on disk.)
  int full = 0;
  for (int i = 0; i < 5000 && full < 20; ++i) {
    Reply r = c.post(payload("dev-" + std::to_string(i), 5), {{"X-API-Key", key_.key}});
    if (r.status == 202) {
      full = 0;
      rapidjson::Document d;
      d.Parse(r.body.c_str());
      acked.insert(d["batch_id"].GetString());
      continue;
    }
    ASSERT_EQ(r.status, 503u) << r.body;
    EXPECT_EQ(r.body, R"({"error":"unavailable","detail":"archive storage is full; retry later"})");
    EXPECT_EQ(r.body.find(dir_), std::string::npos);
    EXPECT_EQ(r.headers["Retry-After"], "1");
    ++full;
  }
  ASSERT_EQ(full, 20) << "the 64 KiB budget never filled";
  EXPECT_LT(acked.size(), 1000u) << "a 64 KiB budget held " << acked.size() << " batches";
  ASSERT_GT(acked.size(), 0u);
  s3_.start();
  ASSERT_TRUE(s3_.ok()) << s3_.error();
  bool resumed = wait_until([&] {
    Reply r = c.post(payload("dev-after", 5), {{"X-API-Key", key_.key}});
    if (r.status != 202) return false;
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    acked.insert(d["batch_id"].GetString());
    return true;
  }, std::chrono::seconds(90));
  ASSERT_TRUE(resumed) << "still 503 after the store came back";
  ASSERT_TRUE(wait_until([&] { return drained(s.port()); }, std::chrono::seconds(60)));
  expect_each_once(acked, replayed());
}

// SIGKILL while segments wait for upload (the store is down): the next run seals what
// the killed one left active and uploads everything, once.
TEST_F(IngestS3, SigkillWithPendingUploadsLosesAndDoublesNothing) {
  std::set<std::string> acked;
  {
    Server s(dir_, args(dir_ + "/spool"), env());
    s3_.stop();
    acked = post(s.port(), 300);
    // Some sealed and waiting, and more still in an active segment.
    ASSERT_TRUE(wait_until([&] { return metrics(s.port())["ep_ingest_archive_upload_pending_segments"] > 0; },
                           std::chrono::seconds(30)));
    auto more = post(s.port(), 100);
    acked.insert(more.begin(), more.end());
    s.process().signal(SIGKILL);
    EXPECT_EQ(s.process().wait(), 128 + SIGKILL);
  }
  ASSERT_EQ(acked.size(), 400u);
  s3_.start();
  ASSERT_TRUE(s3_.ok()) << s3_.error();
  Server again(dir_, args(dir_ + "/spool"), env());
  ASSERT_TRUE(wait_until([&] { return drained(again.port()); }, std::chrono::seconds(60)));
  EXPECT_GE(metrics(again.port())["ep_ingest_archive_uploaded_segments_total"], 2);
  expect_each_once(acked, replayed());
}

// Credentials from a shared credentials file and profile (no AWS_* keys in the
// environment), the region from the config file; an unknown profile is a usage error.
TEST_F(IngestS3, CredentialsFromSharedFileProfile) {
  write_text(dir_ + "/credentials", "[default]\naws_access_key_id = NOT-A-KEY\naws_secret_access_key = x\n\n"
                                    "# the test profile\n[edge]\naws_access_key_id = S3RVER\n"
                                    "aws_secret_access_key = S3RVER\n");
  write_text(dir_ + "/config", "[profile edge]\nregion = us-east-1\ns3 =\n  max_concurrent_requests = 4\n");
  std::map<std::string, std::string> e = {{"AWS_SHARED_CREDENTIALS_FILE", dir_ + "/credentials"},
                                          {"AWS_CONFIG_FILE", dir_ + "/config"}, {"AWS_PROFILE", "edge"}};
  {
    Server s(dir_, args(dir_ + "/spool"), e);
    auto acked = post(s.port(), 20, 1);
    ASSERT_TRUE(wait_until([&] { return drained(s.port()); }, std::chrono::seconds(30)));
    expect_each_once(acked, replayed());
  }
  // The default profile's key is refused by the store; an unknown profile by ep-ingest.
  e.erase("AWS_PROFILE");
  Process wrong({EP_INGEST_BIN, "--listen", "127.0.0.1:0", "--keys", keys_path_, "--archive", uri(), "--s3-endpoint",
                 s3_.endpoint(), "--archive-spool", dir_ + "/spool2"},
                dir_, {{"AWS_SHARED_CREDENTIALS_FILE", dir_ + "/credentials"}, {"AWS_CONFIG_FILE", dir_ + "/config"},
                       {"API_KEY_HASH_SALT", kPepper}});
  EXPECT_EQ(wrong.wait(), 69) << wrong.err();
  EXPECT_NE(wrong.err().find("AWS_PROFILE"), std::string::npos) << wrong.err();
  Process unknown({EP_INGEST_BIN, "--listen", "127.0.0.1:0", "--keys", keys_path_, "--archive", uri(), "--s3-endpoint",
                   s3_.endpoint(), "--archive-spool", dir_ + "/spool3"},
                  dir_, {{"AWS_SHARED_CREDENTIALS_FILE", dir_ + "/credentials"}, {"AWS_CONFIG_FILE", dir_ + "/config"},
                         {"AWS_PROFILE", "nobody"}, {"API_KEY_HASH_SALT", kPepper}});
  EXPECT_EQ(unknown.wait(), 64) << unknown.err();
  EXPECT_NE(unknown.err().find("AWS_PROFILE nobody: no such profile"), std::string::npos) << unknown.err();
}

}  // namespace
}  // namespace ep::ingest::test
