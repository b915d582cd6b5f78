#pragma once
// ep-features configuration: the window specification and everything the extractor
// needs, independent of the command line so tests build it directly.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::features {

// "--window 300s" (time) or "--window 32pts" (count).
struct Extent {
  bool count = false;
  TimeNs duration = 0;      // time: ns
  std::int64_t points = 0;  // count: points
  bool operator==(const Extent&) const = default;
};
// Parses "300s", "5m", "24h" (time) or "32pts" / "32pt" (count).
Result<Extent> parse_extent(std::string_view s);
std::string format_extent(const Extent& e);

enum class Season { kOff, kDay, kWeek };
Result<Season> parse_season(std::string_view s);

struct Options {
  Extent window{false, 300 * kNsPerSec, 0};
  Extent hop{};               // default: same as window (tumbling)
  TimeNs lateness = 0;        // out-of-order tolerance, event time
  std::optional<TimeNs> interval;  // expected sampling interval; inferred when absent
  Season season = Season::kWeek;
  TimeNs season_bucket = 3600 * kNsPerSec;
  // Windows without points emitted inside one gap of a series (time windows only);
  // beyond that the gap is skipped (counted in the summary).
  std::int64_t max_empty = 288;
  // Points held per series before further points are dropped (bounds memory
  // against a burst; counted as "overflow").
  std::int64_t max_buffer = 1'000'000;
  // Time windows not wholly inside [complete_from, complete_to) are computed but not
  // written (counted as partial): a --db range cuts its first window, and its last one
  // is still filling. Default: every window is written.
  TimeNs complete_from = INT64_MIN, complete_to = INT64_MAX;

  // Fills defaults (hop = window) and checks consistency. Errors are usage errors.
  Status finalize();
  bool count_mode() const { return window.count; }
};

}  // namespace ep::features
