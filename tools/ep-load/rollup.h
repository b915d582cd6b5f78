#pragma once
// Rollups (migration 0006): per-series count, min, max, sum, sum of squares and first/last
// point per UTC minute, hour and day, kept by ep-load in the transaction that inserts the
// points. The writer hands over exactly the points its transaction inserted, in primary
// key order; they are aggregated here into partials and merged into rollups_1m/1h/1d with
// INSERT … ON CONFLICT DO UPDATE, so a late point updates its bucket and a replay (which
// inserts nothing) changes nothing.
//
// Sums are exact (docs/schema.md, "Rollups"): a value counts as the shortest decimal
// that reads back as the same double — what Postgres' value::text::numeric gives — and
// decimals add without rounding, so `ep-admin rollup rebuild` (SQL over datapoints)
// reproduces every bit whatever order the points came in.
#include <cstdint>
#include <string>
#include <vector>

#include "ep/pg.h"
#include "ep/status.h"
#include "group.h"

namespace ep::load {

// An exact decimal sum: sum of c * 10^e over its terms, one term per exponent, with
// 128-bit magnitudes (positive and negative apart) that spill into a big number when
// they would overflow.
class DecimalSum {
 public:
  // Adds the shortest round-trip decimal of v (finite), or its square.
  void add_value(double v);
  void add_square(double v);
  // Adds c * 10^e (a value split by shortest_decimal), or its square.
  void add_decimal(std::int64_t c, int e, bool square);
  void merge(const DecimalSum& o);
  // The exact sum as a decimal numeral with as many fraction digits as the finest term
  // ("12.50", "-3", "0.000"): the text and scale Postgres' sum of the numerics gives.
  std::string str() const;

  struct TermView {
    int exp;
    unsigned __int128 pos, neg;
    bool spilled;
  };

 private:
  struct Term {
    int exp = 0;
    unsigned __int128 pos = 0, neg = 0;
    std::vector<std::uint32_t> pos_big, neg_big;  // spilled magnitudes (base 1e9 limbs)
  };
  void add(unsigned __int128 mag, bool negative, int exp);
  Term& term(int exp);
  std::vector<Term> terms_;
};

// Splits finite v into its shortest round-trip decimal: v = c * 10^e.
void shortest_decimal(double v, std::int64_t& c, int& e);

struct RollupPoint {
  Uuid tenant, metric;
  std::int64_t ts_us;
  double value;
};

struct Partial {
  Uuid tenant, metric;
  std::int64_t bucket_us = 0;
  std::int64_t n = 0;
  double min = 0, max = 0;
  DecimalSum sum, sumsq;
  std::int64_t first_ts_us = 0, last_ts_us = 0;
  double first_value = 0, last_value = 0;
  void merge(const Partial& o);  // o is of the same series
};

struct Rollups {
  std::vector<Partial> minute, hour, day;  // each in (tenant, metric, bucket) order
  bool empty() const { return minute.empty(); }
};

inline constexpr std::int64_t kUsPerMinute = 60'000'000, kUsPerHour = 3'600'000'000,
                              kUsPerDay = 86'400'000'000;

// Start of the UTC bucket of `width` microseconds that holds ts_us.
std::int64_t bucket_of(std::int64_t ts_us, std::int64_t width);

// Aggregates points given in (tenant, metric, ts) order.
Rollups aggregate(const std::vector<RollupPoint>& points);

// The session's staging table for partials (temporary, emptied at commit).
Status create_rollup_stage(pg::Conn& c);
// Merges the partials into rollups_1m/1h/1d inside the caller's transaction.
Status write_rollups(pg::Conn& c, const Rollups& r);

}  // namespace ep::load
