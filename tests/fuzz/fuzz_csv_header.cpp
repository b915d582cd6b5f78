// libFuzzer target: ep-ingest's CSV with a header line (first line) and a record (the rest), text_formats.h.
// Properties (text_sink_check.h): no crash or UB; an unreadable input says why and adds
// nothing; every accepted sample is a valid device and metric with a finite value.
#include "text_formats.h"
#include "text_sink_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ep::ingest::fuzz::check_line(data, size, [](std::string_view line, ep::ingest::SampleSink& sink) -> ep::Status {
    size_t nl = line.find('\n');
    ep::ingest::CsvLayout layout;
    layout.delimiter = ';';
    auto h = ep::ingest::read_csv_header(line.substr(0, nl), ';', layout);
    if (!h.is_ok() && h.status().message().empty()) std::abort();
    if (nl == std::string_view::npos) return ep::Status::ok();
    return ep::ingest::parse_csv_record(line.substr(nl + 1), layout, 0, sink);
  });
  return 0;
}
