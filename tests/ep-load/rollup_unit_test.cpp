// ep-load's rollup aggregation without Postgres: exact decimal sums (the text and scale
// Postgres' sum of value::text::numeric gives), UTC buckets, first/last and merging.
#include <gtest/gtest.h>

#include "rollup.h"

namespace {

using ep::load::DecimalSum;

std::string sum_of(std::initializer_list<double> vs) {
  DecimalSum s;
  for (double v : vs) s.add_value(v);
  return s.str();
}

TEST(RollupDecimal, ShortestDecimalOfDoubles) {
  std::int64_t c;
  int e;
  ep::load::shortest_decimal(230.1, c, e);
  EXPECT_EQ(c, 2301);
  EXPECT_EQ(e, -1);
  ep::load::shortest_decimal(-1e22, c, e);
  EXPECT_EQ(c, -1);
  EXPECT_EQ(e, 22);
  ep::load::shortest_decimal(1.0 / 3, c, e);
  EXPECT_EQ(c, 3333333333333333);
  EXPECT_EQ(e, -16);
  ep::load::shortest_decimal(0.0, c, e);
  EXPECT_EQ(c, 0);
  EXPECT_EQ(e, 0);
}

TEST(RollupDecimal, SumsAreExactWithTheFinestScale) {
  EXPECT_EQ(sum_of({0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}), "1.0");
  EXPECT_EQ(sum_of({0.5, -0.75}), "-0.25");
  EXPECT_EQ(sum_of({1.25, -1.25}), "0.00");
  EXPECT_EQ(sum_of({230, 20}), "250");
  EXPECT_EQ(sum_of({1e22, 1}), "10000000000000000000001");
  EXPECT_EQ(sum_of({1e300, -1}), std::string(300, '9'));  // past 128 bits: big numbers
  EXPECT_EQ(sum_of({-1e300, 0.5}), "-" + std::string(299, '9') + "9.5");
  EXPECT_EQ(sum_of({1e-5, 2.5}), "2.50001");
  EXPECT_EQ(sum_of({-0.0}), "0");
  EXPECT_EQ(sum_of({}), "0");
  std::string tiny = sum_of({5e-324});
  EXPECT_EQ(tiny.size(), 326u);  // "0." + 323 zeros + "5"
  EXPECT_EQ(tiny.back(), '5');
  DecimalSum sq;
  sq.add_square(0.1);
  sq.add_square(-3);
  EXPECT_EQ(sq.str(), "9.01");
}

TEST(RollupDecimal, OverflowSpillsIntoBigNumbersExactly) {
  // 2^30 copies of one value by doubling: far past 128 bits for the squares.
  DecimalSum s, sq;
  s.add_value(-1.2345678901234567);
  sq.add_square(1.2345678901234567);
  for (int i = 0; i < 30; ++i) {
    DecimalSum a = s, b = sq;
    s.merge(a);
    sq.merge(b);
  }
  EXPECT_EQ(s.str(), "-1325607178.1929919822430208");
  EXPECT_EQ(sq.str(), "1636552057.11423121202070240953629394599936");
}

TEST(RollupAggregate, UtcBucketsFirstLastAndCoarserLevels) {
  ep::load::Uuid t, m1, m2;
  m1.b[15] = 1;
  m2.b[15] = 2;
  const std::int64_t day = 1767571200LL * 1000000;  // 2026-01-05T00:00:00Z
  std::vector<ep::load::RollupPoint> pts = {
      {t, m1, day - 1, 5},                                 // 2026-01-04T23:59:59.999999Z
      {t, m1, day, 1},                                     // next day, minute, hour
      {t, m1, day + 59'999'999, 3},                        // same minute
      {t, m1, day + 60'000'000, -2},                       // next minute, same hour
      {t, m2, day + 3'600'000'000LL, 7},                   // another series, next hour
  };
  auto r = ep::load::aggregate(pts);
  ASSERT_EQ(r.minute.size(), 4u);
  ASSERT_EQ(r.hour.size(), 3u);
  ASSERT_EQ(r.day.size(), 3u);
  EXPECT_EQ(r.minute[0].bucket_us, day - 60'000'000);
  EXPECT_EQ(r.minute[1].bucket_us, day);
  EXPECT_EQ(r.minute[1].n, 2);
  EXPECT_EQ(r.minute[1].sum.str(), "4");
  EXPECT_EQ(r.hour[1].n, 3);
  EXPECT_EQ(r.hour[1].min, -2);
  EXPECT_EQ(r.hour[1].max, 3);
  EXPECT_EQ(r.hour[1].first_value, 1);
  EXPECT_EQ(r.hour[1].last_value, -2);
  EXPECT_EQ(r.hour[1].sumsq.str(), "14");
  EXPECT_EQ(r.day[0].bucket_us, day - 86'400'000'000LL);
  EXPECT_EQ(r.day[1].bucket_us, day);
  EXPECT_EQ(r.day[2].bucket_us, day);
  EXPECT_TRUE(r.day[2].metric == m2);
  EXPECT_EQ(ep::load::bucket_of(-1, ep::load::kUsPerMinute), -60'000'000);
}

}  // namespace
