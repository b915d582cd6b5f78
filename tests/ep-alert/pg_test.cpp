// ep-alert --db: the real binary against real Postgres (pg_virtualenv) and real receivers
// on 127.0.0.1. Label "postgres"; fails (never skips) when Postgres is unreachable.
#include <gtest/gtest.h>

#include <set>

#include "ep/json.h"
#include "fixtures.h"
#include "pg_fixture.h"
#include "run_process.h"
#include "test_receiver.h"

using namespace ep;
using namespace ep::alert::testing;

namespace {

class AlertPg : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_dir();
    ASSERT_TRUE(db_.ok());
    db_.migrate();
    c_ = db_.connect();
    ASSERT_TRUE(c_.connected());
    acme_ = add_tenant("acme");
  }

  std::string add_tenant(const std::string& slug) {
    auto r = c_.exec("INSERT INTO tenants (slug) VALUES ($1) RETURNING tenant_id", {slug});
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r ? r->str(0, 0) : "";
  }
  std::string add_webhook(const std::string& tenant, const std::string& name, const std::string& url,
                          const std::string& secret = kSecret) {
    auto r = c_.exec("INSERT INTO webhooks (tenant_id, name, url, secret) VALUES ($1, $2, $3, $4) "
                     "RETURNING webhook_id",
                     {tenant, name, url, secret});
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r ? r->str(0, 0) : "";
  }
  void add_rule(const std::string& tenant, const std::string& name, const std::string& webhook_id,
                int consecutive = 1, const std::string& extra_cols = "", const std::string& extra_vals = "") {
    EP_EXPECT_OK(c_.run("INSERT INTO alert_rules (tenant_id, name, webhook_id, consecutive, cooldown" +
                            extra_cols + ") VALUES ($1, $2, $3, $4, '0'" + extra_vals + ")",
                        {tenant, name, webhook_id, consecutive}));
  }
  std::int64_t count(const std::string& sql) { return eptest::count(c_, sql); }

  ProcResult alert(std::vector<std::string> args, const std::string& input) {
    std::vector<std::string> argv = {EP_ALERT_BIN};
    bool sub = !args.empty() && (args[0] == "retry" || args[0] == "check");
    if (sub) {
      argv.push_back(args[0]);
      args.erase(args.begin());
    }
    std::vector<std::string> defaults = {"--db", db_.url(), "--backoff-base", "20ms", "--backoff-max",
                                         "80ms", "--timeout", "2s", "--drain-timeout", "20s",
                                         "--state-interval", "0s", "--allow-egress", allow_egress_};
    argv.insert(argv.end(), defaults.begin(), defaults.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, input, dir_);
  }

  static std::vector<std::string> statuses(const ProcResult& r) {
    std::vector<std::string> v;
    for (const auto& l : r.out_lines()) {
      rapidjson::Document d;
      EXPECT_TRUE(parse_json(l, d).is_ok()) << l;
      v.push_back(std::string(d["status"].GetString()));
    }
    return v;
  }

  eptest::TempDatabase db_;
  pg::Conn c_;
  std::string dir_, acme_;
  TestReceiver receiver_;
  std::string allow_egress_ = "127.0.0.0/8";  // the receivers' loopback addresses
};

TEST_F(AlertPg, RulesFromTablesDeliveryRecordedWithAttemptsAndUsage) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook, 2, ", resolve, severity", ", true, 'critical'");
  ProcResult r = alert({}, stream("AA."));
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(statuses(r), (std::vector<std::string>{"delivered", "delivered"}));
  ASSERT_TRUE(receiver_.wait_for(2));
  auto got = receiver_.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].body.find("\"anomaly.detected\""), std::string::npos);
  EXPECT_NE(got[0].body.find("\"critical\""), std::string::npos);
  EXPECT_NE(got[1].body.find("\"anomaly.resolved\""), std::string::npos);

  auto rows = c_.exec("SELECT alert_id, status, attempts, http_status, type, rule, device, metric, "
                      "  body, webhook_id::text, payload->>'type', next_attempt_at IS NULL "
                      "FROM alert_events ORDER BY window_end");
  ASSERT_TRUE(rows.is_ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(rows->str(i, 0), got[i].header("webhook-id"));  // the id receivers see
    EXPECT_EQ(rows->str(i, 1), "delivered");
    EXPECT_EQ(rows->get_int(i, 2), 1);
    EXPECT_EQ(rows->get_int(i, 3), 200);
    EXPECT_EQ(rows->str(i, 5), "high");
    EXPECT_EQ(rows->str(i, 6), "meter-001");
    EXPECT_EQ(rows->str(i, 7), "voltage");
    EXPECT_EQ(rows->str(i, 8), got[i].body);  // the exact bytes that were signed
    EXPECT_EQ(rows->str(i, 9), hook);
    EXPECT_EQ(rows->str(i, 10), rows->str(i, 4));
    EXPECT_TRUE(rows->get_bool(i, 11));
  }
  EXPECT_EQ(rows->str(0, 4), "anomaly.detected");
  EXPECT_EQ(rows->str(1, 4), "anomaly.resolved");
  EXPECT_EQ(count("SELECT count(*) FROM alert_attempts WHERE http_status = 200 AND error IS NULL "
                  "AND duration_ms >= 0 AND attempt = 1"),
            2);
  EXPECT_EQ(count("SELECT alerts_sent FROM usage_daily WHERE tenant_id = '" + acme_ + "'"), 2);
  // The series state is in Postgres: resolved, not firing.
  EXPECT_EQ(count("SELECT count(*) FROM alert_state WHERE NOT firing AND consecutive = 0 "
                  "AND last_end = '" + format_rfc3339(window_end(2)) + "'"),
            1);
}

TEST_F(AlertPg, SameStreamTwiceDeliversNothingTwiceAndStateCarriesAcrossRuns) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook, 2);
  // First run: one anomalous window, not enough to fire (consecutive = 2).
  ProcResult a = alert({}, stream("A"));
  ASSERT_EQ(a.exit, 0) << a.err;
  EXPECT_TRUE(a.out.empty()) << a.out;
  EXPECT_EQ(count("SELECT consecutive FROM alert_state"), 1);
  // Second run: the next window completes the run of two -> fires (state from Postgres).
  std::string both = stream("AA");
  std::string second = both.substr(both.find('\n') + 1);
  ProcResult b = alert({}, second);
  ASSERT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(statuses(b), (std::vector<std::string>{"delivered"}));
  // The whole stream again: all replays, nothing sent.
  ProcResult c = alert({}, both);
  ASSERT_EQ(c.exit, 0) << c.err;
  EXPECT_TRUE(c.out.empty()) << c.out;
  EXPECT_NE(c.err.find("2 already seen"), std::string::npos) << c.err;
  EXPECT_EQ(receiver_.count(), 1u);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM alert_attempts"), 1);
  EXPECT_EQ(count("SELECT alerts_sent FROM usage_daily"), 1);
}

TEST_F(AlertPg, FailedDeliveryIsReSentByRetry) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook);
  // The webhook's own max_attempts wins over --max-attempts.
  EP_ASSERT_OK(c_.run("UPDATE webhooks SET max_attempts = 3"));
  receiver_.script({}, Action::reply(500));
  ProcResult a = alert({"--max-attempts", "7"}, stream("A"));
  EXPECT_EQ(a.exit, 69) << a.err;
  EXPECT_EQ(statuses(a), (std::vector<std::string>{"retrying", "retrying", "failed"}));
  EXPECT_EQ(receiver_.count(), 3u);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE status = 'failed' AND attempts = 3 "
                  "AND http_status = 500 AND error LIKE '%HTTP 500%' AND next_attempt_at IS NULL"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM alert_attempts WHERE http_status = 500"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM usage_daily WHERE alerts_sent > 0"), 0);

  receiver_.script({}, Action::reply(200));
  ProcResult r = alert({"retry"}, "");
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(statuses(r), (std::vector<std::string>{"delivered"}));
  ASSERT_EQ(receiver_.count(), 4u);
  auto got = receiver_.received();
  EXPECT_EQ(got[3].body, got[0].body);
  EXPECT_EQ(got[3].header("webhook-id"), got[0].header("webhook-id"));
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE status = 'delivered' AND http_status = 200 "
                  "AND error IS NULL"),
            1);
  // Every attempt is on the record, numbered on across the retry.
  EXPECT_EQ(count("SELECT count(*) FROM alert_attempts"), 4);
  EXPECT_EQ(count("SELECT max(attempt) FROM alert_attempts"), 4);
  EXPECT_EQ(count("SELECT alerts_sent FROM usage_daily"), 1);
  // Nothing left to retry.
  ProcResult again = alert({"retry"}, "");
  EXPECT_EQ(again.exit, 0) << again.err;
  EXPECT_TRUE(again.out.empty());
  EXPECT_EQ(receiver_.count(), 4u);
}

TEST_F(AlertPg, WebhookTimeoutFromTheTable) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook);
  EP_ASSERT_OK(c_.run("UPDATE webhooks SET timeout_ms = 300, max_attempts = 1"));
  receiver_.script({}, Action::hang_up());
  ProcResult a = alert({"--timeout", "60s"}, stream("A"));
  EXPECT_EQ(a.exit, 69) << a.err;
  EXPECT_EQ(statuses(a), (std::vector<std::string>{"failed"}));
  // Cut at the webhook's 300 ms, not at --timeout 60s.
  EXPECT_EQ(count("SELECT count(*) FROM alert_attempts WHERE http_status IS NULL "
                  "AND error LIKE 'gave up after 1 attempts: timeout%' AND duration_ms < 30000"),
            1);
  receiver_.stop();
}

TEST_F(AlertPg, PendingDeliverySurvivesRestart) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook);
  receiver_.script({Action::reply(503)}, Action::reply(200));
  // No time to retry: the delivery stays pending in Postgres (exit 75).
  ProcResult a = alert({"--drain-timeout", "0s"}, stream("A"));
  EXPECT_EQ(a.exit, 75) << a.err;
  EXPECT_EQ(statuses(a), (std::vector<std::string>{"retrying", "pending"}));
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE status = 'pending' AND attempts = 1 "
                  "AND http_status = 503 AND next_attempt_at IS NOT NULL"),
            1);
  // The next run (no new input) resumes it; the replayed window adds nothing.
  ProcResult b = alert({}, stream("A"));
  ASSERT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(statuses(b), (std::vector<std::string>{"delivered"}));
  EXPECT_EQ(receiver_.count(), 2u);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE status = 'delivered' AND attempts = 2"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM alert_attempts"), 2);
}

TEST_F(AlertPg, RulesAreIsolatedPerTenant) {
  std::string other = add_tenant("globex");
  TestReceiver other_receiver;
  // Same rule and webhook names in both tenants, different endpoints.
  add_rule(acme_, "high", add_webhook(acme_, "ops", receiver_.url()));
  add_rule(other, "high", add_webhook(other, "ops", other_receiver.url(), kSecret2));
  ProcResult r = alert({}, stream("A"));  // scores of acme only
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(statuses(r), (std::vector<std::string>{"delivered"}));
  EXPECT_NE(r.out.find("\"webhook\":\"acme/ops\""), std::string::npos) << r.out;
  EXPECT_EQ(receiver_.count(), 1u);
  EXPECT_EQ(other_receiver.count(), 0u);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE tenant_id = '" + acme_ + "'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE tenant_id = '" + other + "'"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM usage_daily WHERE tenant_id = '" + other + "'"), 0);

  // --tenant globex: acme's rules are not loaded, so acme's scores fire nothing.
  ProcResult g = alert({"--tenant", "globex"}, stream("AAAA"));
  ASSERT_EQ(g.exit, 0) << g.err;
  EXPECT_TRUE(g.out.empty()) << g.out;
  EXPECT_EQ(receiver_.count(), 1u);

  // A disabled tenant's rules are not evaluated.
  EP_ASSERT_OK(c_.run("UPDATE tenants SET disabled = true WHERE slug = 'acme'"));
  ProcResult d = alert({}, stream(".....AAAA"));
  ASSERT_EQ(d.exit, 0) << d.err;
  EXPECT_TRUE(d.out.empty()) << d.out;
}

TEST_F(AlertPg, SuppressedEventsAreRecordedAndSilencesComeFromTheTable) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook);
  EP_ASSERT_OK(c_.run("INSERT INTO alert_silences (tenant_id, name, device, ends_at) "
                      "VALUES ($1, 'maintenance', 'meter-*', $2)",
                      {acme_, pg::ts_param(window_end(1))}));
  ProcResult r = alert({}, stream("A"));
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(statuses(r), (std::vector<std::string>{"suppressed"}));
  EXPECT_EQ(receiver_.count(), 0u);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE status = 'suppressed' "
                  "AND error LIKE '%maintenance%' AND attempts = 0"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM alert_attempts"), 0);
}

TEST_F(AlertPg, EndpointGoneIsDisabledInTheTableUntilRetryNamesIt) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook);
  receiver_.script({Action::reply(410)}, Action::reply(200));
  ProcResult a = alert({}, stream("A"));
  EXPECT_EQ(a.exit, 69) << a.err;
  EXPECT_EQ(count("SELECT count(*) FROM webhooks WHERE disabled_at IS NOT NULL"), 1);
  // A later run does not send to the disabled endpoint.
  ProcResult b = alert({}, stream("A.A"));
  EXPECT_EQ(b.exit, 69) << b.err;
  EXPECT_EQ(receiver_.count(), 1u);
  ProcResult plain = alert({"retry"}, "");
  EXPECT_EQ(receiver_.count(), 1u);
  ProcResult named = alert({"retry", "--webhook", "acme/ops"}, "");
  EXPECT_EQ(named.exit, 0) << named.err;
  EXPECT_EQ(receiver_.count(), 3u);
  EXPECT_EQ(count("SELECT count(*) FROM webhooks WHERE disabled_at IS NOT NULL"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE status = 'delivered'"), 2);
}

TEST_F(AlertPg, InvalidRuleRowIsRejectedNamingRuleAndColumn) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook, 1, ", labels", ", '{spike,bogus}'");
  ProcResult r = alert({"check"}, "");
  EXPECT_EQ(r.exit, 65) << r.err;
  EXPECT_NE(r.err.find("alert_rules \"acme/high\": labels: unknown label \"bogus\""), std::string::npos)
      << r.err;
  EP_ASSERT_OK(c_.run("UPDATE alert_rules SET labels = '{spike}'"));
  ProcResult ok = alert({"check"}, "");
  EXPECT_EQ(ok.exit, 0) << ok.err;
  EXPECT_NE(ok.out.find("ok: 1 rules, 1 webhooks, 0 silences"), std::string::npos) << ok.out;
}

TEST_F(AlertPg, SinceLastReadsNewAnomalyScoresRows) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook, 2);
  std::string other = add_tenant("globex");
  add_rule(other, "high", add_webhook(other, "ops", receiver_.url()), 1);
  auto series = [&](const std::string& tenant) {
    auto r = c_.exec(
        "WITH d AS (INSERT INTO devices (tenant_id, external_id) VALUES ($1, 'meter-001') "
        "RETURNING tenant_id, device_id) INSERT INTO metrics (tenant_id, device_id, name) "
        "SELECT tenant_id, device_id, 'voltage' FROM d RETURNING metric_id",
        {tenant});
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r ? r->str(0, 0) : "";
  };
  std::string acme_metric = series(acme_), other_metric = series(other);
  auto score = [&](const std::string& tenant, const std::string& metric, int i, bool anomaly) {
    EP_EXPECT_OK(c_.run(
        "INSERT INTO anomaly_scores (tenant_id, metric_id, window_start, window_end, score, "
        "  anomaly, label, model, explanation) VALUES ($1, $2, $3, $4, $5, $6, $7, 'm@1', "
        "  '[{\"feature\":\"max\",\"value\":251.2,\"baseline\":231.4,\"z\":9.7}]')",
        {tenant, metric, pg::ts_param(window_end(i) - 300 * kNsPerSec), pg::ts_param(window_end(i)),
         anomaly ? 0.9 : 0.1, anomaly, anomaly ? "spike" : "normal"}));
  };
  score(acme_, acme_metric, 0, true);
  score(acme_, acme_metric, 1, true);
  score(other, other_metric, 0, false);
  ProcResult a = alert({"--since-last"}, "");
  ASSERT_EQ(a.exit, 0) << a.err;
  EXPECT_EQ(statuses(a), (std::vector<std::string>{"delivered"}));
  ASSERT_TRUE(receiver_.wait_for(1));
  auto got = receiver_.received();
  EXPECT_NE(got[0].body.find("\"tenant\":\"acme\""), std::string::npos) << got[0].body;
  EXPECT_NE(got[0].body.find("\"end\":\"" + format_rfc3339(window_end(1)) + "\""), std::string::npos)
      << got[0].body;
  EXPECT_EQ(count("SELECT count(*) FROM cursors WHERE name = 'ep-alert' AND position IS NOT NULL"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE metric_id IS NOT NULL"), 1);

  // Nothing new: nothing sent (re-read rows inside the overlap are replays).
  ProcResult b = alert({"--since-last"}, "");
  ASSERT_EQ(b.exit, 0) << b.err;
  EXPECT_TRUE(b.out.empty()) << b.out;
  // A new row of globex fires its rule (consecutive = 1).
  score(other, other_metric, 1, true);
  ProcResult c = alert({"--since-last"}, "");
  ASSERT_EQ(c.exit, 0) << c.err;
  EXPECT_EQ(statuses(c), (std::vector<std::string>{"delivered"}));
  EXPECT_NE(c.out.find("\"webhook\":\"globex/ops\""), std::string::npos) << c.out;
  EXPECT_EQ(receiver_.count(), 2u);

  // --since-last is Postgres mode only, and reads no FILEs.
  EXPECT_EQ(run_process({EP_ALERT_BIN, "--rules", "x.toml", "--since-last"}, "", dir_).exit, 64);
  EXPECT_EQ(alert({"--since-last", "scores.ndjson"}, "").exit, 64);
}

TEST_F(AlertPg, DryRunWritesNothing) {
  std::string hook = add_webhook(acme_, "ops", receiver_.url());
  add_rule(acme_, "high", hook);
  ProcResult r = alert({"--dry-run"}, stream("A."));
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(statuses(r), (std::vector<std::string>{"dry-run"}));
  EXPECT_EQ(receiver_.count(), 0u);
  EXPECT_EQ(count("SELECT (SELECT count(*) FROM alert_events) + (SELECT count(*) FROM alert_state) "
                  "+ (SELECT count(*) FROM usage_daily)"),
            0);
  // The real run afterwards still fires: the dry run moved no watermark.
  ProcResult real = alert({}, stream("A."));
  ASSERT_EQ(real.exit, 0) << real.err;
  EXPECT_EQ(statuses(real), (std::vector<std::string>{"delivered"}));
}

TEST_F(AlertPg, OneRunnerPerDatabase) {
  auto holder = pg::Conn::connect(db_.url(), "test");
  ASSERT_TRUE(holder.is_ok());
  auto locked = holder->try_advisory_lock(pg::lock_key("ep-alert"));
  ASSERT_TRUE(locked.is_ok() && *locked);
  ProcResult r = alert({}, "");
  EXPECT_EQ(r.exit, 75) << r.err;
  EXPECT_NE(r.err.find("another ep-alert"), std::string::npos) << r.err;
}

// A tenant's webhook into the operator's network: refused at connect, failed at once,
// the reason on the record the tenant sees (alert_events, GET /v1/alerts).
TEST_F(AlertPg, WebhookTheEgressPolicyDeniesIsFailedWithTheReason) {
  add_rule(acme_, "high", add_webhook(acme_, "ops", receiver_.url()));
  allow_egress_ = "127.0.0.2";  // not the receiver's 127.0.0.1
  ProcResult a = alert({"--max-attempts", "5"}, stream("A"));
  EXPECT_EQ(a.exit, 69) << a.err;
  EXPECT_EQ(statuses(a), (std::vector<std::string>{"failed"}));
  EXPECT_EQ(receiver_.count(), 0u);
  auto row = c_.exec("SELECT error FROM alert_events WHERE status = 'failed' AND attempts = 1");
  ASSERT_TRUE(row.is_ok()) << row.status().message();
  ASSERT_EQ(row->size(), 1);
  EXPECT_EQ(row->str(0, 0),
            "permanent: connection: webhook URL resolves to 127.0.0.1, a loopback address, which "
            "the egress policy denies (an operator allows it with --allow-egress)");
  EXPECT_EQ(count("SELECT count(*) FROM alert_attempts WHERE error LIKE '%egress policy denies%'"),
            1);
}

TEST_F(AlertPg, UnreachableDatabaseIsUnavailable) {
  std::vector<std::string> argv = {EP_ALERT_BIN, "--db",
                                   "host=127.0.0.1 port=" + std::to_string(eptest::free_port()) +
                                       " dbname=x connect_timeout=2"};
  ProcResult r = run_process(argv, "", dir_);
  EXPECT_EQ(r.exit, 69) << r.err;
}

}  // namespace
