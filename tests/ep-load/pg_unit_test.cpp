// ep/pg.h helpers that need no server: COPY binary encoding, UUIDs, timestamps,
// SQLSTATE classes, retry with backoff (fake clock).
#include <gtest/gtest.h>

#include "ep/pg.h"

namespace {

using namespace ep;

TEST(PgCopyBinary, HeaderRowAndTrailer) {
  pg::CopyBinary c;
  c.header();
  EXPECT_EQ(c.data(), std::string("PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19));
  c.clear();
  c.row(2);
  c.int4(1);
  c.null();
  c.trailer();
  EXPECT_EQ(c.data(), std::string("\0\2\0\0\0\4\0\0\0\1\377\377\377\377\377\377", 16));
}

TEST(PgCopyBinary, TimestampIsMicrosecondsSince2000) {
  pg::CopyBinary c;
  c.timestamptz(946684800LL * kNsPerSec + 1500);  // 2000-01-01T00:00:00.0000015Z
  EXPECT_EQ(c.data(), std::string("\0\0\0\10\0\0\0\0\0\0\0\1", 12));
  c.clear();
  c.timestamptz(946684800LL * kNsPerSec - 1000);  // one µs before
  EXPECT_EQ(c.data(), std::string("\0\0\0\10\377\377\377\377\377\377\377\377", 12));
}

TEST(PgUuid, ParseAndFormat) {
  unsigned char b[16];
  ASSERT_TRUE(pg::parse_uuid("0190A0B0-0000-7000-8000-00000000000f", b));
  EXPECT_EQ(pg::format_uuid(b), "0190a0b0-0000-7000-8000-00000000000f");
  EXPECT_FALSE(pg::parse_uuid("0190a0b0-0000-7000-8000-00000000000", b));
  EXPECT_FALSE(pg::parse_uuid("0190a0b0-0000-7000-8000-00000000000fa", b));
  EXPECT_FALSE(pg::parse_uuid("zz90a0b0-0000-7000-8000-00000000000f", b));
}

TEST(PgTime, FormatAndParse) {
  EXPECT_EQ(pg::format_ts_us(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(pg::format_ts_us(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(pg::format_ts_us(1767607200123456789LL), "2026-01-05T10:00:00.123456Z");
  EXPECT_EQ(pg::parse_pg_ts("2026-01-05 10:00:00.123456+00"), 1767607200123456000LL);
  EXPECT_EQ(pg::parse_pg_ts("2026-01-05 10:00:00+00"), 1767607200000000000LL);
  EXPECT_FALSE(pg::parse_pg_ts("yesterday"));
}

TEST(PgErrors, ClassifiedBySqlstate) {
  EXPECT_EQ(pg::classify_sqlstate(""), Code::kUnavailable);
  EXPECT_EQ(pg::classify_sqlstate("08006"), Code::kUnavailable);
  EXPECT_EQ(pg::classify_sqlstate("57P01"), Code::kUnavailable);
  EXPECT_EQ(pg::classify_sqlstate("40001"), Code::kTemporary);
  EXPECT_EQ(pg::classify_sqlstate("40P01"), Code::kTemporary);
  EXPECT_EQ(pg::classify_sqlstate("23505"), Code::kConflict);
  EXPECT_EQ(pg::classify_sqlstate("23502"), Code::kData);
  EXPECT_EQ(pg::classify_sqlstate("42P01"), Code::kSoftware);
}

TEST(PgUrl, ResolveAndRedact) {
  ::setenv("DATABASE_URL", "postgresql://u:secret@h/db", 1);
  EXPECT_EQ(pg::resolve_url("postgresql:///x"), "postgresql:///x");
  EXPECT_EQ(pg::resolve_url(""), "postgresql://u:secret@h/db");
  ::unsetenv("DATABASE_URL");
  EXPECT_EQ(pg::resolve_url(""), "");
  EXPECT_EQ(pg::redact_url("postgresql://u:secret@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(pg::redact_url("host=h password=secret dbname=x"), "host=h password=*** dbname=x");
  std::string esc;
  pg::append_copy_text(esc, "a\tb\\c\nd");
  EXPECT_EQ(esc, "a\\tb\\\\c\\nd");
}

struct FakeTime {
  TimeNs now = 0;
  std::vector<TimeNs> sleeps;
  pg::RetryHooks hooks() {
    pg::RetryHooks h;
    h.now = [this] { return now; };
    h.sleep = [this](TimeNs d) {
      sleeps.push_back(d);
      now += d;
    };
    return h;
  }
};

TEST(PgRetry, RetriesUnavailableWithGrowingBackoffUntilMaxWait) {
  FakeTime t;
  pg::RetryPolicy p;
  p.initial_backoff = 100 * kNsPerMs;
  p.max_backoff = 1 * kNsPerSec;
  p.max_wait = 10 * kNsPerSec;
  int calls = 0;
  Status s = pg::retry(p, [&](int) { ++calls; return Status::unavailable("down"); }, t.hooks());
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_LE(t.now, p.max_wait);
  EXPECT_GT(t.now, p.max_wait - 2 * p.max_backoff);
  ASSERT_GE(t.sleeps.size(), 5u);
  EXPECT_GE(t.sleeps[0], 50 * kNsPerMs);
  EXPECT_LE(t.sleeps[0], 100 * kNsPerMs);
  for (TimeNs d : t.sleeps) EXPECT_LE(d, p.max_backoff);
  EXPECT_EQ(calls, static_cast<int>(t.sleeps.size()) + 1);
}

TEST(PgRetry, StopsAtOnceOnNonRetryableAndOnSuccess) {
  FakeTime t;
  int calls = 0;
  Status s = pg::retry({}, [&](int) { ++calls; return Status::software("bug"); }, t.hooks());
  EXPECT_EQ(s.code(), Code::kSoftware);
  EXPECT_EQ(calls, 1);
  calls = 0;
  s = pg::retry({}, [&](int attempt) { ++calls; return attempt < 3 ? Status::temporary("deadlock") : Status::ok(); },
                t.hooks());
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(calls, 3);
  pg::RetryPolicy once;
  once.max_attempts = 2;
  calls = 0;
  s = pg::retry(once, [&](int) { ++calls; return Status::unavailable("x"); }, t.hooks());
  EXPECT_EQ(calls, 2);
}

TEST(PgLockKey, StableAndDistinct) {
  EXPECT_EQ(pg::lock_key("edgepulse.schema.migrate"), pg::lock_key("edgepulse.schema.migrate"));
  EXPECT_NE(pg::lock_key("a"), pg::lock_key("b"));
}

}  // namespace
