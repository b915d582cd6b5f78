// libFuzzer target: ep-ingest's the syslog line parser (RFC 5424 with structured data, RFC 3164), text_formats.h.
// Properties (text_sink_check.h): no crash or UB; an unreadable input says why and adds
// nothing; every accepted sample is a valid device and metric with a finite value.
#include "text_formats.h"
#include "text_sink_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ep::ingest::fuzz::check_line(data, size, [](std::string_view line, ep::ingest::SampleSink& sink) -> ep::Status {
    static ep::ingest::KeyValueOptions o;
    return ep::ingest::parse_syslog_line(line, o, sink);
  });
  return 0;
}
