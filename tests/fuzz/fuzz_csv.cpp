// libFuzzer target: ep-ingest's CSV line parser (`--stdin --format csv`).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ep/records.h"
#include "payload.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  static ep::ingest::CsvRow row;
  const ep::TimeNs now = 1767225600LL * ep::kNsPerSec;
  (void)ep::ingest::is_csv_header(line);
  for (bool bounds : {true, false}) {
    ep::ingest::Limits limits;
    limits.time_bounds = bounds;
    ep::Status st = ep::ingest::parse_csv_line(line, limits, now, row);
    if (!st) {
      if (st.message().empty()) std::abort();
      continue;
    }
    if (!ep::valid_name(row.device) || !ep::valid_name(row.metric) || !std::isfinite(row.value) ||
        row.unit.size() > limits.max_unit_len)
      std::abort();
  }
  return 0;
}
