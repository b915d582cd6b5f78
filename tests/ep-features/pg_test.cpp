// Postgres mode against a real server (pg_virtualenv sets PGHOST etc.). Each fixture
// creates and migrates its own database; an unreachable server fails the tests.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "ep/crypto.h"
#include "ep/pg.h"
#include "ep/schema.h"
#include "extractor.h"
#include "output.h"
#include "test_util.h"

namespace ep::features {
namespace {

std::string env_or(const char* name, const char* dflt) {
  const char* v = std::getenv(name);
  return v && *v ? v : dflt;
}

struct Proc {
  int code = -1;
  std::string out, err;
};

Proc run(const std::string& args) {
  char err_path[] = "/tmp/ep_features_pg_errXXXXXX";
  int fd = ::mkstemp(err_path);
  ::close(fd);
  std::string cmd = std::string(EP_FEATURES_BIN) + " --no-progress " + args + " 2>" + err_path;
  Proc p;
  FILE* f = ::popen(cmd.c_str(), "r");
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) p.out.append(buf, n);
  int st = ::pclose(f);
  p.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  FILE* e = std::fopen(err_path, "r");
  while ((n = std::fread(buf, 1, sizeof buf, e)) > 0) p.err.append(buf, n);
  std::fclose(e);
  ::unlink(err_path);
  return p;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class FeaturesPg : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = "dbname=" + env_or("PGDATABASE", "postgres");
    db_ = "ep_features_test_" + std::to_string(::getpid()) + "_" + crypto::random_base62(6);
    for (char& ch : db_) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto admin = pg::Conn::connect(admin_, "ep-features-test");
    ASSERT_TRUE(admin.is_ok()) << "Postgres unreachable (run under pg_virtualenv): "
                               << admin.status().message();
    ASSERT_TRUE(admin->run("CREATE DATABASE " + db_).is_ok());
    auto c = pg::Conn::connect("dbname=" + db_, "ep-features-test");
    ASSERT_TRUE(c.is_ok());
    conn_ = std::make_unique<pg::Conn>(std::move(*c));
    ASSERT_TRUE(schema::migrate(*conn_).is_ok());
    tenant_id_ = one("INSERT INTO tenants (slug) VALUES ('acme') RETURNING tenant_id");
  }
  void TearDown() override {
    conn_.reset();
    auto admin = pg::Conn::connect(admin_, "ep-features-test");
    if (admin) (void)admin->run("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
  }
  std::string one(const std::string& sql, std::initializer_list<pg::Param> p = {}) {
    auto r = conn_->exec(sql, p);
    EXPECT_TRUE(r.is_ok()) << sql << ": " << r.status().message();
    if (!r.is_ok() || r->empty()) return "";
    return r->str(0, 0);
  }
  // A series with `count` points every second from kT0, value = f(i) computed in SQL.
  std::string add_series(const std::string& device, const std::string& metric, int first,
                         int count, const std::string& value_sql) {
    std::string dev = one(
        "INSERT INTO devices (tenant_id, external_id) VALUES ($1, $2) ON CONFLICT (tenant_id, "
        "external_id) DO UPDATE SET external_id = excluded.external_id RETURNING device_id",
        {tenant_id_, device});
    std::string m = one(
        "INSERT INTO metrics (tenant_id, device_id, name) VALUES ($1, $2, $3) RETURNING metric_id",
        {tenant_id_, dev, metric});
    EXPECT_TRUE(conn_
                    ->run("INSERT INTO datapoints (tenant_id, metric_id, ts, value) SELECT $1, $2, "
                          "$3::timestamptz + i * interval '1 second', " +
                              value_sql + " FROM generate_series($4::int, $5::int) AS i",
                          {tenant_id_, m, pg::ts_param(test::kT0), first, first + count - 1})
                    .is_ok());
    return m;
  }
  std::string db_arg() const { return "--db dbname=" + db_; }

  std::string admin_, db_, tenant_id_;
  std::unique_ptr<pg::Conn> conn_;
};

// The same points through stdin mode (the in-process engine) give the same records.
std::string expected_windows(const Options& o, const std::vector<std::pair<std::string, std::vector<double>>>& series) {
  struct Sink final : WindowSink {
    std::string out;
    void on_window(const WindowOut& w) override {
      append_window_json(out, w);
      out += '\n';
    }
  } sink;
  Extractor x(o, sink);
  for (const auto& [device, values] : series) {
    auto h = x.series("acme", device, "v");
    for (size_t i = 0; i < values.size(); ++i)
      x.add(h, test::kT0 + static_cast<TimeNs>(i) * test::kS, values[i]);
    x.finish_series(h);
  }
  return sink.out;
}

TEST_F(FeaturesPg, WindowsMatchStdinModeOnTheSamePoints) {
  add_series("m1", "v", 0, 100, "(i % 7)::float8");
  add_series("m2", "v", 0, 100, "(i * 0.5)::float8");
  Proc p = run(db_arg() + " --tenant acme --from 2026-01-05T00:00:00Z --to 2026-01-05T00:01:40Z --window 10s");
  ASSERT_EQ(p.code, 0) << p.err;
  std::vector<double> a, b;
  for (int i = 0; i < 100; ++i) a.push_back(i % 7), b.push_back(i * 0.5);
  Options o;
  o.window = {false, 10 * test::kS, 0};
  ASSERT_TRUE(o.finalize().is_ok());
  EXPECT_EQ(p.out, expected_windows(o, {{"m1", a}, {"m2", b}}));
  EXPECT_EQ(lines(p.out).size(), 20u);
}

TEST_F(FeaturesPg, DeviceMetricAndRangeFilters) {
  add_series("m1", "v", 0, 100, "1");
  add_series("m1", "w", 0, 100, "2");
  add_series("m2", "v", 0, 100, "3");
  Proc p = run(db_arg() + " --tenant acme --device m1 --metric w --from 2026-01-05T00:00:20Z --to 2026-01-05T00:00:40Z --window 10s");
  ASSERT_EQ(p.code, 0) << p.err;
  auto l = lines(p.out);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_NE(l[0].find(R"("device":"m1","metric":"w","start":"2026-01-05T00:00:20.000Z")"), std::string::npos) << l[0];
  EXPECT_NE(l[1].find(R"("n":10)"), std::string::npos);
}

TEST_F(FeaturesPg, PagesThroughLongSeries) {
  add_series("m1", "v", 0, 120000, "(i % 300)::float8");
  Proc p = run(db_arg() + " --tenant acme --from 2026-01-05 --to 2026-01-07 --window 300s --season off");
  ASSERT_EQ(p.code, 0) << p.err;
  auto l = lines(p.out);
  ASSERT_EQ(l.size(), 400u);
  for (const auto& w : l) ASSERT_NE(w.find(R"("n":300,"expected":300)"), std::string::npos) << w;
  EXPECT_NE(p.err.find("120000 rows, 120000 points, 400 windows"), std::string::npos) << p.err;
}

TEST_F(FeaturesPg, SeasonHistoryBeforeTheRangeIsPrimedFromPostgres) {
  // Two days hourly: value = day * 100. Reading only the second day still gives
  // season_day = 100, because the day before is aggregated in Postgres.
  std::string m = add_series("m1", "v", 0, 0, "0");
  ASSERT_TRUE(conn_->run("INSERT INTO datapoints (tenant_id, metric_id, ts, value) SELECT $1, $2, "
                         "$3::timestamptz + i * interval '1 hour', (i / 24) * 100 "
                         "FROM generate_series(0, 47) AS i",
                         {tenant_id_, m, pg::ts_param(test::kT0)})
                  .is_ok());
  Proc p = run(db_arg() + " --tenant acme --from 2026-01-06 --to 2026-01-07 --window 1h --interval 1h");
  ASSERT_EQ(p.code, 0) << p.err;
  auto l = lines(p.out);
  ASSERT_EQ(l.size(), 24u);
  for (const auto& w : l) EXPECT_NE(w.find(R"("season_day":100)"), std::string::npos) << w;
}

TEST_F(FeaturesPg, WriteDbUpsertsIdempotently) {
  std::string m = add_series("m1", "v", 0, 600, "(i % 10)::float8");
  std::string args = db_arg() + " --tenant acme --from 2026-01-05 --to 2026-01-05T00:10:00Z --window 60s --write-db";
  Proc p = run(args);
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_TRUE(p.out.empty());
  EXPECT_NE(p.err.find("wrote 10 windows to the features table"), std::string::npos) << p.err;
  EXPECT_EQ(one("SELECT count(*) FROM features WHERE metric_id = $1", {m}), "10");
  p = run(args);  // a rerun replaces, never doubles
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(one("SELECT count(*) FROM features WHERE metric_id = $1", {m}), "10");
  EXPECT_EQ(one("SELECT n || '/' || expected || '/' || (features->>'mean') || '/' || (features->>'stuck') "
                "FROM features WHERE metric_id = $1 ORDER BY window_start LIMIT 1",
                {m}),
            "60/60/4.5/false");
  EXPECT_EQ(one("SELECT window_end - window_start FROM features LIMIT 1"), "00:01:00");
}

TEST_F(FeaturesPg, OnlyWholeWindowsOfTheRangeUnlessPartial) {
  // Points every second over 00:00:00..00:00:59; the range [00:00:05, 00:00:35) cuts the
  // 10 s windows [0, 10) and [30, 40): only [10, 20) and [20, 30) are whole.
  add_series("m1", "v", 0, 60, "i::float8");
  Proc p = run(db_arg() + " --tenant acme --from 2026-01-05T00:00:05Z --to 2026-01-05T00:00:35Z --window 10s");
  ASSERT_EQ(p.code, 0) << p.err;
  auto l = lines(p.out);
  ASSERT_EQ(l.size(), 2u) << p.out;
  EXPECT_NE(l[0].find(R"("start":"2026-01-05T00:00:10.000Z","end":"2026-01-05T00:00:20.000Z","n":10)"), std::string::npos) << l[0];
  EXPECT_NE(l[1].find(R"("start":"2026-01-05T00:00:20.000Z","end":"2026-01-05T00:00:30.000Z","n":10)"), std::string::npos) << l[1];
  EXPECT_NE(p.err.find("2 windows cut by the range left out"), std::string::npos) << p.err;
  Proc all = run(db_arg() + " --tenant acme --from 2026-01-05T00:00:05Z --to 2026-01-05T00:00:35Z --window 10s --partial");
  ASSERT_EQ(all.code, 0) << all.err;
  auto la = lines(all.out);
  ASSERT_EQ(la.size(), 4u) << all.out;
  EXPECT_NE(la[0].find(R"("start":"2026-01-05T00:00:00.000Z","end":"2026-01-05T00:00:10.000Z","n":5)"), std::string::npos) << la[0];
  EXPECT_EQ(la[1], l[0]);
  EXPECT_EQ(la[2], l[1]);
  EXPECT_NE(la[3].find(R"("n":5)"), std::string::npos) << la[3];
  // --partial is a --db option.
  EXPECT_EQ(run("--partial").code, 64);
}

TEST_F(FeaturesPg, UnknownTenantIsADataError) {
  Proc p = run(db_arg() + " --tenant nobody --since 1h");
  EXPECT_EQ(p.code, 65);
  EXPECT_NE(p.err.find("--tenant: no tenant 'nobody'"), std::string::npos) << p.err;
}

TEST_F(FeaturesPg, UnreachableServerIsUnavailable) {
  Proc p = run("--db postgresql://127.0.0.1:1/x?connect_timeout=2 --tenant acme --since 1h");
  EXPECT_EQ(p.code, 69) << p.err;
}

TEST_F(FeaturesPg, MisuseOfTheRangeFlags) {
  EXPECT_EQ(run(db_arg() + " --tenant acme").code, 64);
  EXPECT_EQ(run(db_arg() + " --tenant acme --since 1h --from 2026-01-01").code, 64);
  EXPECT_EQ(run(db_arg() + " --since 1h").code, 64);
  EXPECT_EQ(run(db_arg() + " --tenant acme --from 2026-01-02 --to 2026-01-01").code, 64);
}

}  // namespace
}  // namespace ep::features
