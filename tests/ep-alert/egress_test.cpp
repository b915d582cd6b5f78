// The egress policy where webhooks are delivered: the HTTP client and the real binary
// against real receivers on loopback addresses (127.0.0.1, 127.0.0.2) only. A receiver
// the policy does not allow must get nothing, whatever the URL spelling, a --resolve
// override or a redirect. (Classification of other addresses is unit-tested without
// connecting: tests/unit/egress_test.cpp.)
#include <gtest/gtest.h>

#include <cstdlib>

#include "ep/json.h"
#include "fixtures.h"
#include "http_client.h"
#include "run_process.h"
#include "test_receiver.h"

using namespace ep;
using namespace ep::alert;
using namespace ep::alert::testing;

namespace {

const std::string kDenied127 =
    "webhook URL resolves to 127.0.0.1, a loopback address, which the egress policy denies (an "
    "operator allows it with --allow-egress)";

HttpClientOptions client(const std::vector<std::string>& allow = {},
                         std::vector<std::string> resolve = {}) {
  HttpClientOptions o;
  o.connect_timeout = 2 * kNsPerSec;
  o.total_timeout = 5 * kNsPerSec;
  auto p = egress::Policy::from_strings(allow);
  EXPECT_TRUE(p.is_ok()) << p.status().message();
  if (p) o.egress = *p;
  o.resolve = std::move(resolve);
  return o;
}

// One POST through the client, driven until it finishes (bounded).
HttpResult post(const HttpClientOptions& opts, const std::string& url) {
  HttpClient c(opts);
  HttpRequest req;
  req.tag = 7;
  req.url = url;
  req.body = "{}";
  EXPECT_TRUE(c.submit(req).is_ok());
  std::vector<HttpResult> done;
  TimeNs deadline = monotonic_ns() + 20 * kNsPerSec;
  while (done.empty() && monotonic_ns() < deadline) EXPECT_TRUE(c.poll(100 * kNsPerMs, done).is_ok());
  EXPECT_EQ(done.size(), 1u) << url;
  return done.empty() ? HttpResult{} : done.front();
}

std::string port_of(const TestReceiver& r) { return std::to_string(r.port()); }

}  // namespace

TEST(EgressClient, LoopbackReceiverNotAllowlistedGetsNothing) {
  TestReceiver rx;
  HttpResult r = post(client(), rx.url());
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.egress_denied);
  EXPECT_EQ(r.error, kDenied127);
  // The same receiver, allowlisted, gets the next request: the first never arrived.
  HttpResult ok = post(client({"127.0.0.0/8"}), rx.url());
  EXPECT_EQ(ok.status, 200) << ok.error;
  EXPECT_FALSE(ok.egress_denied);
  ASSERT_TRUE(rx.wait_for(1));
  EXPECT_EQ(rx.count(), 1u);
}

TEST(EgressClient, EverySpellingOfLoopbackIsRefusedAtConnect) {
  TestReceiver rx;
  std::string port = port_of(rx);
  for (const std::string host : {"2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "0x7f000001"}) {
    HttpResult r = post(client(), "http://" + host + ":" + port + "/hook");
    EXPECT_TRUE(r.egress_denied) << host << ": " << r.error;
    EXPECT_EQ(r.error, kDenied127) << host;
  }
  HttpResult v6 = post(client(), "http://[::1]:" + port + "/hook");
  EXPECT_TRUE(v6.egress_denied) << v6.error;
  EXPECT_EQ(v6.error,
            "webhook URL resolves to ::1, a loopback address, which the egress policy denies (an "
            "operator allows it with --allow-egress)");
  HttpResult mapped = post(client(), "http://[::ffff:127.0.0.1]:" + port + "/hook");
  EXPECT_TRUE(mapped.egress_denied) << mapped.error;
  EXPECT_NE(mapped.error.find("127.0.0.1"), std::string::npos) << mapped.error;
  HttpResult name = post(client(), "http://localhost:" + port + "/hook");
  EXPECT_TRUE(name.egress_denied) << name.error;
  EXPECT_NE(name.error.find(", a loopback address, which the egress policy denies"),
            std::string::npos)
      << name.error;
  EXPECT_EQ(rx.count(), 0u);
}

TEST(EgressClient, ResolveOverrideIsCheckedLikeTheAddress) {
  TestReceiver rx;
  std::string url = "http://hooks.test:" + port_of(rx) + "/hook";
  std::vector<std::string> resolve = {"hooks.test:" + port_of(rx) + ":127.0.0.1"};
  HttpResult r = post(client({}, resolve), url);
  EXPECT_TRUE(r.egress_denied) << r.error;
  EXPECT_EQ(r.error, kDenied127);
  EXPECT_EQ(rx.count(), 0u);
  HttpResult ok = post(client({"127.0.0.1"}, resolve), url);
  EXPECT_EQ(ok.status, 200) << ok.error;
  ASSERT_TRUE(rx.wait_for(1));
  EXPECT_EQ(rx.received()[0].header("host"), "hooks.test:" + port_of(rx));
}

TEST(EgressClient, RedirectsAreNotFollowed) {
  TestReceiver first("127.0.0.1"), second("127.0.0.2");
  first.script({}, Action{307, {{"Location", second.url()}}, false, false});
  auto allow_first = client({"127.0.0.1/32"});
  HttpResult r = post(allow_first, first.url());
  EXPECT_EQ(r.status, 307);
  EXPECT_FALSE(r.egress_denied);
  ASSERT_TRUE(first.wait_for(1));
  EXPECT_EQ(second.count(), 0u);
  // Had it been followed, the policy would have refused the second receiver too.
  HttpResult direct = post(allow_first, second.url());
  EXPECT_TRUE(direct.egress_denied);
  EXPECT_EQ(direct.error,
            "webhook URL resolves to 127.0.0.2, a loopback address, which the egress policy denies "
            "(an operator allows it with --allow-egress)");
  EXPECT_EQ(second.count(), 0u);
}

TEST(EgressClient, ResolveEntriesAreValidated) {
  EXPECT_TRUE(check_resolve("hooks.test:443:127.0.0.1").is_ok());
  EXPECT_TRUE(check_resolve("hooks.test:443:[::1],127.0.0.2").is_ok());
  EXPECT_EQ(check_resolve("hooks.test:443").message(), "--resolve hooks.test:443: expected HOST:PORT:ADDR");
  EXPECT_EQ(check_resolve(":443:127.0.0.1").message(), "--resolve :443:127.0.0.1: expected HOST:PORT:ADDR");
  EXPECT_EQ(check_resolve("h:0:127.0.0.1").message(), "--resolve h:0:127.0.0.1: port must be 1-65535");
  EXPECT_EQ(check_resolve("h:x:127.0.0.1").message(), "--resolve h:x:127.0.0.1: port must be 1-65535");
  EXPECT_EQ(check_resolve("h:80:localhost").message(),
            "--resolve h:80:localhost: localhost: not an IPv4 or [IPv6] address");
  EXPECT_EQ(check_resolve("h:80:127.0.0.1,").message(),
            "--resolve h:80:127.0.0.1,: : not an IPv4 or [IPv6] address");
}

namespace {

// The binary, as operators run it.
class EgressCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_dir();
    rules_ = dir_ + "/rules.toml";
    state_ = dir_ + "/state.json";
  }
  void write_rules(const std::string& url) {
    spit(rules_, "[[webhooks]]\nname = \"ops\"\nurl = \"" + url + "\"\nsecret = \"" + kSecret +
                     "\"\n\n[[rules]]\nname = \"r\"\nwebhooks = [\"ops\"]\n");
  }
  ProcResult run(std::vector<std::string> args, const std::string& input = stream("A")) {
    std::vector<std::string> argv = {EP_ALERT_BIN, "--rules", rules_, "--state", state_,
                                     "--backoff-base", "20ms", "--backoff-max", "80ms",
                                     "--timeout", "2s", "--drain-timeout", "20s"};
    if (!args.empty() && args[0] == "retry") argv.insert(argv.begin() + 1, "retry");
    if (!args.empty() && args[0] == "retry") args.erase(args.begin());
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, input, dir_);
  }
  static rapidjson::Document record(const ProcResult& r, size_t i = 0) {
    rapidjson::Document d;
    auto lines = r.out_lines();
    EXPECT_GT(lines.size(), i) << r.out << r.err;
    if (lines.size() > i) {
      EXPECT_TRUE(parse_json(lines[i], d).is_ok()) << lines[i];
    }
    return d;
  }
  static std::string field(const rapidjson::Document& d, const char* name) {
    return d.IsObject() && d.HasMember(name) && d[name].IsString() ? d[name].GetString() : "";
  }

  std::string dir_, rules_, state_;
};

}  // namespace

TEST_F(EgressCli, DeniedDeliveryFailsAtOnceAndRetrySendsItOnceAllowed) {
  TestReceiver rx;
  write_rules(rx.url());
  ProcResult a = run({"--max-attempts", "5"});
  EXPECT_EQ(a.exit, 69) << a.err;
  auto rec = record(a);
  EXPECT_EQ(field(rec, "status"), "failed");
  EXPECT_EQ(rec["attempts"].GetInt(), 1);  // permanent: not retried
  EXPECT_EQ(field(rec, "error"), "permanent: connection: " + kDenied127);
  EXPECT_EQ(a.out_lines().size(), 1u) << a.out;
  EXPECT_EQ(rx.count(), 0u);

  // Still denied on retry until the operator allows the address.
  ProcResult still = run({"retry"}, "");
  EXPECT_EQ(still.exit, 69) << still.err;
  EXPECT_EQ(field(record(still), "error"), "permanent: connection: " + kDenied127);
  EXPECT_EQ(rx.count(), 0u);

  // Allowed through the config file ([alert] allow-egress), then re-sent.
  spit(dir_ + "/edgepulse.toml", "[alert]\nallow-egress = [\"127.0.0.0/8\"]\n");
  ProcResult b = run({"retry", "--config", dir_ + "/edgepulse.toml"}, "");
  EXPECT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(field(record(b), "status"), "delivered");
  ASSERT_TRUE(rx.wait_for(1));
  EXPECT_EQ(rx.count(), 1u);
}

TEST_F(EgressCli, AllowlistFromTheEnvironment) {
  TestReceiver rx;
  write_rules(rx.url());
  ::setenv("EP_ALLOW_EGRESS", "10.0.0.0/8,127.0.0.1", 1);
  ProcResult a = run({});
  ::unsetenv("EP_ALLOW_EGRESS");
  EXPECT_EQ(a.exit, 0) << a.err;
  EXPECT_EQ(field(record(a), "status"), "delivered");
  EXPECT_EQ(rx.count(), 1u);
}

TEST_F(EgressCli, NameMappedToLoopbackWithResolveIsRefusedLikeTheAddress) {
  TestReceiver rx;
  std::string hostport = "hooks.test:" + std::to_string(rx.port());
  write_rules("http://" + hostport + "/hook");
  ProcResult a = run({"--resolve", hostport + ":127.0.0.1"});
  EXPECT_EQ(a.exit, 69) << a.err;
  EXPECT_EQ(field(record(a), "error"), "permanent: connection: " + kDenied127);
  EXPECT_EQ(rx.count(), 0u);
  ProcResult b = run({"retry", "--resolve", hostport + ":127.0.0.1", "--allow-egress", "127.0.0.1/32"},
                     "");
  EXPECT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(field(record(b), "status"), "delivered");
  ASSERT_TRUE(rx.wait_for(1));
  EXPECT_EQ(rx.received()[0].header("host"), hostport);
}

TEST_F(EgressCli, RedirectToAnotherReceiverIsAFailureAndSendsItNothing) {
  TestReceiver first("127.0.0.1"), second("127.0.0.2");
  first.script({}, Action{302, {{"Location", second.url()}}, false, false});
  write_rules(first.url());
  ProcResult a = run({"--allow-egress", "127.0.0.1"});
  EXPECT_EQ(a.exit, 69) << a.err;
  auto rec = record(a);
  EXPECT_EQ(field(rec, "status"), "failed");
  EXPECT_EQ(field(rec, "error").rfind("permanent: HTTP 302", 0), 0u) << field(rec, "error");
  EXPECT_EQ(first.count(), 1u);
  EXPECT_EQ(second.count(), 0u);
}

TEST_F(EgressCli, BadAllowlistOrResolveIsAUsageError) {
  write_rules("http://127.0.0.1:9/hook");
  ProcResult a = run({"--allow-egress", "10.0.0.1/8"});
  EXPECT_EQ(a.exit, 64);
  EXPECT_NE(a.err.find("ep-alert: --allow-egress: 10.0.0.1/8: bits set after the prefix (meant "
                       "10.0.0.0/8?)"),
            std::string::npos)
      << a.err;
  ProcResult b = run({"--resolve", "hooks.test:80"});
  EXPECT_EQ(b.exit, 64);
  EXPECT_NE(b.err.find("ep-alert: --resolve hooks.test:80: expected HOST:PORT:ADDR"),
            std::string::npos)
      << b.err;
  EXPECT_EQ(a.out + b.out, "");
}
