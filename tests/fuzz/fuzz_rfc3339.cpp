// libFuzzer target: the RFC 3339 and duration parsers (common/include/ep/time.h).
// Properties: no crash or UB on any input; what parses formats back to a timestamp
// that parses to the same instant (to the millisecond).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ep/time.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  for (int mode = 0; mode < 4; ++mode) {
    ep::ParseTimeOptions o;
    o.assume_utc = mode & 1;
    o.allow_date_only = mode & 2;
    auto t = ep::parse_rfc3339(s, o);
    if (!t) continue;
    std::string f = ep::format_rfc3339(*t);
    auto back = ep::parse_rfc3339(f);
    // Formatting truncates to ms toward -inf; parsing that must give it back exactly.
    ep::TimeNs ms = *t / ep::kNsPerMs * ep::kNsPerMs;
    if (ms > *t) ms -= ep::kNsPerMs;
    if (!back || *back != ms) std::abort();
    std::string appended = "x";
    ep::append_rfc3339(appended, *t);
    if (appended.substr(1) != f) std::abort();
  }
  if (auto d = ep::parse_duration(s)) (void)ep::format_duration(*d);
  return 0;
}
