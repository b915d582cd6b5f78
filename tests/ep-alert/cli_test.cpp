// The real ep-alert binary against real receivers on 127.0.0.1: what operators run.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <regex>
#include <set>

#include "ep/crypto.h"
#include "ep/json.h"
#include "fixtures.h"
#include "rules.h"
#include "run_process.h"
#include "test_receiver.h"
#include "webhook.h"

using namespace ep;
using namespace ep::alert;
using namespace ep::alert::testing;

namespace {

class AlertCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_dir();
    rules_path_ = dir_ + "/rules.toml";
    state_path_ = dir_ + "/state.json";
    write_rules("");
  }

  void write_rules(const std::string& extra, const std::string& rule = "consecutive = 2\nresolve = true\n") {
    spit(rules_path_, "[[webhooks]]\nname = \"ops\"\nurl = \"" + receiver_.url() +
                          "\"\nsecrets = [\"" + kSecret + "\", \"" + kSecret2 + "\"]\n\n"
                          "[[rules]]\nname = \"r\"\nwebhooks = [\"ops\"]\n" + rule + extra);
  }

  // ep-alert with test-friendly schedules; `args` come after the defaults.
  ProcResult alert(std::vector<std::string> args, const std::string& input) {
    // The receivers listen on loopback, which the egress policy allows only when told.
    std::vector<std::string> argv = {EP_ALERT_BIN, "--rules", rules_path_, "--backoff-base", "20ms",
                                     "--backoff-max", "80ms", "--timeout", "2s", "--drain-timeout",
                                     "20s", "--allow-egress", "127.0.0.0/8"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, input, dir_);
  }
  ProcResult command(std::vector<std::string> argv, const std::string& input = "") {
    argv.insert(argv.begin(), EP_ALERT_BIN);
    return run_process(argv, input, dir_);
  }

  static std::vector<rapidjson::Document> records(const ProcResult& r) {
    std::vector<rapidjson::Document> out;
    for (const auto& l : r.out_lines()) {
      rapidjson::Document d;
      EXPECT_TRUE(parse_json(l, d).is_ok()) << l;
      out.push_back(std::move(d));
    }
    return out;
  }
  static std::vector<std::string> statuses(const ProcResult& r) {
    std::vector<std::string> v;
    for (const auto& d : records(r)) v.push_back(d["status"].GetString());
    return v;
  }
  std::vector<std::string> keys() const {
    return {*resolve_secret(kSecret, "k"), *resolve_secret(kSecret2, "k")};
  }

  TestReceiver receiver_;
  std::string dir_, rules_path_, state_path_;
};

using V = std::vector<std::string>;

}  // namespace

TEST_F(AlertCli, DeliversSignedWebhooksThatVerify) {
  ProcResult r = alert({}, stream("AA.."));
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(statuses(r), V({"delivered", "delivered"}));
  auto recs = records(r);
  EXPECT_EQ(std::string(recs[0]["type"].GetString()), "anomaly.detected");
  EXPECT_EQ(recs[0]["attempts"].GetInt(), 1);
  EXPECT_EQ(recs[0]["http_status"].GetInt(), 200);
  EXPECT_EQ(std::string(recs[0]["end"].GetString()), "2026-01-05T10:10:00.000Z");  // 2nd window
  EXPECT_EQ(std::string(recs[1]["type"].GetString()), "anomaly.resolved");
  auto got = receiver_.received();
  ASSERT_EQ(got.size(), 2u);
  for (size_t i = 0; i < got.size(); ++i) {
    const Received& g = got[i];
    EXPECT_EQ(g.header("webhook-id"), recs[i]["alert_id"].GetString());
    EXPECT_EQ(g.header("content-type"), "application/json");
    // Two active secrets -> two space-separated signatures; each verifies alone.
    std::string sigs = g.header("webhook-signature");
    ASSERT_TRUE(std::regex_match(sigs, std::regex("v1,[A-Za-z0-9+/=]{44} v1,[A-Za-z0-9+/=]{44}"))) << sigs;
    ReceivedWebhook w{g.header("webhook-id"), g.header("webhook-timestamp"), sigs, true, true, true, g.body};
    EXPECT_TRUE(verify(w, {keys()[0]}, now_ns(), 300 * kNsPerSec).valid);
    EXPECT_TRUE(verify(w, {keys()[1]}, now_ns(), 300 * kNsPerSec).valid);
    rapidjson::Document body;
    ASSERT_TRUE(parse_json(g.body, body).is_ok());
    EXPECT_EQ(std::string(body["type"].GetString()), recs[i]["type"].GetString());
    EXPECT_EQ(std::string(body["data"]["alert_id"].GetString()), g.header("webhook-id"));
  }
  // `ep-alert verify` accepts the request as received and rejects a tampered copy.
  spit(dir_ + "/req.http", got[0].raw);
  ProcResult v = command({"verify", "--secret", kSecret2, dir_ + "/req.http"});
  EXPECT_EQ(v.exit, 0) << v.err;
  EXPECT_EQ(v.out.rfind("valid: webhook-id=" + got[0].header("webhook-id"), 0), 0u) << v.out;
  std::string tampered = got[0].raw;
  tampered.replace(tampered.find("\"score\":0.9"), 11, "\"score\":0.1");
  ProcResult t = command({"verify", "--secret", kSecret}, tampered);
  EXPECT_EQ(t.exit, 65);
  EXPECT_EQ(t.out, "invalid: webhook-signature: none of 2 signature(s) matches the 1 secret(s) "
                   "(wrong secret, or the body or id was changed)\n");
  ProcResult old = command({"verify", "--secret", kSecret, "--tolerance", "5m"},
                           "webhook-id: x\nwebhook-timestamp: 1000\nwebhook-signature: v1,abc\n\n{}");
  EXPECT_EQ(old.exit, 65);
  EXPECT_NE(old.out.find("outside the tolerance of 5m"), std::string::npos) << old.out;
}

TEST_F(AlertCli, VerifyRefusesAnOutOfRangeTimestampCleanly) {
  // 9,223,372,037 s overflows int64 nanoseconds: a clear message, exit 65, no UB.
  ProcResult r = command({"verify", "--secret", kSecret, "--tolerance", "36500d"},
                         "webhook-id: x\nwebhook-timestamp: 9223372037\nwebhook-signature: v1,abc\n\n{}");
  EXPECT_EQ(r.exit, 65) << r.err;
  EXPECT_EQ(r.out, "invalid: webhook-timestamp: out of range: \"9223372037\"\n");
  EXPECT_EQ(r.err.find("runtime error"), std::string::npos) << r.err;
}

TEST_F(AlertCli, SameStreamTwiceDeliversNothingTwice) {
  std::string in = stream("AA..AAA.");
  ProcResult a = alert({"--state", state_path_}, in);
  EXPECT_EQ(a.exit, 0) << a.err;
  EXPECT_EQ(receiver_.count(), 4u);
  ProcResult b = alert({"--state", state_path_}, in);
  EXPECT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(b.out, "");
  EXPECT_EQ(receiver_.count(), 4u);
  EXPECT_NE(b.err.find("8 already seen"), std::string::npos) << b.err;
}

TEST_F(AlertCli, RestartMidRetryResumesWithoutDuplicates) {
  receiver_.script({}, Action::reply(503));
  std::string in = stream("AA");
  ProcResult a = alert({"--state", state_path_, "--drain-timeout", "150ms", "--max-attempts", "50"}, in);
  EXPECT_EQ(a.exit, 75) << a.err;  // temporary: pending deliveries kept in the state file
  V st = statuses(a);
  ASSERT_GE(st.size(), 2u);
  EXPECT_EQ(st.front(), "retrying");
  EXPECT_EQ(st.back(), "pending");
  size_t failed_attempts = receiver_.count();
  ASSERT_GE(failed_attempts, 1u);

  receiver_.script({}, Action::reply(200));
  ProcResult b = alert({"--state", state_path_}, in);  // same stream, restarted
  EXPECT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(statuses(b), V({"delivered"}));
  auto got = receiver_.received();
  ASSERT_EQ(got.size(), failed_attempts + 1);
  std::set<std::string> ids;
  for (const auto& g : got) ids.insert(g.header("webhook-id"));
  EXPECT_EQ(ids.size(), 1u);  // every attempt, before and after the restart, is one alert
  EXPECT_EQ(got.back().answered, 200);
  EXPECT_EQ(records(b)[0]["attempts"].GetInt(), static_cast<int>(failed_attempts + 1));

  ProcResult c = alert({"--state", state_path_}, in);
  EXPECT_EQ(c.exit, 0) << c.err;
  EXPECT_EQ(receiver_.count(), got.size());
}

TEST_F(AlertCli, DeadLettersAreResentByRetry) {
  receiver_.script({}, Action::reply(500));
  ProcResult a = alert({"--state", state_path_, "--max-attempts", "2"}, stream("AA"));
  EXPECT_EQ(a.exit, 69) << a.err;
  EXPECT_EQ(statuses(a), V({"retrying", "failed"}));
  EXPECT_NE(a.err.find("1 deliveries failed"), std::string::npos) << a.err;

  receiver_.script({}, Action::reply(200));
  ProcResult none = command({"retry", "--allow-egress", "127.0.0.1", "--rules", rules_path_,
                             "--state", state_path_, "--rule", "other"});
  EXPECT_EQ(none.exit, 0) << none.err;
  EXPECT_EQ(none.out, "");
  ProcResult b = command({"retry", "--allow-egress", "127.0.0.1", "--rules", rules_path_, "--state",
                          state_path_, "--rule", "r", "--since", "1h"});
  EXPECT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(statuses(b), V({"delivered"}));
  EXPECT_EQ(receiver_.count(), 3u);
  ProcResult c = command(
      {"retry", "--allow-egress", "127.0.0.1", "--rules", rules_path_, "--state", state_path_});
  EXPECT_EQ(c.exit, 0);
  EXPECT_EQ(receiver_.count(), 3u);  // nothing left to send
}

TEST_F(AlertCli, GoneDisablesTheWebhookAndIsReported) {
  receiver_.script({Action::reply(410)}, Action::reply(200));
  ProcResult a = alert({"--state", state_path_, "--max-in-flight", "1"}, stream("AA.AA"));
  EXPECT_EQ(a.exit, 69) << a.err;
  EXPECT_EQ(statuses(a), V({"disabled", "disabled", "disabled"}));
  EXPECT_EQ(receiver_.count(), 1u);
  EXPECT_NE(a.err.find("webhook ops: endpoint disabled by HTTP 410"), std::string::npos) << a.err;
  ProcResult skip = command(
      {"retry", "--allow-egress", "127.0.0.1", "--rules", rules_path_, "--state", state_path_});
  EXPECT_EQ(skip.exit, 0) << skip.err;
  EXPECT_EQ(skip.out, "");
  EXPECT_NE(skip.err.find("3 failed deliveries go to endpoints disabled by HTTP 410 (ops)"),
            std::string::npos) << skip.err;
  ProcResult b = command({"retry", "--allow-egress", "127.0.0.1", "--rules", rules_path_, "--state",
                          state_path_, "--webhook", "ops"});
  EXPECT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(statuses(b), V({"delivered", "delivered", "delivered"}));
}

TEST_F(AlertCli, BadRequestIsAPermanentFailure) {
  receiver_.script({}, Action::reply(400));
  ProcResult a = alert({}, stream("AA"));
  EXPECT_EQ(a.exit, 69);
  EXPECT_EQ(statuses(a), V({"failed"}));
  EXPECT_EQ(std::string(records(a)[0]["error"].GetString()), "permanent: HTTP 400: scripted failure ");
  EXPECT_EQ(receiver_.count(), 1u);
}

TEST_F(AlertCli, WithoutStateUndeliveredAlertsFailAtExit) {
  receiver_.script({}, Action::reply(503));
  ProcResult a = alert({"--drain-timeout", "100ms", "--max-attempts", "50"}, stream("AA"));
  EXPECT_EQ(a.exit, 69);
  V st = statuses(a);
  ASSERT_FALSE(st.empty());
  EXPECT_EQ(st.back(), "failed");
  EXPECT_NE(a.out.find("no --state to keep it"), std::string::npos) << a.out;
}

TEST_F(AlertCli, DryRunSendsNothingAndKeepsNoState) {
  ProcResult a = alert({"--dry-run", "--state", state_path_}, stream("AA."));
  EXPECT_EQ(a.exit, 0) << a.err;
  EXPECT_EQ(statuses(a), V({"dry-run", "dry-run"}));
  auto recs = records(a);
  EXPECT_EQ(std::string(recs[0]["url"].GetString()), receiver_.url());
  EXPECT_EQ(std::string(recs[0]["body"]["type"].GetString()), "anomaly.detected");
  EXPECT_EQ(receiver_.count(), 0u);
  EXPECT_FALSE(std::ifstream(state_path_).good());
}

TEST_F(AlertCli, SilenceSuppressesDeliveryButRecordsTheEvent) {
  write_rules("[[silences]]\nname = \"maint\"\ntenant = \"acme\"\nend = \"2030-01-01T00:00:00Z\"\n");
  ProcResult a = alert({}, stream("AA.") + stream("AA", "meter-002"));
  EXPECT_EQ(a.exit, 0) << a.err;
  EXPECT_EQ(statuses(a), V({"suppressed", "suppressed"}));
  EXPECT_EQ(std::string(records(a)[0]["error"].GetString()), "silenced: maint");
  EXPECT_EQ(receiver_.count(), 0u);
}

TEST_F(AlertCli, CooldownAndFlappingEndToEnd) {
  write_rules("", "resolve = true\ncooldown = \"12m\"\nflap_threshold = 3\nflap_window = \"1h\"\n");
  // Fires at 0 and 3 (notified, resolves sent), at 5 (10 min after 3: cooldown), then
  // the third firing within the hour holds the series: the flips at 6..10 send nothing.
  ProcResult a = alert({}, stream("A..A.A.A.A."));
  EXPECT_EQ(a.exit, 0) << a.err;
  // Deliveries finish asynchronously, so records are matched by window, not by order.
  std::map<std::string, std::string> by_end;
  for (const auto& d : records(a))
    by_end[d["end"].GetString()] = std::string(d["status"].GetString()) + " " +
                                   d["type"].GetString() + " " +
                                   (d.HasMember("error") ? d["error"].GetString() : "");
  auto end = [](int i) { return format_rfc3339(window_end(i)); };
  ASSERT_EQ(by_end.size(), 6u) << a.out;
  EXPECT_EQ(by_end[end(0)], "delivered anomaly.detected ");
  EXPECT_EQ(by_end[end(1)], "delivered anomaly.resolved ");
  EXPECT_EQ(by_end[end(3)], "delivered anomaly.detected ");
  EXPECT_EQ(by_end[end(4)], "delivered anomaly.resolved ");
  EXPECT_EQ(by_end[end(5)].rfind("suppressed anomaly.detected cooldown: ", 0), 0u) << by_end[end(5)];
  EXPECT_EQ(by_end[end(6)].rfind("suppressed anomaly.resolved flapping: fired 3 times", 0), 0u)
      << by_end[end(6)];
  EXPECT_EQ(receiver_.count(), 4u);
}

TEST_F(AlertCli, BadScoreLinesAreReportedWithLineNumbers) {
  std::string in = score_line(0, true) + "not json\n" +
                   "{\"kind\":\"score\",\"tenant\":\"acme\",\"device\":\"d\",\"metric\":\"m\","
                   "\"start\":\"2026-01-05T10:00:00Z\",\"end\":\"2026-01-05T10:05:00Z\",\"score\":1.5,"
                   "\"anomaly\":true}\n" +
                   "{\"kind\":\"window\"}\n" + score_line(1, true);
  ProcResult a = alert({}, in);
  EXPECT_EQ(a.exit, 65);
  EXPECT_EQ(statuses(a), V({"delivered"}));  // valid input is still processed
  EXPECT_NE(a.err.find("ep-alert: stdin:2: invalid JSON"), std::string::npos) << a.err;
  EXPECT_NE(a.err.find("ep-alert: stdin:3: score: not in [0,1]\n"), std::string::npos) << a.err;
  EXPECT_NE(a.err.find("ep-alert: stdin:4: kind: expected \"score\", got \"window\"\n"),
            std::string::npos) << a.err;
  EXPECT_NE(a.err.find("3 input lines rejected"), std::string::npos) << a.err;

  ProcResult s = alert({"--strict"}, in);
  EXPECT_EQ(s.exit, 65);
  EXPECT_EQ(s.out, "");
  EXPECT_EQ(s.err.find("stdin:3"), std::string::npos) << s.err;
}

TEST_F(AlertCli, InvalidRulesNameRuleAndFieldAndExit64) {
  write_rules("", "min_score = 2\n");
  ProcResult a = alert({}, stream("AA"));
  EXPECT_EQ(a.exit, 64);
  EXPECT_EQ(a.err, "ep-alert: " + rules_path_ + ":9: rules[0] \"r\": min_score: must be a number in [0, 1]\n");
  ProcResult c = command({"check", "--rules", rules_path_});
  EXPECT_EQ(c.exit, 64);
  EXPECT_EQ(c.err, a.err);
  write_rules("");
  ProcResult ok = command({"check", "--rules", rules_path_});
  EXPECT_EQ(ok.exit, 0) << ok.err;
  EXPECT_EQ(ok.out, rules_path_ + ": ok: 1 rules, 1 webhooks, 0 silences\n");
  ProcResult missing = command({"--dry-run"});
  EXPECT_EQ(missing.exit, 64);
}

TEST_F(AlertCli, EveryHelpOptionIsInTheManPage) {
  std::string man = slurp(std::string(EP_SOURCE_DIR) + "/man/ep-alert.1");
  ASSERT_FALSE(man.empty());
  for (std::vector<std::string> args : {V{"--help"}, V{"retry", "--help"}, V{"verify", "--help"}}) {
    ProcResult h = command(args);
    EXPECT_EQ(h.exit, 0);
    std::regex opt("--[a-z][a-z-]+");
    std::string options = h.out.substr(0, h.out.find("Example:"));  // not other tools' flags
    for (std::sregex_iterator it(options.begin(), options.end(), opt), end; it != end; ++it) {
      std::string o = it->str();
      std::string roff;  // man pages escape '-' as '\-'
      for (char c : o) roff += c == '-' ? std::string("\\-") : std::string(1, c);
      EXPECT_NE(man.find(roff), std::string::npos) << o << " is not in man/ep-alert.1";
    }
  }
  EXPECT_EQ(command({"--version"}).exit, 0);
  EXPECT_EQ(command({"--no-such-flag"}).exit, 64);
}

TEST_F(AlertCli, SigtermSavesPendingDeliveriesAndTheNextRunSendsThem) {
  receiver_.script({}, Action::reply(503));
  int in[2];
  ASSERT_EQ(::pipe(in), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  std::string out = dir_ + "/out", err = dir_ + "/err";
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv = {EP_ALERT_BIN, "--rules", rules_path_, "--state", state_path_,
                                   "--backoff-base", "20ms", "--backoff-max", "50ms",
                                   "--max-attempts", "100", "--allow-egress", "127.0.0.0/8"};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  std::string scores = stream("AA");
  ASSERT_EQ(::write(in[1], scores.data(), scores.size()), static_cast<ssize_t>(scores.size()));
  // The input stays open (a live pipeline); retries go on while ep-alert waits for input.
  ASSERT_TRUE(receiver_.wait_for(3)) << "no retries while waiting for input";
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(in[1]);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 75) << slurp(err);
  ProcResult first{WEXITSTATUS(status), slurp(out), slurp(err)};
  EXPECT_EQ(statuses(first).back(), "pending");

  receiver_.script({}, Action::reply(200));
  size_t before = receiver_.count();
  ProcResult b = alert({"--state", state_path_}, "");  // no new input: resume only
  EXPECT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(statuses(b), V({"delivered"}));
  EXPECT_EQ(receiver_.count(), before + 1);
}

TEST_F(AlertCli, ReceiverOutageLosesNothingAndDuplicatesNothing) {
  // 40 series fire and resolve (80 alerts); the receiver fails the first 150 requests
  // (503, cut connections, 429) and then recovers. Every alert must be answered 2xx
  // exactly once.
  std::vector<Action> outage;
  for (int i = 0; i < 150; ++i)
    outage.push_back(i % 3 == 0 ? Action::reply(503) : i % 3 == 1 ? Action::cut()
                                                                  : Action::retry_after(429, "0"));
  receiver_.script(outage, Action::reply(200));
  std::string in;
  for (int d = 0; d < 40; ++d) in += stream("AA.", "meter-" + std::to_string(d));
  ProcResult a = alert({"--state", state_path_, "--max-in-flight", "8", "--max-attempts", "100",
                        "--backoff-base", "5ms", "--backoff-max", "20ms"}, in);
  EXPECT_EQ(a.exit, 0) << a.err;
  std::map<std::string, int> ok;
  std::set<std::string> seen;
  for (const auto& g : receiver_.received()) {
    seen.insert(g.header("webhook-id"));
    if (g.answered >= 200 && g.answered < 300) ++ok[g.header("webhook-id")];
  }
  EXPECT_EQ(seen.size(), 80u);
  EXPECT_EQ(ok.size(), 80u);
  for (const auto& [id, n] : ok) EXPECT_EQ(n, 1) << id;
  V st = statuses(a);
  EXPECT_EQ(std::count(st.begin(), st.end(), "delivered"), 80);
  EXPECT_EQ(std::count(st.begin(), st.end(), "retrying"), 150);
}
