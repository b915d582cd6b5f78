// libFuzzer target: ep-ingest's Prometheus remote-write parser (tools/ep-ingest/remote_write.h)
// on a decoded (snappy undone) body. Properties: no crash or UB; an unreadable body is an
// error with a message; every sample the sink accepted obeys the series rules.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ep/records.h"
#include "remote_write.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  static const ep::ingest::SeriesMapping mapping;
  static const ep::ingest::Limits limits;
  static ep::ingest::SampleSink sink(mapping, limits);  // reused, as the server reuses it
  static ep::http::Request req{boost::beast::http::verb::post, "/api/v1/write", 11};
  req.set(boost::beast::http::field::content_type, "application/x-protobuf");
  sink.reset(1767225600LL * ep::kNsPerSec);
  ep::Status st = ep::ingest::parse_remote_write(req, body, sink);
  if (!st && st.message().empty()) std::abort();
  for (const auto& g : sink.groups()) {
    if (!ep::valid_name(g.device)) std::abort();
    for (const auto& p : g.points)
      if (*ep::metric_problem(p.metric, limits.max_metric_bytes) || !std::isfinite(p.value)) std::abort();
  }
  return 0;
}
