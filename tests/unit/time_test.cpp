#include "ep/time.h"

#include <gtest/gtest.h>

using namespace ep;

TEST(Rfc3339, ParsesUtcWithMilliseconds) {
  auto t = parse_rfc3339("2026-01-05T10:00:00.123Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(format_rfc3339(*t), "2026-01-05T10:00:00.123Z");
  EXPECT_EQ(*t, 1767607200123000000LL);
}

TEST(Rfc3339, AppliesOffsetsAndKeepsNanoseconds) {
  auto t = parse_rfc3339("2026-01-05T12:30:00.123456789+02:30");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t % kNsPerSec, 123456789);
  EXPECT_EQ(format_rfc3339(*t), "2026-01-05T10:00:00.123Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-01-01T00:00:00-01:00")), "2026-01-01T01:00:00.000Z");
}

TEST(Rfc3339, RejectsMalformedInput) {
  for (const char* bad : {"", "2026-01-05", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                          "2026-01-05T24:00:00Z", "2026-01-05T10:00:00", "2026-01-05T10:00:00.Z",
                          "2026-01-05T10:00:00.1234567890Z", "2026-01-05T10:00:00Zjunk",
                          "2026-01-05T10:00:00+0200", "x026-01-05T10:00:00Z"})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

TEST(Rfc3339, LenientModesForCommandLineAndCsv) {
  EXPECT_TRUE(parse_rfc3339("2026-01-05 10:00:00", {.assume_utc = true}));
  EXPECT_EQ(*parse_rfc3339("2026-01-05", {.allow_date_only = true}), 1767571200LL * kNsPerSec);
  EXPECT_TRUE(parse_rfc3339("2024-02-29T00:00:00Z"));  // leap day
}

TEST(Rfc3339, FormatsBeforeEpochAndFarFuture) {
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2262-04-10T23:59:59.999Z")), "2262-04-10T23:59:59.999Z");
  // Beyond the int64-nanosecond range: rejected, never wrapped around.
  EXPECT_FALSE(parse_rfc3339("2999-12-31T23:59:59.999Z"));
  EXPECT_FALSE(parse_rfc3339("1600-01-01T00:00:00Z"));
}

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(*parse_duration("300s"), 300 * kNsPerSec);
  EXPECT_EQ(*parse_duration("5m"), 300 * kNsPerSec);
  EXPECT_EQ(*parse_duration("24h"), 86400 * kNsPerSec);
  EXPECT_EQ(*parse_duration("7d"), 7 * 86400 * kNsPerSec);
  EXPECT_EQ(*parse_duration("250ms"), 250 * kNsPerMs);
  EXPECT_EQ(*parse_duration("1.5s"), 1500 * kNsPerMs);
  EXPECT_FALSE(parse_duration("5x"));
  EXPECT_FALSE(parse_duration("s"));
  // At most 100 years, so now + a duration cannot overflow int64 nanoseconds.
  EXPECT_EQ(*parse_duration("36500d"), kMaxDuration);
  EXPECT_FALSE(parse_duration("36501d"));
  EXPECT_FALSE(parse_duration("15000w"));
  EXPECT_FALSE(parse_duration("9999999999999"));
  EXPECT_EQ(format_duration(300 * kNsPerSec), "5m");
}

TEST(SecondsToNs, RefusesWhatInt64NanosecondsCannotHold) {
  EXPECT_EQ(*seconds_to_ns(1767571200), 1767571200LL * kNsPerSec);
  EXPECT_EQ(*seconds_to_ns(-kMaxSeconds), -kMaxSeconds * kNsPerSec);
  EXPECT_EQ(*seconds_to_ns(kMaxSeconds), kMaxSeconds * kNsPerSec);
  // 9,223,372,037 s * 1e9 is beyond INT64_MAX: refused, never wrapped.
  EXPECT_FALSE(seconds_to_ns(kMaxSeconds + 1));
  EXPECT_FALSE(seconds_to_ns(-kMaxSeconds - 1));
  EXPECT_FALSE(seconds_to_ns(9223372037));
  EXPECT_FALSE(seconds_to_ns(INT64_MAX));
  EXPECT_FALSE(seconds_to_ns(INT64_MIN));
}
