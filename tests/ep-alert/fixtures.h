#pragma once
// Crafted score streams and rules files for ep-alert's tests.
#include <string>

#include "ep/records.h"
#include "ep/time.h"

namespace ep::alert::testing {

// 24-byte keys, as Standard Webhooks suggests.
inline const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
inline const char* kSecret2 = "whsec_c2Vjb25kLXNlY3JldC1rZXktMjQtYnl0ZXM=";

// Window i of a 5-minute tumbling stream starting 2026-01-05T10:00:00Z.
inline TimeNs window_end(int i) {
  return *parse_rfc3339("2026-01-05T10:00:00Z") + static_cast<TimeNs>(i + 1) * 300 * kNsPerSec;
}

inline Score make_score(int i, bool anomaly, double score = -1, std::string label = "",
                        std::string device = "meter-001", std::string tenant = "acme",
                        std::string metric = "voltage") {
  Score s;
  s.tenant = std::move(tenant);
  s.device = std::move(device);
  s.metric = std::move(metric);
  s.end = window_end(i);
  s.start = s.end - 300 * kNsPerSec;
  s.anomaly = anomaly;
  s.score = score >= 0 ? score : (anomaly ? 0.9 : 0.1);
  s.label = !label.empty() ? label : (anomaly ? "spike" : "normal");
  s.model = "acme/" + s.device + "/" + s.metric + "@1";
  s.explanation.push_back({"max", 251.2, 231.4, 9.7});
  return s;
}

inline std::string score_line(int i, bool anomaly, std::string device = "meter-001") {
  return to_ndjson(make_score(i, anomaly, -1, "", std::move(device))) + "\n";
}

// A stream from a pattern: 'A' anomalous window, '.' normal window.
inline std::string stream(const std::string& pattern, std::string device = "meter-001") {
  std::string s;
  for (size_t i = 0; i < pattern.size(); ++i)
    s += score_line(static_cast<int>(i), pattern[i] == 'A', device);
  return s;
}

}  // namespace ep::alert::testing
