#include "ep/time.h"

#include <cstdint>

#include <chrono>
#include <cmath>
#include <cstdio>

namespace ep {
namespace {

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

bool leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

}  // namespace

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

std::string format_date(std::int64_t day) {
  std::int64_t y;
  unsigned m, d;
  civil_from_days(day, y, m, d);
  char buf[24];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

std::optional<TimeNs> parse_rfc3339(std::string_view s, ParseTimeOptions opts) {
  int year, mon, day, hh = 0, mm = 0, ss = 0;
  if (!digits(s, 0, 4, year) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mon) ||
      s[7] != '-' || !digits(s, 8, 2, day))
    return std::nullopt;
  if (mon < 1 || mon > 12 || day < 1 || static_cast<unsigned>(day) > days_in_month(year, mon))
    return std::nullopt;
  size_t p = 10;
  std::int64_t frac_ns = 0;
  std::int64_t offset_sec = 0;
  if (p == s.size()) {
    if (!opts.allow_date_only) return std::nullopt;
  } else {
    char sep = s[p];
    if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
    if (!digits(s, p + 1, 2, hh) || p + 3 >= s.size() || s[p + 3] != ':' ||
        !digits(s, p + 4, 2, mm) || p + 6 >= s.size() || s[p + 6] != ':' ||
        !digits(s, p + 7, 2, ss))
      return std::nullopt;
    // ss == 60 is a leap second; fold it into the next second as most systems do.
    if (hh > 23 || mm > 59 || ss > 60) return std::nullopt;
    p += 9;
    if (p < s.size() && s[p] == '.') {
      ++p;
      size_t start = p;
      std::int64_t scale = 100'000'000;
      while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
        if (p - start < 9) {
          frac_ns += (s[p] - '0') * scale;
          scale /= 10;
        }
        ++p;
      }
      if (p == start || p - start > 9) return std::nullopt;
    }
    if (p == s.size()) {
      if (!opts.assume_utc) return std::nullopt;
    } else if (s[p] == 'Z' || s[p] == 'z') {
      ++p;
    } else if (s[p] == '+' || s[p] == '-') {
      int oh, om;
      if (!digits(s, p + 1, 2, oh) || p + 3 >= s.size() || s[p + 3] != ':' ||
          !digits(s, p + 4, 2, om) || oh > 23 || om > 59)
        return std::nullopt;
      offset_sec = (oh * 3600 + om * 60) * (s[p] == '-' ? -1 : 1);
      p += 6;
    } else {
      return std::nullopt;
    }
    if (p != s.size()) return std::nullopt;
  }
  std::int64_t days = days_from_civil(year, mon, day);
  std::int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_sec;
  // int64 nanoseconds span 1677-09-21 .. 2262-04-11; outside that is not representable.
  auto ns = seconds_to_ns(secs);
  if (!ns) return std::nullopt;
  return *ns + frac_ns;
}

std::optional<TimeNs> parse_epoch_unit(std::string_view s, bool influx_v1) {
  if (s == "s") return kNsPerSec;
  if (s == "ms") return kNsPerMs;
  if (s == (influx_v1 ? "u" : "us")) return TimeNs{1000};
  if (s == (influx_v1 ? "n" : "ns")) return TimeNs{1};
  if (influx_v1 && s == "m") return 60 * kNsPerSec;
  if (influx_v1 && s == "h") return 3600 * kNsPerSec;
  return std::nullopt;
}

std::optional<TimeNs> epoch_to_ns(std::int64_t v, TimeNs unit_ns) {
  TimeNs out = 0;
  if (__builtin_mul_overflow(v, unit_ns, &out)) return std::nullopt;
  return out;
}

std::optional<TimeNs> epoch_to_ns(double v, TimeNs unit_ns) {
  double ns = v * static_cast<double>(unit_ns);
  if (!std::isfinite(ns) || std::fabs(ns) >= 9.2e18) return std::nullopt;
  return static_cast<TimeNs>(std::llround(ns));
}

std::optional<TimeNs> seconds_to_ns(std::int64_t secs) {
  if (secs > kMaxSeconds || secs < -kMaxSeconds) return std::nullopt;
  return secs * kNsPerSec;
}

void append_rfc3339(std::string& out, TimeNs t) {
  std::int64_t ms = t >= 0 ? t / kNsPerMs : -((-t + kNsPerMs - 1) / kNsPerMs);
  std::int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int msr = static_cast<int>(ms - secs * 1000);
  std::int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int sod = static_cast<int>(secs - days * 86400);
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  if (y < 0 || y > 9999) {
    char buf[40];
    int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ",
                          static_cast<long long>(y), m, d, sod / 3600, sod / 60 % 60, sod % 60, msr);
    out.append(buf, static_cast<size_t>(n));
    return;
  }
  // The common case by hand: snprintf dominated batch serialisation (ep-ingest).
  char buf[24];
  auto two = [&](int at, unsigned v) {
    buf[at] = static_cast<char>('0' + v / 10);
    buf[at + 1] = static_cast<char>('0' + v % 10);
  };
  auto yy = static_cast<unsigned>(y);
  two(0, yy / 100);
  two(2, yy % 100);
  buf[4] = '-';
  two(5, m);
  buf[7] = '-';
  two(8, d);
  buf[10] = 'T';
  two(11, static_cast<unsigned>(sod / 3600));
  buf[13] = ':';
  two(14, static_cast<unsigned>(sod / 60 % 60));
  buf[16] = ':';
  two(17, static_cast<unsigned>(sod % 60));
  buf[19] = '.';
  buf[20] = static_cast<char>('0' + msr / 100);
  two(21, static_cast<unsigned>(msr % 100));
  buf[23] = 'Z';
  out.append(buf, sizeof buf);
}

std::string format_rfc3339(TimeNs t) {
  std::string s;
  s.reserve(24);
  append_rfc3339(s, t);
  return s;
}

std::optional<TimeNs> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  size_t p = 0;
  double v = 0;
  bool any = false, dot = false;
  double scale = 1;
  for (; p < s.size(); ++p) {
    char c = s[p];
    if (c >= '0' && c <= '9') {
      any = true;
      if (dot) {
        scale /= 10;
        v += (c - '0') * scale;
      } else {
        v = v * 10 + (c - '0');
      }
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!any) return std::nullopt;
  std::string_view unit = s.substr(p);
  double mult;
  if (unit.empty() || unit == "s") mult = 1e9;
  else if (unit == "ms") mult = 1e6;
  else if (unit == "us") mult = 1e3;
  else if (unit == "m" || unit == "min") mult = 60e9;
  else if (unit == "h") mult = 3600e9;
  else if (unit == "d") mult = 86400e9;
  else if (unit == "w") mult = 7 * 86400e9;
  else return std::nullopt;
  double ns = v * mult;
  if (!std::isfinite(ns) || ns > static_cast<double>(kMaxDuration)) return std::nullopt;
  return static_cast<TimeNs>(std::llround(ns));
}

std::string format_duration(TimeNs d) {
  struct U { TimeNs ns; const char* suffix; };
  static constexpr U kUnits[] = {{86400 * kNsPerSec, "d"}, {3600 * kNsPerSec, "h"},
                                 {60 * kNsPerSec, "m"},    {kNsPerSec, "s"},
                                 {kNsPerMs, "ms"}};
  for (const auto& u : kUnits)
    if (d != 0 && d % u.ns == 0) return std::to_string(d / u.ns) + u.suffix;
  return std::to_string(d) + "ns";
}

TimeNs SystemClock::now() const { return now_ns(); }
const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

TimeNs now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TimeNs monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace ep
