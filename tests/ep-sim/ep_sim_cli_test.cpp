// ep-sim as a process: byte-identical output per seed, truth file, usage errors, the man
// page, and (when ep-ingest is built) POSTing to a real ep-ingest on 127.0.0.1.
#include <signal.h>

#include <fstream>

#include <gtest/gtest.h>

#include "../ep-archive/test_util.h"
#include "ep/fsutil.h"
#include "ep/json.h"
#include "ep/keys.h"

namespace ep {
namespace {

const std::string kBin = EP_SIM_BIN;

test::RunResult sim(std::vector<std::string> args) {
  args.insert(args.begin(), kBin);
  return test::run(args);
}

TEST(EpSimCli, SameSeedSameBytesDifferentSeedDiffers) {
  test::TempDir dir;
  std::vector<std::string> args = {"--devices", "10", "--metrics", "temp,humidity,voltage", "--duration", "7d",
                                   "--seed", "42", "--start", "2026-01-01T00:00:00Z"};
  auto a1 = args, a2 = args;
  a1.insert(a1.end(), {"--truth", dir.path() + "/t1"});
  a2.insert(a2.end(), {"--truth", dir.path() + "/t2"});
  auto r1 = sim(a1), r2 = sim(a2);
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(r1.out.size(), r2.out.size());
  EXPECT_TRUE(r1.out == r2.out) << "same seed must give byte-identical payloads";
  EXPECT_EQ(*fs::read_file(dir.path() + "/t1"), *fs::read_file(dir.path() + "/t2"));
  EXPECT_EQ(test::lines_of(r1.out).size(), 10u * 24 * 60 * 7);
  auto truth = test::lines_of(*fs::read_file(dir.path() + "/t1"));
  EXPECT_GT(truth.size(), 100u);
  for (const char* label : {"spike", "drop", "drift", "stuck", "missingness"}) {
    bool seen = false;
    for (auto& t : truth) seen |= t.find(std::string("\"type\":\"") + label + "\"") != std::string::npos;
    EXPECT_TRUE(seen) << label;
  }
  EXPECT_NE(r1.err.find("210 anomalies"), std::string::npos) << r1.err;
  auto other = args;
  other[7] = "43";
  auto r3 = sim(other);
  EXPECT_NE(r1.out, r3.out);
}

TEST(EpSimCli, UsageErrorsExit64) {
  EXPECT_EQ(sim({"--duration", "forever"}).exit_code, 64);
  EXPECT_EQ(sim({"--metrics", "bad name"}).exit_code, 64);
  EXPECT_EQ(sim({"--start", "soon"}).exit_code, 64);
  EXPECT_EQ(sim({"--url", "http://127.0.0.1:1"}).exit_code, 64) << "--url needs --key";
  auto help = sim({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("ep-sim --devices 10"), std::string::npos);
}

TEST(EpSimCli, BrokenPipeEndsQuietly) {
  auto r = test::run({"/bin/sh", "-c", kBin + " --devices 50 --duration 7d | head -1 >/dev/null"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err.find("Broken pipe"), std::string::npos) << r.err;
}

TEST(EpSimMan, EveryHelpOptionIsInTheManPage) {
  std::string man = *fs::read_file(std::string(EP_SOURCE_DIR) + "/man/ep-sim.1");
  int n = 0;
  auto missing = test::options_missing_from_man(sim({"--help"}).out, man, &n);
  EXPECT_TRUE(missing.empty()) << "not in man/ep-sim.1: " << ::testing::PrintToString(missing);
  EXPECT_GT(n, 15);
}

#ifdef EP_INGEST_BIN
// A real ep-ingest on 127.0.0.1 with a keys file; ep-sim POSTs to it.
class LiveIngest {
 public:
  explicit LiveIngest(const std::string& dir) {
    key_ = keys::generate_key();
    keys::KeyEntry e;
    e.prefix = std::string(keys::parse_key(key_)->prefix);
    e.hash = keys::hash_key("sim-test-pepper", key_);
    e.tenant = "demo";
    e.created_at = now_ns();
    EXPECT_TRUE(keys::save_keys_file(dir + "/keys", {e}));
    out_path_ = dir + "/batches.ndjson";
    int err[2];
    EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      ::dup2(err[1], 2);
      ::setenv("API_KEY_HASH_SALT", "sim-test-pepper", 1);
      std::string keys = dir + "/keys";
      ::execl(EP_INGEST_BIN, EP_INGEST_BIN, "--listen", "127.0.0.1:0", "--keys", keys.c_str(),
              "--no-time-bounds", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(err[1]);
    err_fd_ = err[0];
    std::string buf;
    char tmp[512];
    while (buf.find("listening on http://") == std::string::npos || buf.find('\n', buf.find("listening on")) == std::string::npos) {
      ssize_t n = ::read(err_fd_, tmp, sizeof tmp);
      if (n <= 0) break;
      buf.append(tmp, static_cast<size_t>(n));
    }
    size_t at = buf.find("listening on http://");
    if (at != std::string::npos) {
      size_t end = buf.find_first_of(" \n", at + 20);
      url_ = buf.substr(at + 13, end - at - 13);
    }
    EXPECT_FALSE(url_.empty()) << buf;
  }
  // Stops the server (SIGTERM drains) and returns what it emitted.
  std::string stop() {
    ::kill(pid_, SIGTERM);
    int st;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return *fs::read_file(out_path_);
  }
  ~LiveIngest() {
    if (pid_ > 0) stop();
    ::close(err_fd_);
  }
  const std::string& url() const { return url_; }
  const std::string& key() const { return key_; }

 private:
  std::string key_, url_, out_path_;
  pid_t pid_ = -1;
  int err_fd_ = -1;
};

TEST(EpSimPost, PostsEveryPayloadToARealIngest) {
  test::TempDir dir;
  LiveIngest ingest(dir.path());
  ASSERT_FALSE(ingest.url().empty());
  std::vector<std::string> args = {"--devices", "3", "--duration", "2h", "--seed", "5", "--start", "2026-01-01"};
  auto expected = sim(args);
  ASSERT_EQ(expected.exit_code, 0);
  auto posted = args;
  posted.insert(posted.end(), {"--url", ingest.url(), "--key", ingest.key(), "--rate", "2000"});
  auto r = sim(posted);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "") << "with --url nothing goes to stdout";
  auto batches = test::lines_of(ingest.stop());
  auto payloads = test::lines_of(expected.out);
  ASSERT_EQ(batches.size(), payloads.size());
  // Each batch carries the exact payload as its raw body, in order.
  for (size_t i = 0; i < payloads.size(); ++i) {
    rapidjson::Document d;
    ASSERT_TRUE(parse_json(batches[i], d));
    EXPECT_EQ(std::string(d["raw"].GetString(), d["raw"].GetStringLength()), payloads[i]);
    EXPECT_STREQ(d["tenant"].GetString(), "demo");
  }
}

TEST(EpSimPost, RefusedKeyIsAUsageError) {
  test::TempDir dir;
  LiveIngest ingest(dir.path());
  auto r = sim({"--duration", "1h", "--url", ingest.url(), "--key", keys::generate_key()});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("refused --key"), std::string::npos) << r.err;
}

TEST(EpSimPost, UnreachableServerIsUnavailable) {
  auto r = sim({"--duration", "1h", "--url", "http://127.0.0.1:1", "--key", keys::generate_key()});
  EXPECT_EQ(r.exit_code, 69) << r.err;
}

// The docs/architecture.md §1 composition: ep-sim | ep-ingest --stdin | ep-archive, then replay.
TEST(EpSimPipeline, SimIngestArchiveReplay) {
  test::TempDir dir;
  std::string arch = "file://" + dir.path() + "/arch";
  auto r = test::run({"/bin/bash", "-c",
                      "set -o pipefail; " + kBin + " --devices 4 --duration 6h --seed 3 --start 2026-01-01 | " +
                          EP_INGEST_BIN + " --stdin --tenant demo --no-time-bounds | " + EP_ARCHIVE_BIN +
                          " --archive " + arch + " | wc -l"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::stoi(r.out), 4 * 360);
  auto rep = test::run({EP_ARCHIVE_BIN, "replay", "--archive", arch, "--device", "dev-002"});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  EXPECT_EQ(test::lines_of(rep.out).size(), 360u);
  auto v = test::run({EP_ARCHIVE_BIN, "verify", "--archive", arch});
  EXPECT_EQ(v.exit_code, 0) << v.err;
}
#endif

}  // namespace
}  // namespace ep
