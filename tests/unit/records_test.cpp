#include "ep/records.h"

#include <gtest/gtest.h>

using namespace ep;

TEST(Records, PointRoundTripKeepsKindFirstAndMilliseconds) {
  Point p{"acme", "meter-001", "voltage", *parse_rfc3339("2026-01-05T09:59:59.000123Z"), 229.5, "V",
          "b1"};
  auto s = to_ndjson(p);
  EXPECT_EQ(s,
            R"({"kind":"point","tenant":"acme","device":"meter-001","metric":"voltage",)"
            R"("ts":"2026-01-05T09:59:59.000Z","value":229.5,"unit":"V","batch_id":"b1"})");
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(s, d).is_ok());
  EXPECT_EQ(kind_of(d), Kind::kPoint);
  Point q;
  ASSERT_TRUE(parse_record(d, q).is_ok());
  EXPECT_EQ(q.device, "meter-001");
  EXPECT_DOUBLE_EQ(q.value, 229.5);
}

TEST(Records, MissingFieldErrorNamesIt) {
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(R"({"kind":"point","tenant":"a","device":"d","ts":"2026-01-05T00:00:00Z","value":1})", d).is_ok());
  Point p;
  auto s = parse_record(d, p);
  EXPECT_EQ(s.message(), "metric: required");
}

TEST(Records, BatchPointErrorNamesIndex) {
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(R"({"kind":"batch","batch_id":"x","tenant":"a","device":"d","received_at":"2026-01-05T00:00:00Z","points":[{"metric":"m","ts":"2026-01-05T00:00:00Z","value":1},{"metric":"m","ts":"2026-01-05T00:00:00Z","value":"no"}]})", d).is_ok());
  Batch b;
  EXPECT_EQ(parse_record(d, b).message(), "points[1].value: not a finite number");
}

TEST(Records, WindowWritesStuckAsBoolean) {
  Window w{"t", "d", "m", 0, 300 * kNsPerSec, 3, 3, {{"mean", 1.5}, {"stuck", 1}}};
  auto s = to_ndjson(w);
  EXPECT_NE(s.find(R"("features":{"mean":1.5,"stuck":true})"), std::string::npos) << s;
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(s, d).is_ok());
  Window back;
  ASSERT_TRUE(parse_record(d, back).is_ok());
  EXPECT_EQ(*back.feature("stuck"), 1);
}

TEST(Records, ScoreOutsideUnitIntervalIsRejected) {
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(R"({"kind":"score","tenant":"a","device":"d","metric":"m","start":"2026-01-05T00:00:00Z","end":"2026-01-05T00:05:00Z","score":1.5,"anomaly":true})", d).is_ok());
  Score s;
  EXPECT_EQ(parse_record(d, s).message(), "score: not in [0,1]");
}

TEST(Records, InvalidJsonNamesOffset) {
  rapidjson::Document d;
  auto s = parse_json("{\"a\":", d);
  EXPECT_EQ(s.code(), Code::kData);
  EXPECT_NE(s.message().find("invalid JSON at byte"), std::string::npos);
}

TEST(Records, ValidName) {
  EXPECT_TRUE(valid_name("meter-001.a:b/c_d"));
  EXPECT_FALSE(valid_name(""));
  EXPECT_FALSE(valid_name("a b"));
  EXPECT_FALSE(valid_name(std::string(129, 'a')));
}

// Found by tests/fuzz/fuzz_records.cpp: a record parsed into an object that held an
// earlier line kept that line's optional fields.
TEST(Records, ReusedBatchForgetsTheOptionalFieldsOfTheLastLine) {
  rapidjson::Document d;
  Batch b;
  ASSERT_TRUE(parse_json(R"({"kind":"batch","batch_id":"x","tenant":"a","device":"d","source":"http","received_at":"2026-01-05T00:00:00Z","sha256":"ab","points":[],"raw":"{}"})", d).is_ok());
  ASSERT_TRUE(parse_record(d, b).is_ok());
  ASSERT_TRUE(parse_json(R"({"kind":"batch","batch_id":"y","tenant":"a","device":"d","received_at":"2026-01-05T00:00:00Z","points":[]})", d).is_ok());
  ASSERT_TRUE(parse_record(d, b).is_ok());
  EXPECT_EQ(b.source, "");
  EXPECT_EQ(b.sha256, "");
  EXPECT_FALSE(b.raw.has_value());
  Batch fresh;
  ASSERT_TRUE(parse_record(d, fresh).is_ok());
  EXPECT_EQ(to_ndjson(b), to_ndjson(fresh));
}

TEST(Records, ReusedAlertForgetsTheOptionalFieldsOfTheLastLine) {
  rapidjson::Document d;
  Alert a;
  ASSERT_TRUE(parse_json(R"({"kind":"alert","alert_id":"1","rule":"r","tenant":"t","device":"d","metric":"m","start":"2026-01-05T00:00:00Z","end":"2026-01-05T00:05:00Z","score":0.9,"label":"spike","webhook":"ops","status":"failed","type":"anomaly.detected","severity":"critical","error":"timeout"})", d).is_ok());
  ASSERT_TRUE(parse_record(d, a).is_ok());
  ASSERT_TRUE(parse_json(R"({"kind":"alert","alert_id":"2","rule":"r","tenant":"t","device":"d","metric":"m","end":"2026-01-05T00:10:00Z","score":0.8})", d).is_ok());
  ASSERT_TRUE(parse_record(d, a).is_ok());
  EXPECT_EQ(a.start, 0);
  for (const auto* f : {&a.label, &a.webhook, &a.status, &a.type, &a.severity, &a.error})
    EXPECT_EQ(*f, "");
  Alert fresh;
  ASSERT_TRUE(parse_record(d, fresh).is_ok());
  EXPECT_EQ(to_ndjson(a), to_ndjson(fresh));
}

TEST(ParseJson, ReusedDocumentRunsInConstantMemory) {
  // A tool parses every line of a stream into one Document: the pool must not keep
  // earlier lines (it did: 600 MB after a million windows).
  std::string line = R"({"kind":"window","tenant":"acme","device":"d","metric":"m","features":{)";
  for (int i = 0; i < 40; ++i) line += "\"f" + std::to_string(i) + "\":" + std::to_string(i) + ".5,";
  line += R"("last":1}})";
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(line, d).is_ok());
  const std::size_t one = d.GetAllocator().Size();
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(parse_json(line, d).is_ok());
  EXPECT_LE(d.GetAllocator().Size(), 2 * one + 65536);
  EXPECT_EQ(d["features"]["f39"].GetDouble(), 39.5);  // still the parsed line
}

// Found by tests/fuzz/fuzz_json_record.cpp: RapidJSON read 5e308 as infinity (then
// to_json wrote a truncated document) and, with full precision, as -8.7e-309; and its
// default mode read 5.555555555555555e38 one ulp off, so a record did not serialise back
// to the number it was read from.
TEST(ParseJson, NumbersOutOfDoubleRangeAreRejected) {
  rapidjson::Document d;
  for (const char* text : {R"({"big":5e308})", R"([-5e308])", R"([0.5e309])", "17976931348623159e292"}) {
    Status s = parse_json(text, d);
    EXPECT_EQ(s.code(), Code::kData) << text;
    EXPECT_NE(s.message().find("Number too big"), std::string::npos) << s.message();
    std::string copy(text);
    EXPECT_FALSE(parse_json_insitu(copy.data(), d).is_ok()) << text;
  }
  ASSERT_TRUE(parse_json("[1e-400, -4.9e-324]", d).is_ok());  // underflow rounds, as C does
  EXPECT_EQ(d[0].GetDouble(), 0.0);
  EXPECT_EQ(d[1].GetDouble(), -4.9e-324);
}

TEST(ParseJson, NumbersAreReadExactlyAndKeepTheirIntegerType) {
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(R"([5.555555555555555e38, 1.7976931348623157e308, 0.1, -0, 9223372036854775807, -9223372036854775808, 18446744073709551615, 18446744073709551616, 2.0])", d).is_ok());
  EXPECT_EQ(d[0].GetDouble(), 5.555555555555555e38);
  EXPECT_EQ(d[1].GetDouble(), 1.7976931348623157e308);
  EXPECT_EQ(d[2].GetDouble(), 0.1);
  EXPECT_TRUE(d[3].IsInt());
  EXPECT_TRUE(d[4].IsInt64());
  EXPECT_EQ(d[4].GetInt64(), INT64_MAX);
  EXPECT_EQ(d[5].GetInt64(), INT64_MIN);
  EXPECT_TRUE(d[6].IsUint64());
  EXPECT_EQ(d[6].GetUint64(), UINT64_MAX);
  EXPECT_TRUE(d[7].IsDouble());
  EXPECT_TRUE(d[8].IsDouble());
  EXPECT_EQ(to_json(d), "[5.555555555555555e38,1.7976931348623157e308,0.1,0,9223372036854775807,"
                        "-9223372036854775808,18446744073709551615,18446744073709553000.0,2.0]");
}

// Found by tests/fuzz/fuzz_records.cpp: an integral field such as a window's "n" given
// as 1e19 was cast to int64 out of range (undefined behaviour).
TEST(Records, IntegerFieldsOutsideInt64AreRejected) {
  rapidjson::Document d;
  Window w;
  for (const char* n : {"1e19", "9223372036854775808.0", "-1e300", "0.5"}) {
    std::string text = R"({"kind":"window","tenant":"t","device":"d","metric":"m","start":"2026-01-05T00:00:00Z","end":"2026-01-05T00:05:00Z","features":{},"n":)" + std::string(n) + "}";
    ASSERT_TRUE(parse_json(text, d).is_ok()) << text;
    EXPECT_EQ(parse_record(d, w).message(), "n: not an integer in the 64-bit range") << n;
  }
  ASSERT_TRUE(parse_json(R"({"kind":"window","tenant":"t","device":"d","metric":"m","start":"2026-01-05T00:00:00Z","end":"2026-01-05T00:05:00Z","features":{},"n":-9223372036854775808.0})", d).is_ok());
  ASSERT_TRUE(parse_record(d, w).is_ok());
  EXPECT_EQ(w.n, INT64_MIN);
}
