// libFuzzer target: the collectd write_http JSON receiver's parser and the SampleSink it
// feeds (series identity): every accepted sample has a valid device and metric and a
// finite value, and every rejection has a reason.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ep/records.h"
#include "receivers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ep::ingest::SeriesMapping mapping;
  static ep::ingest::Limits limits = [] {
    ep::ingest::Limits l;
    l.time_bounds = false;
    return l;
  }();
  static ep::ingest::SampleSink sink(mapping, limits);
  sink.reset(1767225600LL * ep::kNsPerSec);
  ep::http::Request req;
  ep::Status st = ep::ingest::parse_collectd(req, std::string_view(reinterpret_cast<const char*>(data), size), sink);
  if (!st && st.message().empty()) std::abort();
  size_t n = 0;
  for (const auto& g : sink.groups()) {
    if (!ep::valid_name(g.device)) std::abort();
    for (const auto& p : g.points) {
      if (*ep::metric_problem(p.metric, limits.max_metric_bytes) || !std::isfinite(p.value)) std::abort();
      ++n;
    }
  }
  if (n != sink.accepted()) std::abort();
  if (sink.rejected() > 0 && sink.reasons().empty()) std::abort();
  return 0;
}
