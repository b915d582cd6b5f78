// docs/architecture.md §6: a 202 means the batch is in the archive. Kill ep-ingest with SIGKILL under
// load; every batch_id that was acknowledged must be in the archive, intact.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "ep/archive.h"
#include "ep/crypto.h"
#include "harness.h"

namespace ep::ingest::test {
namespace {

// Posts from 16 clients until kill_after batches are acknowledged, then SIGKILLs the
// server; acked receives batch_id -> body of every 202.
void load_then_kill(Server& s, const std::string& api_key, const std::string& prefix, int kill_after,
                    std::map<std::string, std::string>& acked) {
  std::mutex mu;
  std::atomic<bool> killed{false};
  std::atomic<int> total{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t) {
    clients.emplace_back([&, t] {
      try {
        Client c(s.port());
        for (int i = 0; !killed; ++i) {
          std::string body = payload(prefix + std::to_string(t) + "-" + std::to_string(i), 10);
          Reply r = c.post(body, {{"X-API-Key", api_key}});
          if (r.status != 202) continue;
          rapidjson::Document d;
          d.Parse(r.body.c_str());
          std::lock_guard lock(mu);
          acked[d["batch_id"].GetString()] = body;
          total++;
        }
      } catch (const std::exception&) {
        // The server died mid-request: that request was never acknowledged.
      }
    });
  }
  EXPECT_TRUE(wait_until([&] { return total.load() >= kill_after; }, std::chrono::seconds(60)));
  s.process().signal(SIGKILL);
  killed = true;
  for (auto& th : clients) th.join();
  EXPECT_EQ(s.process().wait(), 128 + SIGKILL);
}

TEST(IngestDurability, EveryAcknowledgedBatchSurvivesSigkillUnderLoad) {
  std::string dir = make_temp_dir();
  auto key = new_key("acme");
  write_keys(dir + "/keys.ndjson", {key});
  std::string uri = "file://" + dir + "/archive";
  Server s(dir, {"--keys", dir + "/keys.ndjson", "--archive", uri, "--threads", "2"});

  std::map<std::string, std::string> acked;  // batch_id -> body
  load_then_kill(s, key.key, "dev-", 400, acked);

  ArchiveOptions ro;
  ro.create = false;
  auto archive = Archive::open(uri, ro);
  ASSERT_TRUE(archive.is_ok()) << archive.status().message();
  std::map<std::string, ArchiveObject> stored;
  ASSERT_TRUE((*archive)->list({}, [&](const ArchiveObject& o) {
    stored[o.batch_id] = o;
    return true;
  }).is_ok());
  ASSERT_GE(acked.size(), 400u);
  EXPECT_GE(stored.size(), acked.size());  // in-flight batches may be stored but unacknowledged
  for (const auto& [id, body] : acked) {
    auto it = stored.find(id);
    ASSERT_NE(it, stored.end()) << "acknowledged batch " << id << " is not in the archive";
    auto bytes = (*archive)->get(it->second);
    ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
    rapidjson::Document d;
    d.Parse(bytes->data(), bytes->size());
    ASSERT_TRUE(d.IsObject()) << id;
    EXPECT_EQ(std::string(d["raw"].GetString()), body) << id;
    EXPECT_EQ(std::string(d["sha256"].GetString()), crypto::sha256_hex(body)) << id;
  }
}

// A full archive disk: a 256 KiB tmpfs mounted over the archive directory in a private
// mount namespace (unshare, so no root is needed and nothing outlives ep-ingest). Every
// request then gets a 503 that says what happened without the server's paths; the log
// names the path on the first failure and then reports at most once per 10 s with a
// count, instead of one line per request.
TEST(IngestDurability, FullArchiveDiskAnswers503WithoutPathsAndLogsBoundedly) {
  std::string dir = make_temp_dir();
  auto key = new_key("acme");
  write_keys(dir + "/keys.ndjson", {key});
  std::string disk = dir + "/small-disk";
  ASSERT_EQ(::mkdir(disk.c_str(), 0755), 0);
  std::vector<std::string> on_small_disk = {
      "/usr/bin/unshare", "--map-root-user", "--mount", "/bin/sh", "-c",
      R"(mount -t tmpfs -o size=256k ep-test "$1" && shift && exec "$@")", "sh", disk};
  Server s(dir, {"--keys", dir + "/keys.ndjson", "--archive", "file://" + disk + "/archive"}, {},
           on_small_disk);
  Client c(s.port());
  auto start = std::chrono::steady_clock::now();
  int accepted = 0, full = 0;
  for (int i = 0; i < 5000 && full < 300; ++i) {
    Reply r = c.post(payload("dev-" + std::to_string(i), 20), {{"X-API-Key", key.key}});
    if (r.status == 202) {
      ASSERT_EQ(full, 0) << "accepted after the disk was full";
      ++accepted;
      continue;
    }
    ASSERT_EQ(r.status, 503u) << r.body;
    EXPECT_EQ(r.body, R"({"error":"unavailable","detail":"archive storage is full; retry later"})");
    EXPECT_EQ(r.body.find(dir), std::string::npos) << r.body;
    EXPECT_EQ(r.headers["Retry-After"], "1");
    ++full;
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(accepted, 0);
  ASSERT_EQ(full, 300) << "the 256 KiB disk never filled";
  // Still serving: health is fine and the process stops cleanly.
  EXPECT_EQ(c.request("GET", "/v1/health").status, 200u);
  s.process().signal(SIGTERM);
  EXPECT_EQ(s.process().wait(), 0);

  std::vector<std::string> logged;
  for (const auto& line : lines_of(s.process().err()))
    if (line.find("No space left on device") != std::string::npos) logged.push_back(line);
  ASSERT_FALSE(logged.empty()) << s.process().err();
  // The first occurrence in full, with the path; then at most one line per 10 s.
  EXPECT_EQ(logged[0].rfind("ep-ingest: archive: " + disk + "/archive/acme/", 0), 0u) << logged[0];
  EXPECT_LE(logged.size(), 2 + static_cast<size_t>(elapsed / 10)) << s.process().err();
}

// Format 2: several rounds of load and SIGKILL at a random moment on the same archive;
// each restart recovers the torn tail of the segment it appends to. Afterwards every
// acknowledged batch_id is stored exactly once, with its exact body, and nothing but
// torn tails (never acknowledged) is reported by the scan that replay uses.
TEST(IngestDurability, KilledRoundsOnOneSegmentLogKeepEveryAckExactlyOnce) {
  std::string dir = make_temp_dir();
  auto key = new_key("acme");
  write_keys(dir + "/keys.ndjson", {key});
  std::string uri = "file://" + dir + "/archive";
  std::mt19937 rng(std::random_device{}());
  std::map<std::string, std::string> acked;  // batch_id -> body
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    int kill_after = std::uniform_int_distribution<int>(1, 300)(rng);
    SCOPED_TRACE("round " + std::to_string(round) + ", SIGKILL after " + std::to_string(kill_after) + " acks");
    Server s(dir, {"--keys", dir + "/keys.ndjson", "--archive", uri, "--threads", "2"});
    load_then_kill(s, key.key, "r" + std::to_string(round) + "-", kill_after, acked);
  }

  ArchiveOptions ro;
  ro.create = false;
  auto archive = Archive::open(uri, ro);
  ASSERT_TRUE(archive.is_ok()) << archive.status().message();
  EXPECT_EQ((*archive)->format(), 2);
  std::map<std::string, int> times;
  std::map<std::string, std::string> stored;
  ASSERT_TRUE((*archive)->scan({}, [&](const ArchiveObject& o, std::string_view bytes, const Status& p) {
    if (!p.is_ok()) {
      EXPECT_NE(p.message().find("torn tail"), std::string::npos) << o.uri << ": " << p.message();
      return true;
    }
    times[o.batch_id]++;
    stored[o.batch_id] = std::string(bytes);
    return true;
  }).is_ok());
  for (const auto& [id, n] : times) EXPECT_EQ(n, 1) << id << " stored " << n << " times";
  for (const auto& [id, body] : acked) {
    auto it = stored.find(id);
    ASSERT_NE(it, stored.end()) << "acknowledged batch " << id << " is not in the archive";
    rapidjson::Document d;
    d.Parse(it->second.data(), it->second.size());
    ASSERT_TRUE(d.IsObject()) << id;
    EXPECT_EQ(std::string(d["raw"].GetString()), body) << id;
  }
}

}  // namespace
}  // namespace ep::ingest::test
