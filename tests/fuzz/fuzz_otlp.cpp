// libFuzzer target: ep-ingest's OTLP metrics parser (tools/ep-ingest/otlp.h), as binary
// protobuf when the first byte is even and as OTLP JSON when it is odd (the rest is the
// body). Properties: no crash or UB; an unreadable body is an error with a message; every
// sample the sink accepted obeys the series rules.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ep/records.h"
#include "otlp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const ep::ingest::SeriesMapping mapping;
  static const ep::ingest::Limits limits;
  static ep::ingest::SampleSink sink(mapping, limits);
  ep::http::Request req{boost::beast::http::verb::post, "/v1/metrics", 11};
  req.set(boost::beast::http::field::content_type, data[0] & 1 ? "application/json" : "application/x-protobuf");
  sink.reset(1767225600LL * ep::kNsPerSec);
  ep::Status st = ep::ingest::parse_otlp(req, body, sink);
  if (!st && st.message().empty()) std::abort();
  for (const auto& g : sink.groups()) {
    if (!ep::valid_name(g.device)) std::abort();
    for (const auto& p : g.points)
      if (*ep::metric_problem(p.metric, limits.max_metric_bytes) || !std::isfinite(p.value)) std::abort();
  }
  return 0;
}
