// libFuzzer target: ep-ingest's Influx line protocol (one line, and a body of lines), text_formats.h.
// Properties (text_sink_check.h): no crash or UB; an unreadable input says why and adds
// nothing; every accepted sample is a valid device and metric with a finite value.
#include "text_formats.h"
#include "text_sink_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ep::ingest::fuzz::check_line(data, size, [](std::string_view line, ep::ingest::SampleSink& sink) -> ep::Status {
    ep::ingest::parse_influx_body(line, 1, sink);
    return ep::ingest::parse_influx_line(line.substr(0, line.find('\n')), 1000, sink);
  });
  return 0;
}
