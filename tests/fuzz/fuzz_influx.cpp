// libFuzzer target: ep-ingest's Influx line protocol (one line, and a body of lines), text_formats.h.
// Properties (text_sink_check.h): no crash or UB; an unreadable input says why and adds
// nothing; every accepted sample is a valid device and metric with a finite value.
#include "text_formats.h"
#include "text_sink_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ep::ingest::SampleSink;
  ep::ingest::fuzz::check_line(data, size, [](std::string_view body, SampleSink& sink) {
    ep::ingest::parse_influx_body(body, 1, sink);
    return ep::Status::ok();
  });
  ep::ingest::fuzz::check_line(data, size, [](std::string_view body, SampleSink& sink) {
    return ep::ingest::parse_influx_line(body.substr(0, body.find('\n')), 1000, sink);
  });
  return 0;
}
