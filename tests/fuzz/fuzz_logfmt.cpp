// libFuzzer target: ep-ingest's the logfmt line parser, with and without --metric-key and --time-precision, text_formats.h.
// Properties (text_sink_check.h): no crash or UB; an unreadable input says why and adds
// nothing; every accepted sample is a valid device and metric with a finite value.
#include "text_formats.h"
#include "text_sink_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ep::ingest::SampleSink;
  static const ep::ingest::KeyValueOptions plain, named = [] {
    ep::ingest::KeyValueOptions o;
    o.metric_key = "name";
    o.unit_key = "unit";
    o.time_unit = 1000000;
    return o;
  }();
  ep::ingest::fuzz::check_line(data, size, [](std::string_view line, SampleSink& sink) {
    return ep::ingest::parse_logfmt_line(line, plain, sink);
  });
  ep::ingest::fuzz::check_line(data, size, [](std::string_view line, SampleSink& sink) {
    return ep::ingest::parse_logfmt_line(line, named, sink);
  });
  return 0;
}
