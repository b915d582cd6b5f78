// ep-ingest --db against a real Postgres 15 (label "postgres"; run under pg_virtualenv):
// keys and plan quotas from api_keys/tenants/plans, revocation within the refresh
// interval and on SIGHUP, last_used_at written in bulk, unreachable Postgres at start.
#include <gtest/gtest.h>
#include <signal.h>

#include "ep/keys.h"
#include "harness.h"
#include "pg_fixture.h"

namespace ep::ingest::test {
namespace {

class IngestDb : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    db_.migrate();
    conn_ = db_.connect();
    EP_ASSERT_OK(conn_.run("INSERT INTO plans (name, points_per_minute) VALUES ('tiny', 20)"));
    EP_ASSERT_OK(conn_.run("INSERT INTO tenants (slug) VALUES ('acme')"));
    EP_ASSERT_OK(conn_.run("INSERT INTO tenants (slug, plan) VALUES ('small', 'tiny')"));
    acme_ = add_key("acme");
    small_ = add_key("small");
    dir_ = make_temp_dir();
  }
  std::string add_key(const std::string& tenant) {
    std::string key = keys::generate_key();
    auto s = conn_.run(
        "INSERT INTO api_keys (tenant_id, prefix, hash) SELECT tenant_id, $2, $3 FROM tenants WHERE slug = $1",
        {tenant, std::string(keys::parse_key(key)->prefix), keys::hash_key(kPepper, key)});
    EXPECT_TRUE(s.is_ok()) << s.message();
    return key;
  }
  std::string prefix(const std::string& key) { return std::string(keys::parse_key(key)->prefix); }

  eptest::TempDatabase db_;
  pg::Conn conn_;
  std::string acme_, small_, dir_;
};

TEST_F(IngestDb, AuthenticatesEnforcesPlanQuotaAndStopsRevokedKeys) {
  Server s(dir_, {"--db", db_.url(), "--key-refresh", "1s"});
  Client c(s.port());
  EXPECT_EQ(c.post(payload("d1", 5), {{"X-API-Key", acme_}}).status, 202u);
  EXPECT_EQ(c.post(payload("d1", 20), {{"X-API-Key", small_}}).status, 202u);
  Reply r = c.post(payload("d1", 5), {{"X-API-Key", small_}});
  EXPECT_EQ(r.status, 429u) << r.body;
  EXPECT_FALSE(r.headers["Retry-After"].empty());
  // Revoked in Postgres: refused within the refresh interval, no signal needed.
  EP_ASSERT_OK(conn_.run("UPDATE api_keys SET revoked_at = now() WHERE prefix = $1", {prefix(acme_)}));
  size_t accepted = 2;  // until the refresh, the key still works
  EXPECT_TRUE(wait_until(
      [&] {
        unsigned st = c.post(payload("d1"), {{"X-API-Key", acme_}}).status;
        if (st == 202) ++accepted;
        return st == 403;
      },
      std::chrono::seconds(10)));
  // last_used_at is written for the keys that were used.
  EXPECT_TRUE(wait_until([&] {
    return eptest::count(conn_, "SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL") == 2;
  }));
  s.process().signal(SIGTERM);
  EXPECT_EQ(s.process().wait(), 0) << s.process().err();
  EXPECT_EQ(lines_of(s.process().out()).size(), accepted);
}

// max_series counts the series already in Postgres (loaded at start), per tenant.
TEST_F(IngestDb, SeriesLimitCountsTheSeriesInPostgres) {
  EP_ASSERT_OK(conn_.run("UPDATE plans SET max_series = 2 WHERE name = 'tiny'"));
  EP_ASSERT_OK(conn_.run("INSERT INTO devices (tenant_id, external_id) SELECT tenant_id, 'd1' FROM tenants WHERE slug = 'small'"));
  EP_ASSERT_OK(conn_.run("INSERT INTO metrics (tenant_id, device_id, name) SELECT tenant_id, device_id, m"
                         "  FROM devices, unnest(ARRAY['m0','m1']) m WHERE external_id = 'd1'"));
  Server s(dir_, {"--db", db_.url(), "--key-refresh", "1h"});
  Client c(s.port());
  Reply known = c.post(payload("d1", 2), {{"X-API-Key", small_}});  // m0, m1
  EXPECT_EQ(known.status, 202u) << known.body;
  Reply fresh = c.post(payload("d2", 1), {{"X-API-Key", small_}});
  EXPECT_EQ(fresh.status, 400u) << fresh.body;
  EXPECT_NE(fresh.body.find("the 2 series its plan allows (max_series)"), std::string::npos) << fresh.body;
  EXPECT_EQ(c.post(payload("d2", 3), {{"X-API-Key", acme_}}).status, 202u);  // the default plan allows 1000
  s.process().signal(SIGTERM);
  EXPECT_EQ(s.process().wait(), 0) << s.process().err();
  EXPECT_EQ(lines_of(s.process().out()).size(), 2u);
}

TEST_F(IngestDb, SighupReloadsAtOnce) {
  Server s(dir_, {"--db", db_.url(), "--key-refresh", "1h"});
  Client c(s.port());
  EXPECT_EQ(c.post(payload("d1"), {{"X-API-Key", acme_}}).status, 202u);
  std::string fresh = add_key("acme");
  EXPECT_EQ(c.post(payload("d1"), {{"X-API-Key", fresh}}).status, 401u) << "not reloaded yet";
  EP_ASSERT_OK(conn_.run("UPDATE tenants SET disabled = true WHERE slug = 'acme'"));
  s.process().signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return s.process().err().find("SIGHUP: reloaded 3 keys from Postgres") != std::string::npos; }));
  Reply r = c.post(payload("d1"), {{"X-API-Key", fresh}});
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_NE(r.body.find("tenant acme is disabled"), std::string::npos) << r.body;
  EXPECT_EQ(c.post(payload("d1"), {{"X-API-Key", small_}}).status, 202u);
}

TEST_F(IngestDb, UnreachablePostgresAtStartIsExit69) {
  Process p({EP_INGEST_BIN, "--listen", "127.0.0.1:0", "--db", "host=/nonexistent-socket-dir dbname=x"}, dir_,
            {{"API_KEY_HASH_SALT", kPepper}});
  EXPECT_EQ(p.wait(), 69) << p.err();
}

TEST_F(IngestDb, UnmigratedDatabaseIsRefused) {
  eptest::TempDatabase empty;
  ASSERT_TRUE(empty.ok());
  Process p({EP_INGEST_BIN, "--listen", "127.0.0.1:0", "--db", empty.url()}, dir_, {{"API_KEY_HASH_SALT", kPepper}});
  auto rc = p.wait();
  EXPECT_TRUE(rc.has_value() && *rc != 0) << p.err();
  EXPECT_NE(p.err().find("migrate"), std::string::npos) << p.err();
}

}  // namespace
}  // namespace ep::ingest::test
