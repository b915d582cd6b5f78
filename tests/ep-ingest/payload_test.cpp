// The payload and CSV validators (pure functions): one test per bad-input class.
#include "payload.h"

#include <gtest/gtest.h>

#include "batch.h"
#include "ep/crypto.h"
#include "ep/json.h"
#include "ep/records.h"

namespace ep::ingest {
namespace {

constexpr TimeNs kNow = 1'764'000'000LL * kNsPerSec;  // 2025-11-24T16:00:00Z

std::string body(const std::string& metrics, const std::string& device = R"("device_external_id":"meter-001",)") {
  return "{" + device + R"("metrics":[)" + metrics + "]}";
}
const std::string kTs = "2025-11-24T15:59:00Z";
std::string metric(const std::string& value = "229.5", const std::string& extra = "") {
  return R"({"name":"voltage","ts":")" + kTs + R"(","value":)" + value + extra + "}";
}

struct Bad {
  std::string input;
  RejectKind kind;
  std::string detail;
};

Status parse(const std::string& s, Payload& p, Limits l = {}) { return parse_payload(s, l, kNow, p); }

TEST(ParsePayload, SeedPayloadParses) {
  Payload p;
  std::string s = R"({"device_external_id":"meter-001","metrics":[{"name":"voltage","ts":"2025-11-24T15:45:00Z","value":229.5,"unit":"V"}]})";
  ASSERT_TRUE(parse(s, p).is_ok());
  EXPECT_EQ(p.device, "meter-001");
  ASSERT_EQ(p.points.size(), 1u);
  EXPECT_EQ(p.points[0].metric, "voltage");
  EXPECT_EQ(p.points[0].value, 229.5);
  EXPECT_EQ(p.points[0].unit, "V");
  EXPECT_EQ(p.points[0].ts, *parse_rfc3339("2025-11-24T15:45:00Z"));
}

// An all-ASCII body skips the per-character UTF-8 check; any other byte brings it back:
// valid UTF-8 passes through, a broken sequence after a long ASCII stretch is refused.
TEST(ParsePayload, Utf8IsCheckedWhereverABodyIsNotAllAscii) {
  Payload p;
  std::string ok = body(metric("21.5", R"(,"unit":"\u00b0C")") + "," + metric("22", ",\"unit\":\"\xC2\xB0" "C\""));
  ASSERT_TRUE(parse(ok, p).is_ok()) << parse(ok, p).message();
  ASSERT_EQ(p.points.size(), 2u);
  EXPECT_EQ(p.points[0].unit, "\xC2\xB0" "C");
  EXPECT_EQ(p.points[1].unit, "\xC2\xB0" "C");
  std::string bad = body(metric() + "," + metric("1", ",\"unit\":\"\xC3(\""));
  Status s = parse(bad, p);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(p.reject, RejectKind::kInvalidJson);
  EXPECT_NE(s.message().find("Invalid encoding in string"), std::string::npos) << s.message();
}

TEST(ParsePayload, UnknownFieldsAreIgnoredAtAnyDepth) {
  Payload p;
  std::string s = R"({"x":{"metrics":[1,{"a":[]}]},"device_external_id":"d","metrics":[{"name":"n","extra":[{"value":"no"}],"ts":")" +
                  kTs + R"(","value":-1e3,"unit":null}],"y":null})";
  ASSERT_TRUE(parse(s, p).is_ok()) << parse(s, p).message();
  EXPECT_EQ(p.points[0].value, -1000);
  EXPECT_TRUE(p.points[0].unit.empty());
}

// An unknown field nested to kMaxJsonDepth (the root object is level 1) is skipped; one
// level more is invalid JSON naming the limit, and deep hostile bodies never recurse.
TEST(ParsePayload, NestingIsBoundedAtTheSharedLimit) {
  auto nested = [](int levels) {
    return "{\"x\":" + std::string(static_cast<std::size_t>(levels - 1), '[') +
           std::string(static_cast<std::size_t>(levels - 1), ']') + "," +
           body(metric()).substr(1);
  };
  Payload p;
  Status ok = parse(nested(kMaxJsonDepth), p);
  ASSERT_TRUE(ok.is_ok()) << ok.message();
  EXPECT_EQ(p.points.size(), 1u);
  const std::string too_deep = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  Status s = parse(nested(kMaxJsonDepth + 1), p);
  EXPECT_EQ(s.message(), "invalid JSON at byte " + std::to_string(5 + kMaxJsonDepth - 1) + ": " + too_deep);
  EXPECT_EQ(p.reject, RejectKind::kInvalidJson);
  EXPECT_TRUE(p.points.empty());
  Limits big;
  big.max_body_bytes = 4 << 20;
  std::string keys;
  for (int i = 0; i < 50'000; ++i) keys += "{\"a\":";
  for (const std::string& hostile : {keys, "{\"x\":" + std::string(100'000, '[')}) {
    s = parse(hostile, p, big);
    EXPECT_NE(s.message().find(too_deep), std::string::npos) << s.message();
    EXPECT_EQ(p.reject, RejectKind::kInvalidJson);
  }
  // A root array is refused at its first level, before any depth builds up.
  EXPECT_EQ(parse(std::string(200'000, '['), p, big).message(), "payload: not a JSON object");
}

TEST(ParsePayload, EscapedStringsAreDecoded) {
  Payload p;
  std::string s = R"({"device_external_id":"d\u002d1","metrics":[{"name":"t","ts":")" + kTs +
                  R"(","value":1,"unit":"\u00b0C"}]})";
  ASSERT_TRUE(parse(s, p).is_ok());
  EXPECT_EQ(p.device, "d-1");
  EXPECT_EQ(p.points[0].unit, "\xC2\xB0" "C");
}

TEST(ParsePayload, AnyOffsetAndNanosecondsAreAccepted) {
  Payload p;
  std::string s = R"({"device_external_id":"d","metrics":[{"name":"t","ts":"2025-11-24T17:59:00.123456789+02:00","value":1}]})";
  ASSERT_TRUE(parse(s, p).is_ok());
  EXPECT_EQ(p.points[0].ts, *parse_rfc3339("2025-11-24T15:59:00.123456789Z"));
}

TEST(ParsePayload, EachBadInputClassIsRejectedNamingTheField) {
  Limits small;
  small.max_points = 3;
  small.max_body_bytes = 4096;
  std::vector<Bad> cases = {
      {"", RejectKind::kInvalidJson, "invalid JSON at byte 0: The document is empty."},
      {"{\"device_external_id\":\"d\",", RejectKind::kInvalidJson,
       "invalid JSON at byte 26: Missing a name for object member."},
      {body(metric()) + "x", RejectKind::kInvalidJson,
       "invalid JSON at byte 107: The document root must not be followed by other values."},
      {std::string("{\"a\":\"\xff\"}"), RejectKind::kInvalidJson,
       "invalid JSON at byte 6: Invalid encoding in string."},
      {std::string("{}\0", 3), RejectKind::kInvalidJson, "invalid JSON at byte 2: NUL byte"},
      {"[]", RejectKind::kInvalidPayload, "payload: not a JSON object"},
      {"42", RejectKind::kInvalidPayload, "payload: not a JSON object"},
      {R"({"metrics":[]})", RejectKind::kInvalidPayload, "device_external_id: required"},
      {R"({"device_external_id":"d"})", RejectKind::kInvalidPayload, "metrics: required"},
      {R"({"device_external_id":"d","metrics":[]})", RejectKind::kInvalidPayload, "metrics: empty"},
      {R"({"device_external_id":"d","metrics":{}})", RejectKind::kInvalidPayload, "metrics: not an array"},
      {R"({"device_external_id":7,"metrics":[]})", RejectKind::kInvalidPayload, "device_external_id: not a string"},
      {R"({"device_external_id":"a b","metrics":[]})", RejectKind::kInvalidPayload,
       "device_external_id: invalid character (allowed: A-Z a-z 0-9 . _ : / -)"},
      {R"({"device_external_id":"","metrics":[]})", RejectKind::kInvalidPayload, "device_external_id: empty"},
      {"{\"device_external_id\":\"" + std::string(129, 'a') + "\",\"metrics\":[]}", RejectKind::kInvalidPayload,
       "device_external_id: longer than 128 bytes"},
      {R"({"device_external_id":"d","device_external_id":"e","metrics":[]})", RejectKind::kInvalidPayload,
       "device_external_id: duplicate field"},
      {body("1"), RejectKind::kInvalidPayload, "metrics[0]: not an object"},
      {body(metric() + ",[]"), RejectKind::kInvalidPayload, "metrics[1]: not an object"},
      {body(R"({"ts":")" + kTs + R"(","value":1})"), RejectKind::kInvalidPayload, "metrics[0].name: required"},
      {body(R"({"name":"v","value":1})"), RejectKind::kInvalidPayload, "metrics[0].ts: required"},
      {body(R"({"name":"v","ts":")" + kTs + R"("})"), RejectKind::kInvalidPayload, "metrics[0].value: required"},
      {body(R"({"name":"v/ü","ts":")" + kTs + R"(","value":1})"), RejectKind::kInvalidPayload,
       "metrics[0].name: invalid character (allowed: A-Z a-z 0-9 . _ : / -)"},
      {body(R"({"name":5,"ts":")" + kTs + R"(","value":1})"), RejectKind::kInvalidPayload, "metrics[0].name: not a string"},
      {body(metric() + "," + metric("NaN")), RejectKind::kInvalidPayload, "metrics[1].value: not a finite number"},
      {body(metric("-Infinity")), RejectKind::kInvalidPayload, "metrics[0].value: not a finite number"},
      {body(metric("1e999")), RejectKind::kInvalidPayload, "metrics[0].value: not a finite number"},
      {body(metric("\"229.5\"")), RejectKind::kInvalidPayload, "metrics[0].value: not a number"},
      {body(metric("null")), RejectKind::kInvalidPayload, "metrics[0].value: not a number"},
      {body(metric("true")), RejectKind::kInvalidPayload, "metrics[0].value: not a number"},
      {body(metric("[1]")), RejectKind::kInvalidPayload, "metrics[0].value: not a number"},
      {body(metric("1", R"(,"value":2)")), RejectKind::kInvalidPayload, "metrics[0].value: duplicate field"},
      {body(R"({"name":"v","ts":"2025-11-24 15:59:00","value":1})"), RejectKind::kInvalidPayload,
       "metrics[0].ts: not an RFC 3339 timestamp"},
      {body(R"({"name":"v","ts":"2025-02-30T00:00:00Z","value":1})"), RejectKind::kInvalidPayload,
       "metrics[0].ts: not an RFC 3339 timestamp"},
      {body(R"({"name":"v","ts":1764000000,"value":1})"), RejectKind::kInvalidPayload, "metrics[0].ts: a number needs its unit (?precision=s|ms|us|ns, or an RFC 3339 string)"},
      {body(R"({"name":"v","ts":"2025-11-17T15:59:59Z","value":1})"), RejectKind::kInvalidPayload,
       "metrics[0].ts: too far in the past (use --no-time-bounds for backfill)"},
      {body(R"({"name":"v","ts":"2025-11-24T16:05:01Z","value":1})"), RejectKind::kInvalidPayload,
       "metrics[0].ts: too far in the future"},
      {body(metric("1", R"(,"unit":"12345678901234567")")), RejectKind::kInvalidPayload,
       "metrics[0].unit: longer than 16 bytes"},
      {body(metric("1", R"(,"unit":3)")), RejectKind::kInvalidPayload, "metrics[0].unit: not a string"},
      {body(metric() + "," + metric() + "," + metric() + "," + metric()), RejectKind::kTooLarge,
       "metrics: more than 3 points"},
      {std::string(4097, ' '), RejectKind::kTooLarge, "body: larger than 4096 bytes"},
  };
  for (const auto& c : cases) {
    Payload p;
    Status s = parse(c.input, p, small);
    EXPECT_FALSE(s.is_ok()) << c.input;
    EXPECT_EQ(s.code(), Code::kData) << c.input;
    EXPECT_EQ(s.message(), c.detail) << c.input;
    EXPECT_EQ(p.reject, c.kind) << c.input << " -> " << s.message();
    EXPECT_TRUE(p.points.empty());
  }
}

TEST(ParsePayload, TimeBoundsCanBeTurnedOffAndMoved) {
  Payload p;
  Limits l;
  l.time_bounds = false;
  std::string s = body(R"({"name":"v","ts":"1999-01-01T00:00:00Z","value":1})");
  EXPECT_TRUE(parse(s, p, l).is_ok());
  l.time_bounds = true;
  l.max_age = 365LL * 86400 * 30 * kNsPerSec;
  EXPECT_TRUE(parse(s, p, l).is_ok());
}

TEST(ParsePayload, ReusingThePayloadObjectGivesIndependentResults) {
  Payload p;
  ASSERT_TRUE(parse(body(metric("1") + "," + metric("2")), p).is_ok());
  ASSERT_TRUE(parse(body(metric("3"), R"("device_external_id":"other",)"), p).is_ok());
  EXPECT_EQ(p.device, "other");
  ASSERT_EQ(p.points.size(), 1u);
  EXPECT_EQ(p.points[0].value, 3);
}

// The record is written by hand for speed: it must stay byte for byte what RapidJSON's
// Writer writes (the same keys, escapes and number formatting).
TEST(WriteBatch, BytesEqualRapidJsonsWriterForHardStringsAndNumbers) {
  const double values[] = {229.5, -0.25, 0.0, -0.0, 1e300, -1.7976931348623157e308, 5e-324, 0.1,
                           123456789012345678.0, 1e21, 1e-7, 3.0, 2.5e-5};
  std::string odd = "a\"b\\c\x01\x1f\n\t\r\b\f/";
  odd += '\0';  // a NUL too
  const std::string units[] = {"", "V", "\xc2\xb0" "C", odd, "\x7f"};
  std::vector<PayloadPoint> points;
  std::vector<std::string> names = {"m.a", "m:b/c", "m-d_e"};
  for (size_t i = 0; i < std::size(values); ++i)
    points.push_back(PayloadPoint{names[i % names.size()], kNow + static_cast<TimeNs>(i / 3) * 1'000'000,
                                  values[i], units[i % std::size(units)]});
  std::string raw = "{\"x\":\"\\u0000 \x02 \xe2\x82\xac\"}\n\"tail\\";
  raw += '\0';
  BatchMeta meta{"0192-ab", "acme", "dev/1", "http", kNow, {}, {}, false};
  std::string fast;
  write_batch(fast, meta, points, raw);

  // The reference: ep::write_record, through RapidJSON's Writer.
  Batch ref{std::string(meta.batch_id), std::string(meta.tenant), std::string(meta.device),
            std::string(meta.source), meta.received_at, crypto::sha256_hex(raw), {}, raw, std::nullopt};
  for (const auto& p : points) ref.points.push_back({std::string(p.metric), p.ts, p.value, std::string(p.unit)});
  JsonWriter w;
  write_record(w, ref);
  std::string expected(w.view());
  EXPECT_EQ(fast, expected);

  // With a key: the same record with "idempotency_key" (escaped the same way) after "sha256".
  meta.idempotency_key = "key \"with\" \\ quotes";
  std::string keyed;
  write_batch(keyed, meta, points, raw);
  JsonWriter k;
  k.start_object();
  k.kv("idempotency_key", meta.idempotency_key);
  k.end_object();
  std::string member(k.view().substr(1, k.view().size() - 2));
  expected.insert(expected.find(",\"points\":"), "," + member);
  EXPECT_EQ(keyed, expected);
}

TEST(WriteBatch, RecordHasTheContractShapeAndRoundTrips) {
  Payload p;
  std::string raw = body(metric("229.5", R"(,"unit":"V")") + "," + metric("-0.25"));
  ASSERT_TRUE(parse(raw, p).is_ok());
  std::string line;
  write_batch(line, BatchMeta{"0192", "acme", p.device, "http", kNow, {}, {}, false}, p.points, raw);
  EXPECT_EQ(line.rfind(R"({"kind":"batch","batch_id":"0192","tenant":"acme","device":"meter-001","source":"http",)"
                      R"("received_at":"2025-11-24T16:00:00.000Z","sha256":")", 0), 0u) << line;
  EXPECT_NE(line.find(R"("points":[{"metric":"voltage","ts":"2025-11-24T15:59:00.000Z","value":229.5,"unit":"V"},)"
                      R"({"metric":"voltage","ts":"2025-11-24T15:59:00.000Z","value":-0.25}],"raw":")"),
            std::string::npos) << line;
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(line, d).is_ok());
  Batch b;
  ASSERT_TRUE(parse_record(d, b).is_ok());
  EXPECT_EQ(b.raw, raw);
  EXPECT_EQ(b.sha256, crypto::sha256_hex(raw));
  ASSERT_EQ(b.points.size(), 2u);
  EXPECT_EQ(b.points[1].value, -0.25);
}

}  // namespace
}  // namespace ep::ingest

namespace ep::ingest {
namespace {

TEST(AppendJsonString, EscapesExactlyAsRapidJsonDoes) {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  all += "\xC2\xB0" "C \xE2\x82\xAC \xF0\x9F\x98\x80 / \\ \"";
  for (const std::string& s : {all, std::string(), std::string("plain"), std::string("\"\"\\\\\n")}) {
    JsonWriter w;
    w.str(s);
    std::string mine;
    append_json_string(mine, s);
    EXPECT_EQ(mine, std::string(w.view()));
  }
  // Every length around the 8-byte steps, with each kind of escape at every position
  // (and two of them), appended after text already in the string.
  for (size_t len = 0; len <= 27; ++len) {
    for (char esc : {'"', '\\', '\n', '\x01', '\x1f', '\x7f'}) {
      for (size_t at = 0; at < len; ++at) {
        std::string s(len, 'a');
        for (size_t k = 0; k < len; ++k) s[k] = static_cast<char>('a' + k % 26);
        s[at] = esc;
        if (at + 9 < len) s[at + 9] = '"';
        JsonWriter w;
        w.str(s);
        std::string mine = "prefix";
        append_json_string(mine, s);
        ASSERT_EQ(mine, "prefix" + std::string(w.view())) << "length " << len << ", escape at " << at;
      }
    }
  }
}

TEST(AppendRfc3339, MatchesTheReferenceFormatting) {
  // The hand-written fast path against snprintf, over 250 years of pseudo-random instants.
  std::uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 200000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    TimeNs t = static_cast<TimeNs>(x % (250ULL * 365 * 86400 * kNsPerSec)) - 50LL * 365 * 86400 * kNsPerSec;
    std::int64_t ms = t >= 0 ? t / kNsPerMs : -((-t + kNsPerMs - 1) / kNsPerMs);
    std::int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    std::int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int sod = static_cast<int>(secs - days * 86400);
    std::int64_t y;
    unsigned m, d;
    civil_from_days(days, y, m, d);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<long long>(y), m, d,
                  sod / 3600, sod / 60 % 60, sod % 60, static_cast<int>(ms - secs * 1000));
    ASSERT_EQ(format_rfc3339(t), buf) << t;
  }
}

}  // namespace
}  // namespace ep::ingest
