#pragma once
// Shared by the text format fuzz targets (fuzz_influx, fuzz_prom, fuzz_logfmt, fuzz_syslog,
// fuzz_csv_header): one line into a SampleSink, then the properties every parser promises.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ep/records.h"
#include "samples.h"

namespace ep::ingest::fuzz {

// Runs parse(line, sink) on a fresh sink and checks: an unreadable line has a message
// and adds nothing; every accepted sample has a valid device, a valid metric and a finite
// value; the rejected ones have reasons.
template <class Parse>
void check_line(const uint8_t* data, size_t size, Parse parse) {
  static Limits limits = [] {
    Limits l;
    l.time_bounds = false;
    return l;
  }();
  static SeriesMapping mapping = [] {
    SeriesMapping m;
    m.default_device = "fuzz-device";
    return m;
  }();
  static SampleSink sink(mapping, limits);
  sink.reset(1767225600LL * kNsPerSec);
  std::string_view line(reinterpret_cast<const char*>(data), size);
  Status st = parse(line, sink);
  if (!st && (st.message().empty() || sink.accepted() != 0)) std::abort();
  if (sink.rejected() > 0 && sink.reasons().empty()) std::abort();
  for (const auto& g : sink.groups()) {
    if (!valid_name(g.device)) std::abort();
    for (const auto& p : g.points)
      if (*metric_problem(p.metric, limits.max_metric_bytes) || !std::isfinite(p.value)) std::abort();
  }
}

}  // namespace ep::ingest::fuzz
