// Row-level security: a session of the application role that set its tenant sees none
// of another tenant's rows, in every tenant table, whatever the query says.
#include "pg_fixture.h"

namespace {

using eptest::count;

const char* kTenantTables[] = {"tenants", "api_keys", "devices", "metrics", "ingest_batches", "datapoints",
                               "features", "models", "anomaly_scores", "webhooks", "alert_rules",
                               "alert_events", "alert_attempts", "usage_daily", "cursors",
                               "rollups_1m", "rollups_1h", "rollups_1d"};

class Rls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    db_.migrate();
    owner_ = db_.connect();
    // One row in every tenant table for each of two tenants.
    EP_ASSERT_OK(owner_.run(R"SQL(
      INSERT INTO tenants (slug) VALUES ('a'), ('b');
      INSERT INTO api_keys (tenant_id, prefix, hash) SELECT tenant_id, rpad(slug, 8, 'x'), 'h' FROM tenants;
      INSERT INTO devices (tenant_id, external_id) SELECT tenant_id, 'dev' FROM tenants;
      INSERT INTO metrics (tenant_id, device_id, name) SELECT tenant_id, device_id, 'm' FROM devices;
      INSERT INTO ingest_batches (tenant_id, batch_id, received_at) SELECT tenant_id, gen_random_uuid(), now() FROM tenants;
      INSERT INTO datapoints SELECT tenant_id, metric_id, now(), 1 FROM metrics;
      INSERT INTO features SELECT tenant_id, metric_id, now() - interval '5 min', now(), 5, 5, '{}' FROM metrics;
      INSERT INTO models (tenant_id, name, version, metric_id, artefact, sha256) SELECT tenant_id, 'dev/m', 1, metric_id, '\x00', 'x' FROM metrics;
      INSERT INTO anomaly_scores (tenant_id, metric_id, window_start, window_end, score, anomaly, model)
        SELECT tenant_id, metric_id, now() - interval '5 min', now(), 0.9, true, 'fallback' FROM metrics;
      INSERT INTO webhooks (tenant_id, name, url, secret) SELECT tenant_id, 'ops', 'http://127.0.0.1/', 'whsec_x' FROM tenants;
      INSERT INTO alert_rules (tenant_id, name, webhook_id) SELECT tenant_id, 'r', webhook_id FROM webhooks;
      INSERT INTO alert_events (tenant_id, alert_id, webhook_id, window_end, score, label, payload)
        SELECT tenant_id, 'al', webhook_id, now(), 0.9, 'spike', '{}' FROM webhooks;
      INSERT INTO alert_attempts (tenant_id, alert_id, webhook_id, attempt) SELECT tenant_id, alert_id, webhook_id, 1 FROM alert_events;
      INSERT INTO usage_daily (tenant_id, day, points_ingested) SELECT tenant_id, current_date, 1 FROM tenants;
      INSERT INTO cursors (tenant_id, name) SELECT tenant_id, 'ep-score' FROM tenants;
      INSERT INTO rollups_1m SELECT tenant_id, metric_id, date_trunc('minute', now(), 'UTC'), 1, 1, 1, 1, 1, now(), 1, now(), 1 FROM metrics;
      INSERT INTO rollups_1h SELECT tenant_id, metric_id, date_trunc('hour', now(), 'UTC'), 1, 1, 1, 1, 1, now(), 1, now(), 1 FROM metrics;
      INSERT INTO rollups_1d SELECT tenant_id, metric_id, date_trunc('day', now(), 'UTC'), 1, 1, 1, 1, 1, now(), 1, now(), 1 FROM metrics;
    )SQL"));
    // A login role that is a member of edgepulse_app (the pg_virtualenv user is a
    // superuser and would bypass RLS).
    role_ = db_.name() + "_app";
    EP_ASSERT_OK(owner_.run("CREATE ROLE " + role_ + " LOGIN PASSWORD 'pw' IN ROLE edgepulse_app"));
    auto ids = owner_.exec("SELECT tenant_id FROM tenants ORDER BY slug");
    ASSERT_TRUE(ids);
    a_ = ids->str(0, 0);
    b_ = ids->str(1, 0);
  }
  void TearDown() override {
    app_ = ep::pg::Conn();
    if (owner_.connected()) (void)owner_.run("DROP OWNED BY " + role_ + "; DROP ROLE IF EXISTS " + role_);
  }
  ep::pg::Conn app() {
    auto c = ep::pg::Conn::connect(db_.url() + " user=" + role_ + " password=pw", "ep-test");
    EXPECT_TRUE(c) << c.status().message();
    return c ? std::move(*c) : ep::pg::Conn();
  }

  eptest::TempDatabase db_;
  ep::pg::Conn owner_, app_;
  std::string role_, a_, b_;
};

TEST_F(Rls, TenantSessionSeesOnlyItsOwnRows) {
  app_ = app();
  ASSERT_TRUE(app_.connected());
  ASSERT_FALSE(app_.server_is_superuser());
  EP_ASSERT_OK(app_.set_tenant(a_));
  for (const char* t : kTenantTables) {
    SCOPED_TRACE(t);
    EXPECT_EQ(count(app_, std::string("SELECT count(*) FROM ") + t), 1);
    // Even a query that asks for tenant b explicitly gets nothing.
    EXPECT_EQ(count(app_, std::string("SELECT count(*) FROM ") + t + " WHERE tenant_id = '" + b_ + "'"), 0);
    EXPECT_EQ(count(app_, std::string("SELECT count(*) FROM ") + t + " WHERE tenant_id = '" + a_ + "'"), 1);
  }
  // The owner (pipeline tools) sees both.
  EXPECT_EQ(count(owner_, "SELECT count(*) FROM datapoints"), 2);
}

TEST_F(Rls, NoTenantSetSeesNothing) {
  app_ = app();
  ASSERT_TRUE(app_.connected());
  for (const char* t : kTenantTables) {
    SCOPED_TRACE(t);
    EXPECT_EQ(count(app_, std::string("SELECT count(*) FROM ") + t), 0);
  }
  EP_ASSERT_OK(app_.set_tenant(a_));
  EP_ASSERT_OK(app_.clear_tenant());
  EXPECT_EQ(count(app_, "SELECT count(*) FROM datapoints"), 0);
}

TEST_F(Rls, CannotWriteOrTouchAnotherTenantsRows) {
  app_ = app();
  ASSERT_TRUE(app_.connected());
  EP_ASSERT_OK(app_.set_tenant(a_));
  auto ins = app_.exec("INSERT INTO cursors (tenant_id, name) VALUES ($1, 'x')", {b_});
  ASSERT_FALSE(ins);
  EXPECT_EQ(app_.last_sqlstate(), "42501");  // new row violates row-level security policy
  auto upd = app_.exec("UPDATE datapoints SET value = 99");
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->affected(), 1);
  auto del = app_.exec("DELETE FROM devices WHERE tenant_id = $1", {b_});
  ASSERT_TRUE(del);
  EXPECT_EQ(del->affected(), 0);
  EXPECT_EQ(count(owner_, "SELECT count(*) FROM datapoints WHERE value = 99"), 1);
  for (const char* t : {"rollups_1m", "rollups_1h", "rollups_1d"}) {
    SCOPED_TRACE(t);
    auto bad = app_.exec(std::string("INSERT INTO ") + t + " SELECT $1::uuid, metric_id, bucket + interval '1 day', 1, 1, 1,"
                         " 1, 1, now(), 1, now(), 1 FROM " + t, {b_});
    ASSERT_FALSE(bad);
    EXPECT_EQ(app_.last_sqlstate(), "42501");
    auto up = app_.exec(std::string("UPDATE ") + t + " SET n = n + 1");
    ASSERT_TRUE(up);
    EXPECT_EQ(up->affected(), 1);
    EXPECT_EQ(count(owner_, std::string("SELECT count(*) FROM ") + t + " WHERE n = 2 AND tenant_id = '" + a_ + "'"), 1);
  }
  // Transaction-local tenant: gone after commit.
  EP_ASSERT_OK(app_.begin());
  EP_ASSERT_OK(app_.set_tenant(b_, true));
  EXPECT_EQ(count(app_, "SELECT count(*) FROM datapoints WHERE tenant_id = '" + b_ + "'"), 1);
  EP_ASSERT_OK(app_.commit());
  EXPECT_EQ(count(app_, "SELECT count(*) FROM datapoints WHERE tenant_id = '" + b_ + "'"), 0);
}

}  // namespace
