#include "rules.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "fixtures.h"

using namespace ep;
using namespace ep::alert;
using namespace ep::alert::testing;

namespace {

const std::string kHook = std::string("[[webhooks]]\nname = \"ops\"\nurl = \"https://h.example/x\"\n"
                                      "secrets = [\"") + kSecret + "\"]\n";

std::string rules_error(const std::string& text) {
  auto r = parse_rules(text, "rules.toml");
  EXPECT_FALSE(r.is_ok()) << text;
  return r.is_ok() ? std::string() : r.status().message();
}

}  // namespace

TEST(Rules, ParsesFullRule) {
  auto r = parse_rules(kHook + R"(
[[rules]]
name = "high"
tenant = "acme"
device = "meter-*"
metric = "voltage"
min_score = 0.8
labels = ["spike", "drop"]
consecutive = 3
cooldown = "30m"
resolve = true
severity = "critical"
webhooks = ["ops"]
flap_threshold = 3
flap_window = "2h"

[[silences]]
tenant = "acme"
device = "meter-7"
end = "2026-01-05T12:00:00Z"
)", "rules.toml");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const Rule& rule = r->rules.at(0);
  EXPECT_EQ(rule.name, "high");
  EXPECT_DOUBLE_EQ(rule.min_score, 0.8);
  EXPECT_EQ(rule.consecutive, 3);
  EXPECT_EQ(rule.cooldown, 1800 * kNsPerSec);
  EXPECT_TRUE(rule.resolve);
  EXPECT_EQ(rule.severity, Severity::kCritical);
  EXPECT_EQ(rule.flap_window, 7200 * kNsPerSec);
  EXPECT_TRUE(rule.selector.matches("acme", "meter-12", "voltage"));
  EXPECT_FALSE(rule.selector.matches("acme", "pump-1", "voltage"));
  EXPECT_TRUE(rule.anomalous(true, 0.85, "drop"));
  EXPECT_FALSE(rule.anomalous(true, 0.85, "drift"));
  EXPECT_FALSE(rule.anomalous(true, 0.75, "spike"));
  EXPECT_FALSE(rule.anomalous(false, 0.95, "spike"));
  ASSERT_EQ(r->webhooks.at(0).keys.size(), 1u);
  EXPECT_EQ(r->webhooks[0].keys[0].size(), 24u);
  const Silence& s = r->silences.at(0);
  EXPECT_TRUE(s.covers("high", "acme", "meter-7", "voltage", window_end(0)));
  EXPECT_FALSE(s.covers("high", "acme", "meter-7", "voltage", *parse_rfc3339("2026-01-05T12:00:00Z")));
}

TEST(Rules, ErrorsNameFileLineRuleAndField) {
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"high\"\nmin_score = 1.5\nwebhooks = [\"ops\"]\n"),
            "rules.toml:7: rules[0] \"high\": min_score: must be a number in [0, 1]");
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"high\"\nwebhooks = [\"pager\"]\n"),
            "rules.toml:7: rules[0] \"high\": webhooks: no webhook named \"pager\"");
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\nwebhooks = \"ops\"\n[[rules]]\nname = \"b\"\n"
                                "min_scor = 0.5\nwebhooks = \"ops\"\n"),
            "rules.toml:10: rules[1] \"b\": min_scor: unknown key");
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\ncooldown = \"soon\"\nwebhooks = \"ops\"\n"),
            "rules.toml:7: rules[0] \"a\": cooldown: must be a duration like \"30s\", \"5m\", \"1h\"");
  // Integer seconds whose nanoseconds overflow int64 (some found by tests/fuzz/fuzz_rules.cpp),
  // and more than 100 years: refused.
  for (const char* big : {"9223372037", "9223372036854775807", "3153600001", "18446744074",
                          "-9223372036854775808"})
    EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\ncooldown = " + big + "\nwebhooks = \"ops\"\n"),
              "rules.toml:7: rules[0] \"a\": cooldown: must be a duration like \"30s\", \"5m\", \"1h\"")
        << big;
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\nconsecutive = 0\nwebhooks = \"ops\"\n"),
            "rules.toml:7: rules[0] \"a\": consecutive: must be an integer in [1, 10000]");
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\nlabels = [\"spikes\"]\nwebhooks = \"ops\"\n"),
            "rules.toml:7: rules[0] \"a\": labels: unknown label \"spikes\" (normal, spike, drop, "
            "drift, missingness, stuck)");
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\nflap_threshold = 1\nwebhooks = \"ops\"\n"),
            "rules.toml:7: rules[0] \"a\": flap_threshold: must be 0 (off) or at least 2");
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\nseverity = \"huge\"\nwebhooks = \"ops\"\n"),
            "rules.toml:7: rules[0] \"a\": severity: must be info, warning or critical");
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\n"),
            "rules.toml:5: rules[0] \"a\": webhooks: required (names of [[webhooks]] entries)");
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\nwebhooks = \"ops\"\n[[rules]]\nname = \"a\"\n"
                                "webhooks = \"ops\"\n"),
            "rules.toml:9: rules[1] \"a\": name: duplicate rule name");
  EXPECT_EQ(rules_error(kHook + "[[rules]]\nname = \"a\"\nwebhooks = \"ops\"\n[[silences]]\n"
                                "tenant = \"acme\"\n"),
            "rules.toml:8: silences[0]: end: required");
  EXPECT_EQ(rules_error(kHook), "rules.toml: no rules ([[rules]] tables) defined");
  EXPECT_EQ(rules_error("[[rules]\n"), "rules.toml:1:9: Error while parsing table header: expected ']', saw '\\n'");
  // A non-ASCII character where whitespace may appear (undefined behaviour inside toml++
  // 3.3.0 without ep/toml.h; found by tests/fuzz/fuzz_rules.cpp).
  EXPECT_EQ(rules_error("\xCF\x9A"),
            "rules.toml:1:1: Error while parsing root table: expected keys, tables, whitespace or "
            "comments, saw '\xCF\x9A'");
}

TEST(Rules, WebhookSecretErrorsNameTheWebhook) {
  EXPECT_EQ(rules_error("[[webhooks]]\nname = \"ops\"\nurl = \"https://x\"\nsecrets = [\"sk_abc\"]\n"
                        "[[rules]]\nname = \"a\"\nwebhooks = \"ops\"\n"),
            "rules.toml:4: webhooks[0] \"ops\": secrets[0]: must start with whsec_");
  ::unsetenv("EP_ALERT_TEST_MISSING");
  EXPECT_EQ(rules_error("[[webhooks]]\nname = \"ops\"\nurl = \"https://x\"\n"
                        "secrets = [\"env:EP_ALERT_TEST_MISSING\"]\n[[rules]]\nname = \"a\"\nwebhooks = \"ops\"\n"),
            "rules.toml:4: webhooks[0] \"ops\": secrets[0]: environment variable "
            "EP_ALERT_TEST_MISSING is not set");
  EXPECT_EQ(rules_error("[[webhooks]]\nname = \"ops\"\nurl = \"ftp://x\"\nsecret = \"" +
                        std::string(kSecret) + "\"\n[[rules]]\nname = \"a\"\nwebhooks = \"ops\"\n"),
            "rules.toml:3: webhooks[0] \"ops\": url: must start with https:// or http://");
  EXPECT_EQ(rules_error("[[webhooks]]\nname = \"ops\"\nurl = \"https://x\"\nsecret = \"whsec_c2hvcnQ=\"\n"
                        "[[rules]]\nname = \"a\"\nwebhooks = \"ops\"\n"),
            "rules.toml:4: webhooks[0] \"ops\": secret[0]: key must be 24 to 64 bytes, got 5");
}

TEST(Rules, SecretsFromEnvironmentAndFile) {
  ::setenv("EP_ALERT_TEST_SECRET", kSecret, 1);
  std::string path = ::testing::TempDir() + "ep_alert_secret";
  {
    std::ofstream f(path);
    f << kSecret2 << "\n";
  }
  auto r = parse_rules("[[webhooks]]\nname = \"ops\"\nurl = \"https://x\"\nsecrets = "
                       "[\"env:EP_ALERT_TEST_SECRET\", \"file:" + path + "\"]\n"
                       "[[rules]]\nname = \"a\"\nwebhooks = \"ops\"\n", "rules.toml");
  ::unsetenv("EP_ALERT_TEST_SECRET");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->webhooks[0].keys.size(), 2u);
  EXPECT_EQ(r->webhooks[0].keys[1], "second-secret-key-24-bytes");
}
