#pragma once
// The text formats device logs and agents write, read line by line into a SampleSink:
// Influx line protocol (HTTP /api/v2/write, /write and `--stdin --format influx`), the
// Prometheus text exposition format, logfmt, syslog (RFC 5424 and RFC 3164/BSD) and CSV
// with a header naming its columns (docs/protocols.md, "Text formats").
//
// Each parse_*_line function reads one line. A line it cannot read returns Code::kData
// with "<format>: column N: <reason>" (N counts bytes from 1) and adds nothing; a
// readable line adds its samples, and a sample that breaks a rule (a bad name, a ts out
// of the window) goes to sink.reject() with its reason.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "samples.h"

namespace ep::ingest {

// Nanoseconds per unit of an epoch timestamp; 0 = not an epoch (RFC 3339).
using TimeUnit = std::int64_t;

// An epoch integer in `unit` as TimeNs; false when it is not an integer or overflows.
bool epoch_to_ns(std::string_view s, TimeUnit unit, TimeNs& out);

// Influx line protocol: measurement[,tag=v…] field=v[,field=v…] [timestamp]. Numeric
// fields (float, 12i, 12u) become samples named measurement_field with the tags as labels;
// string and boolean fields are skipped. A missing timestamp is sink.now(). Blank lines
// and # comments add nothing.
Status parse_influx_line(std::string_view line, TimeUnit precision, SampleSink& sink);
// A request body: every line; an unreadable one is rejected as "line N: …" and the
// others are still read.
void parse_influx_body(std::string_view body, TimeUnit precision, SampleSink& sink);

// Prometheus text exposition: name{label="v",…} value [timestamp_ms]; # lines (HELP,
// TYPE, comments) and blank lines add nothing.
Status parse_prom_line(std::string_view line, SampleSink& sink);

// Which keys of a logfmt line (or syslog message) carry what.
struct KeyValueOptions {
  std::string device_key;  // "": the first of --device-label present, else --default-device
  std::string metric_key;  // "": every numeric key is a metric of that name
  std::string value_key = "value";  // with metric_key: the key holding the value
  std::string unit_key;             // with metric_key: the key holding the unit (optional)
  std::string time_key;  // "": the first of ts, time, timestamp present, else receive time
  TimeUnit time_unit = 0;  // --time-precision: epoch times in this unit; 0 = RFC 3339
};

// logfmt: key=value key="quoted value" bare_key …
Status parse_logfmt_line(std::string_view line, const KeyValueOptions& opts, SampleSink& sink);

// syslog: RFC 5424 (<PRI>1 TIMESTAMP HOSTNAME APP PROCID MSGID [SD…] MSG) or RFC 3164
// (<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG, the <PRI> optional as in log files, also with an
// RFC 3339 timestamp as rsyslog writes). The device is HOSTNAME (unless opts.device_key),
// the time the header's; structured-data parameters and the message's key=value pairs are
// read as logfmt.
Status parse_syslog_line(std::string_view line, const KeyValueOptions& opts, SampleSink& sink);

// CSV with its columns named by a header, in any order: device, metric, ts (or timestamp,
// time), value, unit (long layout); or device, ts and one column per metric (wide layout,
// empty cells skipped). Without a header: device,metric,ts,value[,unit].
struct CsvLayout {
  char delimiter = ',';
  bool wide = false;
  int device = 0, metric = 1, ts = 2, value = 3, unit = 4;  // column index, -1 absent
  std::vector<std::string> names;  // wide: the metric of each column ("" = not a metric)
  size_t min_fields = 4, max_fields = 5;
};
// If `line` is a header, fills layout and returns true; false when it is data (layout
// untouched); an error when it names columns but cannot be read as a header.
Result<bool> read_csv_header(std::string_view line, char delimiter, CsvLayout& layout);
Status parse_csv_record(std::string_view line, const CsvLayout& layout, TimeUnit time_unit,
                        SampleSink& sink);

}  // namespace ep::ingest
