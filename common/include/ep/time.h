#pragma once
// Time: nanoseconds since the Unix epoch (UTC) as int64, RFC 3339 in and out.
// Parsing is hand-rolled on purpose: strptime is locale- and TZ-dependent and slow,
// and no Debian library parses RFC 3339 with arbitrary offsets and ns digits.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ep {

using TimeNs = std::int64_t;  // ns since 1970-01-01T00:00:00Z
inline constexpr TimeNs kNsPerMs = 1'000'000;
inline constexpr TimeNs kNsPerSec = 1'000'000'000;
// Whole seconds that int64 nanoseconds can hold either side of the epoch (1677..2262).
inline constexpr std::int64_t kMaxSeconds = INT64_MAX / kNsPerSec - 1;

// Seconds since the epoch (or a duration in seconds) as TimeNs; nullopt when
// |secs| > kMaxSeconds, where secs * kNsPerSec would overflow. Every conversion of a
// parsed number of seconds goes through here.
std::optional<TimeNs> seconds_to_ns(std::int64_t secs);

// Epoch timestamps as numbers, in a unit the user names (never guessed): "s", "ms",
// "us", "ns"; with influx_v1, InfluxDB 1.x's "n", "u", "ms", "s", "m", "h" instead.
// Returns the nanoseconds per unit, nullopt for anything else.
std::optional<TimeNs> parse_epoch_unit(std::string_view s, bool influx_v1 = false);
// v units of unit_ns nanoseconds since the epoch; nullopt when it does not fit.
std::optional<TimeNs> epoch_to_ns(std::int64_t v, TimeNs unit_ns);
// The same for a fractional number (1767225600.25 s); nullopt when not finite or out of range.
std::optional<TimeNs> epoch_to_ns(double v, TimeNs unit_ns);

struct ParseTimeOptions {
  // Accept a missing offset ("2026-01-05 10:00:00") as UTC. RFC 3339 requires one;
  // command-line --from/--to and CSV imports allow leaving it out.
  bool assume_utc = false;
  // Accept a bare date ("2026-01-05") as midnight UTC.
  bool allow_date_only = false;
};

// Parses "YYYY-MM-DD[Tt ]HH:MM:SS[.f{1,9}](Z|z|±HH:MM)". Returns nullopt on any error.
std::optional<TimeNs> parse_rfc3339(std::string_view s, ParseTimeOptions opts = {});

// Formats as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC, milliseconds, truncated toward -inf).
std::string format_rfc3339(TimeNs t);
// Appends the same 24 characters to out (no allocation when out has capacity).
void append_rfc3339(std::string& out, TimeNs t);

// The longest duration anything accepts (100 years): now ± a duration, and a deadline
// plus one, never overflow int64 nanoseconds.
inline constexpr TimeNs kMaxDuration = kNsPerSec * 86400 * 36500;

// Durations: "300s", "5m", "24h", "7d", "250ms", "1w"; a bare number means seconds.
// nullopt beyond kMaxDuration.
std::optional<TimeNs> parse_duration(std::string_view s);
std::string format_duration(TimeNs d);

// Days since epoch for a civil date, and back (proleptic Gregorian).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d);
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d);
// The UTC day (days since epoch, rounded down) of an instant, and a day as "YYYY-MM-DD".
inline constexpr TimeNs kNsPerDay = 86400 * kNsPerSec;
inline std::int64_t day_of(TimeNs t) { return t >= 0 ? t / kNsPerDay : -((-t + kNsPerDay - 1) / kNsPerDay); }
std::string format_date(std::int64_t day);

// A clock behind an interface so tests can fake it (docs/conventions.md 4).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeNs now() const = 0;
};
class SystemClock final : public Clock {
 public:
  TimeNs now() const override;
  static const SystemClock& instance();
};
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimeNs t = 0) : t_(t) {}
  TimeNs now() const override { return t_; }
  void set(TimeNs t) { t_ = t; }
  void advance(TimeNs d) { t_ += d; }

 private:
  TimeNs t_;
};

// Wall clock now, and a monotonic clock for measuring durations.
TimeNs now_ns();
TimeNs monotonic_ns();

}  // namespace ep
