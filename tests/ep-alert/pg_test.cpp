// ep-alert --db: the real binary against real Postgres (pg_virtualenv) and real receivers
// on 127.0.0.1. Label "postgres"; fails (never skips) when Postgres is unreachable.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "ep/json.h"
#include "fixtures.h"
#include "pg_store.h"
#include "pg_fixture.h"
#include "run_process.h"
#include "test_receiver.h"

using namespace ep;
using namespace ep::alert::testing;

namespace {

// Arguments every ep-alert run of these tests gets (one place, e.g. for an egress
// allowlist of the loopback receivers).
std::vector<std::string> extra_alert_args() { return {}; }

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
    return run_process(alert_argv(std::move(args)), input, dir_);
  }
  // The same, in the background; `name` keeps its output files apart.
  Process start_alert(std::vector<std::string> args, const std::string& input,
                      const std::string& name) {
    return start_process(alert_argv(std::move(args)), input, dir_, name);
  }
  std::vector<std::string> alert_argv(std::vector<std::string> args) {
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
    for (auto& a : extra_alert_args()) argv.push_back(std::move(a));
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
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

TEST_F(AlertPg, OneRunnerPerTenantAndAllTenantsSkipAHeldOne) {
  std::string other = add_tenant("globex");
  TestReceiver other_receiver;
  add_rule(acme_, "high", add_webhook(acme_, "ops", receiver_.url()));
  add_rule(other, "high", add_webhook(other, "ops", other_receiver.url()));
  auto holder = pg::Conn::connect(db_.url(), "test");
  ASSERT_TRUE(holder.is_ok());
  auto locked = holder->try_advisory_lock(alert::tenant_lock_key(acme_));
  ASSERT_TRUE(locked.is_ok() && *locked);
  // The held tenant alone: exit 75 at once, nothing read or sent.
  ProcResult one = alert({"--tenant", "acme"}, stream("A"));
  EXPECT_EQ(one.exit, 75) << one.err;
  EXPECT_NE(one.err.find("another ep-alert --db holds tenant acme's alerting lock"),
            std::string::npos) << one.err;
  EXPECT_TRUE(one.out.empty()) << one.out;
  // Every tenant: acme is skipped with a note, globex's alert goes out; exit 75.
  std::string input = stream("A") + to_ndjson(make_score(0, true, -1, "", "meter-001", "globex")) + "\n";
  ProcResult all = alert({}, input);
  EXPECT_EQ(all.exit, 75) << all.err;
  EXPECT_EQ(statuses(all), (std::vector<std::string>{"delivered"}));
  EXPECT_NE(all.out.find("\"webhook\":\"globex/ops\""), std::string::npos) << all.out;
  EXPECT_NE(all.err.find("tenant acme: skipped: another ep-alert --db holds its alerting lock"),
            std::string::npos) << all.err;
  EXPECT_NE(all.err.find("tenants skipped because another run holds their lock: acme (1 of their "
                         "scores not evaluated)"),
            std::string::npos) << all.err;
  EXPECT_EQ(receiver_.count(), 0u);
  EXPECT_EQ(other_receiver.count(), 1u);
  EXPECT_EQ(count("SELECT count(*) FROM alert_state WHERE tenant_id = '" + acme_ + "'"), 0);
  // check needs no lock.
  EXPECT_EQ(alert({"check"}, "").exit, 0);
  // Released: acme's window is evaluated and sent by the next run.
  EP_ASSERT_OK(holder->advisory_unlock(alert::tenant_lock_key(acme_)));
  ProcResult next = alert({}, input);
  EXPECT_EQ(next.exit, 0) << next.err;
  EXPECT_EQ(statuses(next), (std::vector<std::string>{"delivered"}));
  EXPECT_EQ(receiver_.count(), 1u);
  EXPECT_EQ(other_receiver.count(), 1u);
}

// Two real runs at once: --tenant alpha holds its lock while its receiver holds the
// answer; --tenant beta runs to the end meanwhile; alpha a second time exits 75.
TEST_F(AlertPg, RunsForDifferentTenantsAreConcurrentTheSameTenantTwiceExits75) {
  std::string alpha = add_tenant("alpha"), beta = add_tenant("beta");
  TestReceiver alpha_rx, beta_rx;
  std::string alpha_hook = add_webhook(alpha, "ops", alpha_rx.url());
  add_rule(alpha, "high", alpha_hook);
  add_rule(beta, "high", add_webhook(beta, "ops", beta_rx.url()));
  EP_ASSERT_OK(c_.run("UPDATE webhooks SET timeout_ms = 100000 WHERE webhook_id = $1", {alpha_hook}));
  alpha_rx.script({Action::held(200)});
  auto line = [](const std::string& tenant, int i) {
    return to_ndjson(make_score(i, true, -1, "", "meter-001", tenant)) + "\n";
  };
  Process first = start_alert({"--tenant", "alpha", "--tenant-budget", "100s"}, line("alpha", 0),
                              "alpha");
  ASSERT_TRUE(alpha_rx.wait_for(1, std::chrono::seconds(60)));  // in flight, lock held

  ProcResult b = alert({"--tenant", "beta"}, line("beta", 0));
  EXPECT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(statuses(b), (std::vector<std::string>{"delivered"}));
  EXPECT_EQ(beta_rx.count(), 1u);

  ProcResult again = alert({"--tenant", "alpha"}, line("alpha", 1));
  EXPECT_EQ(again.exit, 75) << again.err;
  EXPECT_NE(again.err.find("another ep-alert --db holds tenant alpha's alerting lock"),
            std::string::npos) << again.err;
  EXPECT_TRUE(again.out.empty()) << again.out;

  alpha_rx.release();
  ProcResult a = first.wait();
  EXPECT_EQ(a.exit, 0) << a.err;
  EXPECT_EQ(statuses(a), (std::vector<std::string>{"delivered"}));
  EXPECT_EQ(alpha_rx.count(), 1u);  // the refused second run sent nothing
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE status = 'delivered'"), 2);
}

// Tenant globex's endpoint accepts the connection and never answers (its timeout is
// 120 s); its alerts come first and would fill every connection. acme's alert still
// goes out at once: globex holds only its share (2 of 4 connections) and its time
// budget (2 s), and its deliveries stay pending for the next run: none lost, none twice.
TEST_F(AlertPg, DeadEndpointHoldsOnlyItsTenantsShare) {
  std::string dead = add_tenant("globex");
  TestReceiver dead_rx;
  dead_rx.script({}, Action::hang_up());
  std::string dead_hook = add_webhook(dead, "ops", dead_rx.url());
  EP_ASSERT_OK(c_.run("UPDATE webhooks SET timeout_ms = 120000 WHERE webhook_id = $1", {dead_hook}));
  add_rule(dead, "high", dead_hook);
  add_rule(acme_, "high", add_webhook(acme_, "ops", receiver_.url()));
  std::string input;
  for (int d = 0; d < 4; ++d)
    input += to_ndjson(make_score(0, true, -1, "", "meter-00" + std::to_string(d), "globex")) + "\n";
  input += stream("A");  // acme's, after globex's four

  ProcResult r = alert({"--max-in-flight", "4", "--tenant-max-in-flight", "2", "--tenant-budget",
                        "2s"},
                       input);
  EXPECT_EQ(r.exit, 75) << r.err;
  auto lines = r.out_lines();
  ASSERT_FALSE(lines.empty());
  // acme's delivery is recorded before any outcome of globex's stuck attempts.
  EXPECT_NE(lines[0].find("\"webhook\":\"acme/ops\""), std::string::npos) << r.out;
  EXPECT_NE(lines[0].find("\"status\":\"delivered\""), std::string::npos) << r.out;
  EXPECT_EQ(receiver_.count(), 1u);
  // Two attempts (the tenant's share), cut at its budget; the other two never started.
  EXPECT_EQ(dead_rx.count(), 2u);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1 + 2 + 4) << r.out;  // + retrying, pending
  EXPECT_NE(r.err.find("tenant globex: time budget spent (--tenant-budget 2s of attempts in "
                       "flight); 4 deliveries left pending for the next run"),
            std::string::npos) << r.err;
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE tenant_id = '" + dead +
                  "' AND status = 'pending'"),
            4);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE tenant_id = '" + dead +
                  "' AND attempts = 1 AND error LIKE 'cut at the tenant''s time budget%'"),
            2);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE tenant_id = '" + acme_ +
                  "' AND status = 'delivered'"),
            1);

  // The endpoint is back: the next run delivers each of the four exactly once.
  dead_rx.stop();
  TestReceiver back;
  EP_ASSERT_OK(c_.run("UPDATE webhooks SET url = $2 WHERE webhook_id = $1", {dead_hook, back.url()}));
  ProcResult again = alert({}, "");
  EXPECT_EQ(again.exit, 0) << again.err;
  EXPECT_EQ(statuses(again), (std::vector<std::string>(4, "delivered")));
  ASSERT_EQ(back.count(), 4u);
  std::set<std::string> ids;
  for (const auto& got : back.received()) ids.insert(got.header("webhook-id"));
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(receiver_.count(), 1u);
  EXPECT_EQ(count("SELECT count(*) FROM alert_events WHERE status = 'delivered'"), 5);
  EXPECT_EQ(count("SELECT count(DISTINCT alert_id) FROM alert_events"), 5);
  EXPECT_EQ(count("SELECT alerts_sent FROM usage_daily WHERE tenant_id = '" + dead + "'"), 4);
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
