// libFuzzer target: ep-ingest's CSV records without a header (`--stdin --format csv`:
// device,metric,ts,value[,unit]), text_formats.h. Properties (text_sink_check.h): no crash
// or UB; an unreadable line says why and adds nothing; every accepted sample is a valid
// device and metric with a finite value.
#include "text_formats.h"
#include "text_sink_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ep::ingest::fuzz::check_line(data, size, [](std::string_view line, ep::ingest::SampleSink& sink) -> ep::Status {
    static const ep::ingest::CsvLayout kHeaderless;
    return ep::ingest::parse_csv_record(line, kHeaderless, 0, sink);
  });
  return 0;
}
