#include "options.h"

#include <charconv>

namespace ep::features {

Result<Extent> parse_extent(std::string_view s) {
  for (std::string_view suffix : {"pts", "pt"}) {
    if (s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix) {
      std::string_view num = s.substr(0, s.size() - suffix.size());
      std::int64_t n = 0;
      auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
      if (ec != std::errc() || p != num.data() + num.size() || n <= 0)
        return Status::usage("'" + std::string(s) + "': expected a positive point count like 32pts");
      return Extent{true, 0, n};
    }
  }
  auto d = parse_duration(s);
  if (!d || *d <= 0)
    return Status::usage("'" + std::string(s) + "': expected a duration (300s, 5m, 1h) or a count (32pts)");
  return Extent{false, *d, 0};
}

std::string format_extent(const Extent& e) {
  return e.count ? std::to_string(e.points) + "pts" : format_duration(e.duration);
}

Result<Season> parse_season(std::string_view s) {
  if (s == "off") return Season::kOff;
  if (s == "day") return Season::kDay;
  if (s == "week") return Season::kWeek;
  return Status::usage("--season: expected off, day or week, got '" + std::string(s) + "'");
}

Status Options::finalize() {
  if (hop == Extent{}) hop = window;
  if (hop.count != window.count)
    return Status::usage("--hop: must be a count when --window is a count and a duration when it is a duration");
  if (!window.count && window.duration / hop.duration > 100000)
    return Status::usage("--hop: too small for --window (more than 100000 windows per point)");
  if (lateness < 0) return Status::usage("--lateness: must not be negative");
  if (interval && *interval <= 0) return Status::usage("--interval: must be positive");
  if (season != Season::kOff && season_bucket < 60 * kNsPerSec)
    return Status::usage("--season-bucket: must be at least 1m");
  if (max_empty < 0) return Status::usage("--max-empty: must not be negative");
  if (max_buffer < 1) return Status::usage("--max-buffer: must be positive");
  if (window.count && window.points > max_buffer)
    return Status::usage("--window: more points than --max-buffer");
  return Status::ok();
}

}  // namespace ep::features
