#pragma once
// Input records: one NDJSON line holds a "point" or a "batch" (expanded into its
// points). Parsing is in place with a reused arena, so a line costs no allocation;
// errors name the field ("points[3].ts: not an RFC 3339 timestamp").
#include <rapidjson/document.h>

#include <string>
#include <string_view>
#include <vector>
#include <memory>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::features {

class PointSink {
 public:
  virtual ~PointSink() = default;
  virtual void on_point(std::string_view tenant, std::string_view device, std::string_view metric,
                        TimeNs ts, double value) = 0;
};

// The fast path: a flat point record (no nesting, no escapes in strings) scanned in
// one pass without building a DOM. Returns false for anything else — batches, nested
// unknown fields, escapes, malformed input — which then takes the RapidJSON path, so
// every error message comes from one place. Exposed for tests.
struct FlatPoint {
  std::string_view tenant, device, metric;
  TimeNs ts = 0;
  double value = 0;
};
bool parse_flat_point(std::string_view line, FlatPoint& out);
// The last timestamp text parsed and its value: the points of one instant from a
// fleet (interleaved streams) repeat the same "ts", which is then not parsed again.
struct TsMemo {
  char text[40];
  size_t len = 0;  // 0: empty
  TimeNs ns = 0;
};
bool parse_flat_point(std::string_view line, FlatPoint& out, TsMemo* memo);

class RecordParser {
 public:
  // fast: try parse_flat_point first (off only in tests that compare both paths).
  explicit RecordParser(bool fast = true);
  // Parses one line and hands its points to sink. A batch with any bad point is
  // rejected whole (as ep-ingest does) and hands nothing on.
  Status parse(std::string_view line, PointSink& sink);

 private:
  static constexpr size_t kArenaBytes = 64 * 1024;
  bool fast_;
  TsMemo ts_memo_;
  std::vector<TimeNs> times_;  // a batch's parsed timestamps
  std::string text_;  // the line, copied for in-place parsing
  std::unique_ptr<char[]> arena_;
  rapidjson::MemoryPoolAllocator<> pool_;
  rapidjson::Document doc_;
};

}  // namespace ep::features
