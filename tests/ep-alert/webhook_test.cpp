#include "webhook.h"

#include <gtest/gtest.h>

#include "ep/crypto.h"
#include "fixtures.h"
#include "http_client.h"
#include "rules.h"

using namespace ep;
using namespace ep::alert;
using namespace ep::alert::testing;

namespace {
std::string key(const char* secret) { return *resolve_secret(secret, "test"); }
}  // namespace

// The published Standard Webhooks / Svix test vector.
TEST(Webhook, SignatureMatchesStandardWebhooksVector) {
  EXPECT_EQ(sign({key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}, "msg_p5jXN8AQM9LWM0D4loKWxJek",
                 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(Webhook, TwoSecretsGiveTwoSignaturesEitherVerifies) {
  std::string sigs = sign({key(kSecret), key(kSecret2)}, "id1", 1000, "{}");
  ASSERT_NE(sigs.find(' '), std::string::npos);
  ReceivedWebhook w{"id1", "1000", sigs, true, true, true, "{}"};
  TimeNs now = 1000 * kNsPerSec;
  EXPECT_TRUE(verify(w, {key(kSecret)}, now, 300 * kNsPerSec).valid);
  Verdict v = verify(w, {key(kSecret2)}, now, 300 * kNsPerSec);
  EXPECT_TRUE(v.valid);
  EXPECT_EQ(v.reason, "signature 2 matches secret 1");
}

TEST(Webhook, VerifyRejectsTamperingStaleAndMissingHeaders) {
  std::string sig = sign({key(kSecret)}, "id1", 1000, "{\"a\":1}");
  TimeNs now = 1000 * kNsPerSec;
  TimeNs tol = 300 * kNsPerSec;
  ReceivedWebhook w{"id1", "1000", sig, true, true, true, "{\"a\":2}"};
  EXPECT_EQ(verify(w, {key(kSecret)}, now, tol).reason,
            "webhook-signature: none of 1 signature(s) matches the 1 secret(s) (wrong secret, "
            "or the body or id was changed)");
  w.body = "{\"a\":1}";
  EXPECT_TRUE(verify(w, {key(kSecret)}, now, tol).valid);
  EXPECT_FALSE(verify(w, {key(kSecret2)}, now, tol).valid);
  EXPECT_EQ(verify(w, {key(kSecret)}, now + 301 * kNsPerSec, tol).reason,
            "webhook-timestamp: 1970-01-01T00:16:40.000Z is 301s old, outside the tolerance of 5m");
  EXPECT_EQ(verify(w, {key(kSecret)}, now - 400 * kNsPerSec, tol).reason,
            "webhook-timestamp: 1970-01-01T00:16:40.000Z is 400s in the future, outside the "
            "tolerance of 5m");
  w.has_signature = false;
  EXPECT_EQ(verify(w, {key(kSecret)}, now, tol).reason, "missing header webhook-signature");
  w.has_signature = true;
  w.timestamp = "10x";
  EXPECT_EQ(verify(w, {key(kSecret)}, now, tol).reason,
            "webhook-timestamp: not an integer number of seconds: \"10x\"");
}

// Found by tests/fuzz/fuzz_webhook.cpp: a timestamp beyond the TimeNs range (e.g.
// INT64_MAX seconds) overflowed the conversion to nanoseconds.
TEST(Webhook, TimestampsOutOfRangeAreOutsideTheTolerance) {
  std::string sig = sign({key(kSecret)}, "id1", 1000, "{}");
  TimeNs now = 1767225600LL * kNsPerSec;
  TimeNs tol = 300 * kNsPerSec;
  for (const char* ts : {"9223372036854775807", "-9223372036854775808", "9223372037"}) {
    ReceivedWebhook w{"id1", ts, sig, true, true, true, "{}"};
    Verdict v = verify(w, {key(kSecret)}, now, tol);
    EXPECT_FALSE(v.valid) << ts;
    EXPECT_EQ(v.reason, "webhook-timestamp: " + std::string(ts) +
                            " is out of range, outside the tolerance of 5m");
  }
  // The largest representable: a time, and a skew in seconds beyond a duration's range.
  ReceivedWebhook w{"id1", "-9223372036", sig, true, true, true, "{}"};
  Verdict v = verify(w, {key(kSecret)}, now, tol);
  EXPECT_FALSE(v.valid);
  EXPECT_NE(v.reason.find(" is 10990597636s old, outside the tolerance of 5m"), std::string::npos)
      << v.reason;
}

TEST(Webhook, ParsesRequestDumpsWithAndWithoutRequestLine) {
  std::string body = "{\"type\":\"anomaly.detected\"}\n";
  auto a = parse_request_dump("POST /hook HTTP/1.1\r\nHost: x\r\nWebhook-Id: abc\r\n"
                              "webhook-timestamp: 5\r\nwebhook-signature: v1,xyz\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ(a->id, "abc");
  EXPECT_EQ(a->timestamp, "5");
  EXPECT_EQ(a->signature, "v1,xyz");
  EXPECT_EQ(a->body, body);
  // Headers only, LF line ends, no Content-Length: the body is the rest, byte-exact.
  auto b = parse_request_dump("webhook-id: abc\nwebhook-timestamp: 5\nwebhook-signature: v1,x\n\n" + body);
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(b->body, body);
  auto c = parse_request_dump("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort");
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().message(), "body: shorter than Content-Length (5 < 100 bytes)");
  EXPECT_FALSE(parse_request_dump("webhook-id: abc\r\nno blank line").is_ok());
}

TEST(Webhook, BodyCarriesTypeTimestampAndData) {
  auto rs = parse_rules(std::string("[[webhooks]]\nname = \"ops\"\nurl = \"https://x\"\nsecret = \"") +
                            kSecret + "\"\n[[rules]]\nname = \"r\"\nseverity = \"critical\"\nwebhooks = \"ops\"\n",
                        "rules.toml");
  ASSERT_TRUE(rs.is_ok());
  Score s = make_score(0, true);
  Event e;
  e.rule = &rs->rules[0];
  e.alert_id = "id-1";
  e.score = &s;
  e.consecutive = 1;
  EXPECT_EQ(build_body(e, window_end(0)),
            R"({"type":"anomaly.detected","timestamp":"2026-01-05T10:05:00.000Z","data":{)"
            R"("alert_id":"id-1","rule":"r","severity":"critical","tenant":"acme","device":"meter-001",)"
            R"("metric":"voltage","start":"2026-01-05T10:00:00.000Z","end":"2026-01-05T10:05:00.000Z",)"
            R"("score":0.9,"anomaly":true,"label":"spike","model":"acme/meter-001/voltage@1",)"
            R"("consecutive":1,"explanation":[{"feature":"max","value":251.2,"baseline":231.4,"z":9.7}]}})");
}

TEST(HttpClient, RetryAfterSecondsAndHttpDate) {
  EXPECT_EQ(parse_retry_after(" 7 ", 0), 7 * kNsPerSec);
  TimeNs now = *parse_rfc3339("2026-01-05T10:00:00Z");
  EXPECT_EQ(parse_retry_after("Mon, 05 Jan 2026 10:00:30 GMT", now), 30 * kNsPerSec);
  EXPECT_EQ(parse_retry_after("Mon, 05 Jan 2026 09:00:00 GMT", now), 0);
  EXPECT_FALSE(parse_retry_after("soon", now).has_value());
  EXPECT_FALSE(parse_retry_after("-3", now).has_value());
}
