#pragma once
// The from-scratch reference for the rollup tables (migration 0006): a plain SQL GROUP BY
// over datapoints per UTC minute, hour and day, compared row by row (every column, both
// directions) with rollups_1m/1h/1d. Written independently of ep-load's incremental
// code and of `ep-admin rollup rebuild`.
#include <string>

#include "pg_fixture.h"

namespace eptest {

struct RollupLevel {
  const char* table;
  const char* unit;
};
inline constexpr RollupLevel kRollupLevels[] = {{"rollups_1m", "minute"}, {"rollups_1h", "hour"}, {"rollups_1d", "day"}};

// SELECT of the reference rows of one level, restricted by `where` (over datapoints
// columns, e.g. "ts >= '2026-01-05'"), in the column order of the rollup tables.
inline std::string rollup_reference(const RollupLevel& l, const std::string& where = "true") {
  return std::string("SELECT tenant_id, metric_id, date_trunc('") + l.unit +
         "', ts, 'UTC') AS bucket, count(*)::int8 AS n, min(value) AS min, max(value) AS max,"
         " sum(value::text::numeric) AS sum, sum(value::text::numeric * value::text::numeric) AS sumsq,"
         " min(ts) AS first_ts, (array_agg(value ORDER BY ts))[1] AS first_value, max(ts) AS last_ts,"
         " (array_agg(value ORDER BY ts DESC))[1] AS last_value FROM datapoints WHERE " + where + " GROUP BY 1, 2, 3";
}

// Rows that differ between the rollup tables and the reference (0 = equal), counting
// buckets of the reference restricted by `where` and table rows restricted by
// `bucket_where` (over the rollup columns).
inline std::int64_t rollup_mismatches(ep::pg::Conn& c, const std::string& where = "true",
                                      const std::string& bucket_where = "true") {
  if (!c.run("SET extra_float_digits = 1")) return -1;
  std::int64_t bad = 0;
  for (const auto& l : kRollupLevels) {
    std::string ref = rollup_reference(l, where);
    std::string tab = std::string("SELECT * FROM ") + l.table + " WHERE " + bucket_where;
    std::int64_t n = count(c, "SELECT count(*) FROM ((" + ref + ") EXCEPT (" + tab + ")) a") +
                     count(c, "SELECT count(*) FROM ((" + tab + ") EXCEPT (" + ref + ")) b");
    bad += n;
  }
  return bad;
}

// Every row of the three tables as text (sum and sumsq with their scale), in key order.
inline std::string rollup_snapshot(ep::pg::Conn& c) {
  std::string s;
  for (const auto& l : kRollupLevels) {
    auto r = c.exec(std::string("SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY tenant_id, metric_id, bucket), '')"
                                " FROM ") + l.table + " t");
    if (!r) {
      ADD_FAILURE() << r.status().message();
      return "";
    }
    s += std::string(l.table) + "\n" + r->str(0, 0) + "\n";
  }
  return s;
}

}  // namespace eptest
