#pragma once
// Deterministic batch records for the ep-load tests.
#include <string>
#include <vector>

#include "ep/records.h"

namespace eptest {

// n batches of `points` points each for `tenant`: batch i belongs to device
// "dev-(i % devices)", point k is metric "m(k % 4)" at 2026-01-05T10:00:00Z + i s +
// (k / 4) ms, so every (device, metric, ts) is unique across the whole set.
inline std::vector<std::string> make_batches(int n, int points, const std::string& tenant = "acme",
                                             int devices = 3, int first = 0) {
  std::vector<std::string> out;
  const ep::TimeNs base = 1767607200LL * ep::kNsPerSec;
  for (int i = first; i < first + n; ++i) {
    ep::Batch b;
    char id[40];
    std::snprintf(id, sizeof id, "0190a0b0-0000-7000-8000-%012d", i);
    b.batch_id = id;
    b.tenant = tenant;
    b.device = "dev-" + std::to_string(i % devices);
    b.source = "test";
    b.received_at = base + i * ep::kNsPerSec;
    b.sha256 = std::string(64, '0');
    for (int k = 0; k < points; ++k)
      b.points.push_back({"m" + std::to_string(k % 4), base + i * ep::kNsPerSec + (k / 4) * ep::kNsPerMs,
                          i + k / 1000.0, "V"});
    out.push_back(ep::to_ndjson(b));
  }
  return out;
}

inline std::string join(const std::vector<std::string>& lines, size_t from = 0, size_t to = SIZE_MAX) {
  std::string s;
  for (size_t i = from; i < lines.size() && i < to; ++i) s += lines[i] + "\n";
  return s;
}

}  // namespace eptest
