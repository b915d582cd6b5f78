// ep-load --follow against real processes: ep-ingest over HTTP on 127.0.0.1 writing a
// file:// format 2 archive (no pipe), real Postgres (pg_virtualenv, or a cluster of our
// own for the outage), ep-archive seal, ep-admin check and promtool. Every test compares
// Postgres with what was acknowledged and with `ep-archive replay`.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "ep/segment_log.h"
#include "harness.h"
#include "pg_fixture.h"
#include "reader.h"

namespace {

namespace it = ep::ingest::test;
using eptest::count;
using eptest::eventually;
using Clock = std::chrono::steady_clock;

std::int64_t env_int(const char* name, std::int64_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : dflt;
}

// A batch of n points at timestamps no other batch of the test uses.
std::string unique_payload(const std::string& device, std::int64_t seq, int n) {
  static const ep::TimeNs base = ep::now_ns() - 3600 * ep::kNsPerSec;
  std::string s = R"({"device_external_id":")" + device + R"(","metrics":[)";
  for (int i = 0; i < n; ++i) {
    if (i) s += ',';
    ep::TimeNs ts = base + (seq * n + i) * ep::kNsPerMs;
    s += R"({"name":"m","ts":")" + ep::format_rfc3339(ts) + R"(","value":)" + std::to_string(seq) + "}";
  }
  return s + "]}";
}

std::string batch_id_of(const std::string& body) {
  const std::string k = R"("batch_id":")";
  size_t at = body.find(k);
  if (at == std::string::npos) return "";
  return body.substr(at + k.size(), body.find('"', at + k.size()) - at - k.size());
}

// Posts batches to ep-ingest from one keep-alive connection, at `rate` per second (0 =
// as fast as answered), and keeps the batch ids acknowledged with 202.
class LoadGen {
 public:
  LoadGen(unsigned short port, std::string key, int points, int rate)
      : port_(port), key_(std::move(key)), points_(points), rate_(rate) {}
  ~LoadGen() { stop(); }
  void start() {
    th_ = std::thread([this] { loop(); });
  }
  // Posts n batches synchronously (no thread).
  void post(int n) {
    it::Client c(port_);
    for (int i = 0; i < n; ++i) one(c);
  }
  void stop() {
    stop_ = true;
    if (th_.joinable()) th_.join();
  }
  std::set<std::string> acked() {
    std::lock_guard lk(mu_);
    return acked_;
  }
  size_t acked_count() {
    std::lock_guard lk(mu_);
    return acked_.size();
  }
  int failures() const { return failures_; }
  std::string last_failure() {
    std::lock_guard lk(mu_);
    return last_failure_;
  }

 private:
  void one(it::Client& c) {
    std::int64_t seq = seq_++;
    auto r = c.post(unique_payload("dev", seq, points_), {{"X-API-Key", key_}, {"Content-Type", "application/json"}});
    std::lock_guard lk(mu_);
    std::string id = batch_id_of(r.body);
    if (r.status == 202 && !id.empty()) {
      acked_.insert(id);
    } else {
      ++failures_;
      last_failure_ = std::to_string(r.status) + " " + r.body;
    }
  }
  void loop() {
    std::unique_ptr<it::Client> c;
    auto next = Clock::now();
    while (!stop_) {
      try {
        if (!c) c = std::make_unique<it::Client>(port_);
        one(*c);
      } catch (const std::exception& e) {
        ++failures_;
        std::lock_guard lk(mu_);
        last_failure_ = e.what();
        c.reset();
      }
      if (rate_ > 0) {  // pacing of the offered load, not a wait for a condition
        next += std::chrono::microseconds(1000000 / rate_);
        std::this_thread::sleep_until(next);
      }
    }
  }
  unsigned short port_;
  std::string key_;
  int points_, rate_;
  static inline std::atomic<std::int64_t> seq_{0};  // unique timestamps across generators
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::mutex mu_;
  std::set<std::string> acked_;
  std::string last_failure_;
  std::thread th_;
};

// HTTP GET of /metrics on 127.0.0.1:port.
std::string get_metrics(unsigned short port) {
  try {
    it::Client c(port);
    auto r = c.request("GET", "/metrics");
    return r.status == 200 ? r.body : "";
  } catch (const std::exception&) {
    return "";
  }
}

double metric(const std::string& body, const std::string& name) {
  size_t at = body.find("\n" + name + "{");
  if (at == std::string::npos) return -1;
  size_t sp = body.find("} ", at);
  return std::stod(body.substr(sp + 2));
}

// A running `ep-load --follow`: its metrics port is read from its log.
class Follower {
 public:
  Follower(const std::string& archive, const std::string& db, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {EP_LOAD_BIN, "--follow", archive, "--db", db, "--no-progress",
                                     "--metrics-listen", "127.0.0.1:0", "--poll-interval", "50ms"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    p_ = std::make_unique<eptest::Proc>(argv);
    const std::string k = "metrics on http://127.0.0.1:";
    bool up = eptest::eventually([&] { return p_->err_so_far().find(k) != std::string::npos; }, 60000);
    std::string err = p_->err_so_far();
    if (up) port_ = static_cast<unsigned short>(std::stoi(err.substr(err.find(k) + k.size())));
  }
  unsigned short port() const { return port_; }
  eptest::Proc& proc() { return *p_; }
  std::string metrics() { return get_metrics(port_); }
  int stop() {
    p_->kill(SIGTERM);
    return p_->wait();
  }

 private:
  std::unique_ptr<eptest::Proc> p_;
  unsigned short port_ = 0;
};

// batch_id -> points, from `ep-archive replay`.
std::map<std::string, std::int64_t> replay(const std::string& archive) {
  auto r = eptest::run({EP_ARCHIVE_BIN, "replay", "--archive", archive});
  EXPECT_EQ(r.status, 0) << r.err;
  std::map<std::string, std::int64_t> out;
  std::istringstream in(r.out);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ep::load::Group g;
    auto s = ep::load::parse_line(line, "replay", ++n, g);
    EXPECT_TRUE(s.is_ok()) << s.message();
    if (s.is_ok()) out[g.entries[0].batch_id] = g.entries[0].count;
  }
  return out;
}

// Postgres holds every batch of the archive exactly once, and those are exactly the
// acknowledged ones.
void expect_exactly_once(ep::pg::Conn& c, const std::string& archive, const std::set<std::string>& acked) {
  auto rep = replay(archive);
  std::set<std::string> rep_ids;
  std::int64_t points = 0;
  for (const auto& [id, n] : rep) {
    rep_ids.insert(id);
    points += n;
  }
  EXPECT_EQ(rep_ids, acked) << "the archive holds exactly the acknowledged batches";
  auto r = c.exec("SELECT batch_id::text, points FROM ingest_batches WHERE status = 'loaded'");
  ASSERT_TRUE(r) << r.status().message();
  std::map<std::string, std::int64_t> db;
  for (int i = 0; i < r->size(); ++i) db[r->str(i, 0)] = r->get_int(i, 1);
  EXPECT_EQ(db, rep) << "ingest_batches (batch ids, points) equals the replay";
  EXPECT_EQ(count(c, "SELECT count(*) FROM datapoints"), points);
  EXPECT_EQ(count(c, "SELECT coalesce(sum(batches), 0) FROM usage_daily"), static_cast<std::int64_t>(rep.size()))
      << "every batch was counted once";
  EXPECT_EQ(count(c, "SELECT coalesce(sum(points_ingested), 0) FROM usage_daily"), points);
}

// A fresh ep-ingest directory: keys file with one key of tenant acme, archive below it.
struct Ingest {
  std::string dir = it::make_temp_dir();
  std::string keys = dir + "/keys.ndjson";
  std::string archive = "file://" + dir + "/archive";
  it::TestKey key = it::new_key("acme");
  Ingest() { it::write_keys(keys, {key}); }
  std::unique_ptr<it::Server> start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--keys", keys, "--archive", archive, "--no-time-bounds"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<it::Server>(dir, args);
  }
  static void stop(it::Server& s) {
    s.process().signal(SIGTERM);
    auto st = s.process().wait();
    EXPECT_TRUE(st.has_value() && *st == 0) << s.process().err();
  }
  // Segment files (relative to the archive root) with the given extension.
  std::vector<std::string> files(const std::string& ext) const {
    std::vector<std::string> out;
    std::string root = dir + "/archive";
    for (const auto& e : std::filesystem::recursive_directory_iterator(root))
      if (e.path().extension() == ext && e.path().filename().string().starts_with("seg-"))
        out.push_back(e.path().string().substr(root.size() + 1));
    return out;
  }
};

class FollowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    db_.migrate();
    c_ = db_.connect();
    EP_ASSERT_OK(c_.run("INSERT INTO tenants (slug) VALUES ('acme')"));
  }
  std::int64_t loaded() { return count(c_, "SELECT count(*) FROM ingest_batches WHERE status = 'loaded'"); }
  std::int64_t consumed(const std::string& consumer) {
    auto r = c_.exec("SELECT coalesce(sum(records), 0)::int8 FROM archive_cursors WHERE consumer = $1", {consumer});
    return r ? r->get_int(0, 0) : -1;
  }
  eptest::TempDatabase db_;
  ep::pg::Conn c_;
  Ingest ing_;
};

// The loader SIGKILLed at random moments under steady load and restarted: every
// acknowledged batch is in Postgres once, and no restart reads a batch twice (the
// cursor commits with the rows).
TEST_F(FollowTest, SigkillAtRandomMomentsUnderLoadLosesAndDoublesNothing) {
  auto ingest = ing_.start();
  LoadGen gen(ingest->port(), ing_.key.key, 5, 300);
  gen.start();
  std::mt19937 rng(static_cast<unsigned>(env_int("EP_TEST_SEED", std::random_device{}())));
  std::int64_t before = 0;
  for (int round = 0; round < 6; ++round) {
    Follower f(ing_.archive, db_.url(), {"--batch-size", "7"});
    ASSERT_NE(f.port(), 0) << f.proc().err_so_far();
    // Let it make progress, then kill it at a random moment of its work.
    ASSERT_TRUE(eventually([&] { return loaded() > before; }, 60000)) << f.proc().err_so_far();
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));  // the random moment
    f.proc().kill(SIGKILL);
    EXPECT_EQ(f.proc().wait(), 128 + SIGKILL);
    before = loaded();
  }
  gen.stop();
  ASSERT_EQ(gen.failures(), 0) << gen.last_failure();
  auto acked = gen.acked();
  Follower f(ing_.archive, db_.url());
  ASSERT_TRUE(eventually([&] { return loaded() == static_cast<std::int64_t>(acked.size()); }, 120000))
      << loaded() << " of " << acked.size() << "\n" << f.proc().err_so_far();
  EXPECT_EQ(f.stop(), 0);
  EXPECT_NE(f.proc().err().find("skipped 0 batches already loaded"), std::string::npos) << f.proc().err();
  Ingest::stop(*ingest);
  expect_exactly_once(c_, ing_.archive, acked);
}

// Records consumed from an active segment, the segment sealed (ep-archive seal), the
// loader restarted: it goes on in the .seg after the records it loaded.
TEST_F(FollowTest, CursorSurvivesSealing) {
  auto ingest = ing_.start();
  LoadGen gen(ingest->port(), ing_.key.key, 3, 0);
  gen.post(30);
  {
    Follower f(ing_.archive, db_.url(), {"--batch-size", "4"});
    ASSERT_TRUE(eventually([&] { return loaded() == 30 && consumed("ep-load") == 30; })) << f.proc().err_so_far();
    ASSERT_EQ(f.stop(), 0) << f.proc().err();
  }
  gen.post(20);  // into the same active segment, not loaded yet
  Ingest::stop(*ingest);
  ASSERT_EQ(ing_.files(".wal").size(), 1u);
  auto sealed = eptest::run({EP_ARCHIVE_BIN, "seal", "--archive", ing_.archive});
  ASSERT_EQ(sealed.status, 0) << sealed.err;
  ASSERT_EQ(ing_.files(".wal").size(), 0u);
  ASSERT_EQ(ing_.files(".seg").size(), 1u);
  {
    Follower f(ing_.archive, db_.url(), {"--batch-size", "4"});
    ASSERT_TRUE(eventually([&] { return loaded() == 50 && consumed("ep-load") == 50; })) << f.proc().err_so_far();
    ASSERT_EQ(f.stop(), 0);
    // Nothing reloaded (the 30 were not read again), nothing skipped (the 20 loaded).
    EXPECT_NE(f.proc().err().find("read 20 records"), std::string::npos) << f.proc().err();
    EXPECT_NE(f.proc().err().find("loaded 20 batches"), std::string::npos) << f.proc().err();
    EXPECT_NE(f.proc().err().find("skipped 0 batches already loaded"), std::string::npos) << f.proc().err();
  }
  EXPECT_EQ(count(c_, "SELECT count(*) FROM archive_cursors WHERE done AND records = 50"), 1);
  // A new writer starts a new segment; the sealed one is not read again.
  ingest = ing_.start();
  LoadGen gen2(ingest->port(), ing_.key.key, 3, 0);
  gen2.post(10);
  {
    Follower f(ing_.archive, db_.url());
    ASSERT_TRUE(eventually([&] { return loaded() == 60; })) << f.proc().err_so_far();
    ASSERT_EQ(f.stop(), 0);
    EXPECT_NE(f.proc().err().find("read 10 records"), std::string::npos) << f.proc().err();
  }
  Ingest::stop(*ingest);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM ingest_batches"), 60);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 180);
}

// Two consumers follow one log independently; each one's lag is on /metrics (valid for
// promtool) and in ep-admin check, which warns about the one that stopped while the log grew.
TEST_F(FollowTest, TwoConsumersLagMetricsAndCheck) {
  auto ingest = ing_.start();
  LoadGen gen(ingest->port(), ing_.key.key, 2, 0);
  gen.post(40);
  Follower a(ing_.archive, db_.url(), {"--consumer", "a", "--tenant", "acme"});
  Follower b(ing_.archive, db_.url(), {"--consumer", "b", "--tenant", "acme"});
  ASSERT_NE(a.port(), 0);
  ASSERT_NE(b.port(), 0);
  for (auto* f : {&a, &b}) {
    ASSERT_TRUE(eventually([&] {
      std::string m = f->metrics();
      return metric(m, "ep_load_follow_lag_known") == 1 && metric(m, "ep_load_follow_lag_batches") == 0 &&
             metric(m, "ep_load_follow_head_batches") == 40;
    })) << f->metrics();
  }
  EXPECT_EQ(consumed("a"), 40);
  EXPECT_EQ(consumed("b"), 40);
  EXPECT_EQ(metric(a.metrics(), "ep_load_follow_batches_loaded_total") +
                metric(b.metrics(), "ep_load_follow_batches_loaded_total"),
            40);
  // promtool accepts the exposition.
  ASSERT_TRUE(std::string(EP_PROMTOOL).size() > 0) << "promtool is not installed (scripts/bootstrap installs prometheus)";
  for (auto* f : {&a, &b}) {
    std::string path = ing_.dir + "/metrics.txt";
    std::ofstream(path) << f->metrics();
    auto r = eptest::run({"/bin/sh", "-c", std::string(EP_PROMTOOL) + " check metrics < " + path});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
  }
  auto check = [&](const std::string& stall) {
    return eptest::run({EP_ADMIN_BIN, "check", "--db", db_.url(), "--stall", stall});
  };
  auto r = check("5m");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("consumer\ta\t" + ing_.archive + " (tenant acme)\tconsumed=40\tlag_batches=0"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("consumer\tb\t" + ing_.archive + " (tenant acme)\tconsumed=40\tlag_batches=0"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  // b stops; the log grows; a follows; b's lag shows in a's head and /metrics of a stays at 0.
  b.proc().kill(SIGSTOP);
  gen.post(10);
  ASSERT_TRUE(eventually([&] {
    std::string m = a.metrics();
    return consumed("a") == 50 && metric(m, "ep_load_follow_lag_batches") == 0 &&
           metric(m, "ep_load_follow_head_batches") == 50;
  }));
  // (a reports every 5 s, so a --stall above that leaves it out of the warnings.)
  ASSERT_TRUE(eventually([&] {
    r = check("8s");
    return r.err.find("consumer 'b' is 10 batches behind") != std::string::npos;
  }, 60000)) << r.out << r.err;
  EXPECT_NE(r.out.find("consumer\tb\t" + ing_.archive + " (tenant acme)\tconsumed=40\tlag_batches=10"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.err.find("consumer 'a'"), std::string::npos) << r.err;
  b.proc().kill(SIGCONT);
  ASSERT_TRUE(eventually([&] { return consumed("b") == 50; }));
  EXPECT_EQ(a.stop(), 0);
  EXPECT_EQ(b.stop(), 0);
  Ingest::stop(*ingest);
  expect_exactly_once(c_, ing_.archive, gen.acked());
}

// A record failing its checksum in the middle of a segment: reported with segment and
// offset, skipped, the records around it loaded; a later writer goes on in a new segment.
TEST_F(FollowTest, DamagedRecordIsReportedSkippedAndTheRestLoaded) {
  auto ingest = ing_.start();
  LoadGen gen(ingest->port(), ing_.key.key, 2, 0);
  gen.post(5);
  Ingest::stop(*ingest);
  auto wal = ing_.files(".wal");
  ASSERT_EQ(wal.size(), 1u);
  std::string path = ing_.dir + "/archive/" + wal[0];
  std::vector<std::pair<std::uint64_t, std::string>> recs;
  ep::seglog::Visitor v;
  v.record = [&](const ep::seglog::Found& r) {
    recs.emplace_back(r.offset, std::string(r.batch.batch_id));
    return true;
  };
  v.problem = [](const ep::seglog::Problem&) { return true; };
  EP_ASSERT_OK(ep::seglog::scan_file(path, v));
  ASSERT_EQ(recs.size(), 5u);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(recs[2].first + 40));
    f.put('#');
  }
  Follower f(ing_.archive, db_.url());
  ASSERT_TRUE(eventually([&] { return loaded() == 4; })) << f.proc().err_so_far();
  std::string where = wal[0] + "@" + std::to_string(recs[2].first);
  ASSERT_TRUE(eventually([&] { return f.proc().err_so_far().find(where) != std::string::npos; }))
      << f.proc().err_so_far();
  EXPECT_NE(f.proc().err_so_far().find("skipped, never loaded"), std::string::npos) << f.proc().err_so_far();
  EXPECT_EQ(count(c_, "SELECT count(*) FROM ingest_batches WHERE batch_id = '" + recs[2].second + "'"), 0);
  for (int i : {0, 1, 3, 4})
    EXPECT_EQ(count(c_, "SELECT count(*) FROM ingest_batches WHERE batch_id = '" + recs[i].second + "'"), 1);
  EXPECT_EQ(metric(f.metrics(), "ep_load_follow_records_damaged_total"), 1);
  // ep-ingest leaves the damaged segment as it is and writes a new one.
  ingest = ing_.start();
  LoadGen gen2(ingest->port(), ing_.key.key, 2, 0);
  gen2.post(2);
  ASSERT_TRUE(eventually([&] { return loaded() == 6; })) << f.proc().err_so_far();
  EXPECT_EQ(f.stop(), 0);
  Ingest::stop(*ingest);
  EXPECT_EQ(count(c_, "SELECT count(*) FROM datapoints"), 12);
}

TEST_F(FollowTest, RefusesWhatItCannotFollow) {
  auto r = eptest::run({EP_LOAD_BIN, "--follow", "s3://bucket/x", "--db", db_.url()});
  EXPECT_EQ(r.status, 64) << r.err;
  r = eptest::run({EP_LOAD_BIN, "--follow", ing_.archive, "--db", db_.url(), "--emit"});
  EXPECT_EQ(r.status, 64) << r.err;
  r = eptest::run({EP_LOAD_BIN, "--tenant", "acme", "--db", db_.url()});
  EXPECT_EQ(r.status, 64) << r.err;
  EXPECT_NE(r.err.find("need --follow"), std::string::npos) << r.err;
  // A format 1 archive is not a segment log.
  auto w = eptest::run({EP_ARCHIVE_BIN, "--archive", "file://" + ing_.dir + "/v1", "--format", "1"}, "");
  r = eptest::run({EP_LOAD_BIN, "--follow", "file://" + ing_.dir + "/v1", "--db", db_.url()});
  EXPECT_NE(r.status, 0) << r.err;
}

// Postgres stopped for a while under steady HTTP load (EP_FOLLOW_OUTAGE_S, default 60):
// every request is acknowledged throughout, the lag shows on /metrics, and once the
// server is back the loader catches up by itself, exactly once.
class FollowOutage : public eptest::OwnClusterTest {
 protected:
  std::int64_t loaded() { return count_now("SELECT count(*) FROM ingest_batches WHERE status = 'loaded'"); }
  Ingest ing_;
};

TEST_F(FollowOutage, PostgresDownUnderLoadThenCatchesUpExactlyOnce) {
  const std::int64_t outage_s = env_int("EP_FOLLOW_OUTAGE_S", 60);
  const int rate = static_cast<int>(env_int("EP_FOLLOW_RATE", 200));
  const int points = 10;
  auto ingest = ing_.start();
  Follower f(ing_.archive, cluster_.url("ep"));
  ASSERT_NE(f.port(), 0) << f.proc().err_so_far();
  LoadGen gen(ingest->port(), ing_.key.key, points, rate);
  gen.start();
  ASSERT_TRUE(eventually([&] { return loaded() >= 50; }, 60000)) << f.proc().err_so_far();
  c_ = ep::pg::Conn();
  ASSERT_TRUE(cluster_.stop("fast"));
  const auto down = Clock::now();
  ASSERT_TRUE(eventually([&] { return f.proc().err_so_far().find("retry") != std::string::npos; }));
  // The outage lasts outage_s (the scenario's length, not a wait for a condition);
  // meanwhile every request is acknowledged and the lag on /metrics grows.
  double lag_seen = 0;
  while (Clock::now() - down < std::chrono::seconds(outage_s)) {
    ASSERT_EQ(gen.failures(), 0) << gen.last_failure();
    std::string m = f.metrics();
    ASSERT_FALSE(m.empty()) << "the loader stopped serving /metrics\n" << f.proc().err_so_far();
    lag_seen = std::max(lag_seen, metric(m, "ep_load_follow_lag_batches"));
    EXPECT_EQ(metric(m, "ep_load_follow_postgres_up"), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  gen.stop();
  ASSERT_EQ(gen.failures(), 0) << gen.last_failure();
  const auto acked = gen.acked();
  EXPECT_GT(lag_seen, 0) << "the lag grew on /metrics during the outage";
  ASSERT_TRUE(cluster_.start());
  const auto up = Clock::now();
  const std::int64_t at_restart = loaded();
  ASSERT_TRUE(eventually([&] { return loaded() == static_cast<std::int64_t>(acked.size()); }, 600000))
      << loaded() << " of " << acked.size() << "\n" << f.proc().err_so_far();
  const double secs = std::chrono::duration<double>(Clock::now() - up).count();
  const double backlog = static_cast<double>(acked.size()) - static_cast<double>(at_restart);
  std::cout << "outage " << outage_s << " s at " << rate << " req/s: " << acked.size() << " batches acknowledged, "
            << static_cast<std::int64_t>(backlog) << " behind at restart, caught up in " << secs << " s ("
            << backlog / secs << " batches/s, " << backlog * points / secs << " points/s)\n";
  ASSERT_TRUE(eventually([&] { return metric(f.metrics(), "ep_load_follow_lag_batches") == 0; }));
  EXPECT_EQ(f.stop(), 0) << f.proc().err();
  Ingest::stop(*ingest);
  expect_exactly_once(c_, ing_.archive, acked);
}

}  // namespace
