// libFuzzer target: ep-ingest's payload parser (tools/ep-ingest/payload.h, docs/architecture.md §4).
// Properties: no crash or UB; an accepted payload obeys every rule it claims to check.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ep/records.h"
#include "payload.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  static ep::ingest::Payload payload;  // reused, as the server reuses it
  const ep::TimeNs now = 1767225600LL * ep::kNsPerSec;  // fixed: runs are reproducible
  for (bool bounds : {true, false}) {
    ep::ingest::Limits limits;
    limits.time_bounds = bounds;
    limits.max_points = 64;
    ep::Status st = ep::ingest::parse_payload(body, limits, now, payload);
    if (!st) {
      if (st.message().empty() || payload.reject == ep::ingest::RejectKind::kNone) std::abort();
      continue;
    }
    if (!ep::valid_name(payload.device) || payload.points.empty() || payload.points.size() > limits.max_points)
      std::abort();
    for (const auto& p : payload.points) {
      if (!ep::valid_name(p.metric) || !std::isfinite(p.value) || p.unit.size() > limits.max_unit_len) std::abort();
      if (bounds && (p.ts < now - limits.max_age || p.ts > now + limits.max_skew)) std::abort();
    }
  }
  return 0;
}
