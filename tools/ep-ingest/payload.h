#pragma once
// The ingest payload (docs/architecture.md §4) and the CSV line format of `--stdin --format csv`:
// pure, allocation-light validators with no I/O, shared by the HTTP and stdin paths and
// by the fuzz targets. A payload that breaks a rule is rejected whole; the Status
// message names the field ("metrics[3].value: not a finite number").
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::ingest {

// Every rule of docs/architecture.md §4, each configurable.
struct Limits {
  size_t max_body_bytes = 1 << 20;  // --max-body-bytes (HTTP body or one stdin line)
  size_t max_points = 10000;        // --max-points per payload
  size_t max_name_len = 128;        // device and metric names: [A-Za-z0-9._:/-]{1,128}
  size_t max_unit_len = 16;         // unit: any UTF-8 string up to 16 bytes
  size_t max_metric_bytes = 512;    // --max-metric-bytes: a metric with its labels, name{k="v",…}
  size_t max_samples = 100000;      // --max-samples per request of the other protocols
  size_t max_decoded_bytes = 16 << 20;  // --max-decoded-bytes: a body after Content-Encoding
  // Nanoseconds per unit of a ts given as a number (epoch); 0: only RFC 3339 strings.
  // Set by ?precision= (HTTP) or --time-precision (stdin), never guessed.
  TimeNs epoch_unit = 0;
  bool time_bounds = true;          // --no-time-bounds turns the window below off
  TimeNs max_age = 7 * 24 * 3600 * kNsPerSec;  // ts >= now - max_age
  TimeNs max_skew = 5 * 60 * kNsPerSec;        // ts <= now + max_skew
};

// Why a payload was rejected; the HTTP error code and the metrics label.
enum class RejectKind { kNone, kInvalidJson, kInvalidPayload, kTooLarge };
const char* reject_name(RejectKind k);  // "invalid_json", "invalid_payload", "payload_too_large"

struct PayloadPoint {
  std::string_view metric;
  TimeNs ts = 0;
  double value = 0;
  std::string_view unit;  // empty = none
};

// A parsed payload. The string_views point into `storage` (an in-situ copy of the
// body), so a Payload is self-contained and reusable: parse into the same object again
// and its buffers are reused without allocation.
struct Payload {
  std::string_view device;
  std::vector<PayloadPoint> points;
  RejectKind reject = RejectKind::kNone;
  // The body held more than one JSON value (NDJSON of payloads): the first parsed fine
  // and the whole body goes to the several-payloads path.
  bool more_follows = false;
  std::string storage;
};

// A body of several payloads, a JSON array of them or NDJSON (one per line): calls
// each(index, payload text) for each element. An error when the body is not one of
// those shapes (an unterminated array, …); a bad element is the callback's business.
Status split_payloads(std::string_view body, const std::function<void(size_t, std::string_view)>& each);
// True when body is a JSON array (the first non-blank byte is '[').
bool is_payload_array(std::string_view body);

// Parses and validates one payload
//   {"device_external_id":"meter-001","metrics":[{"name":"voltage","ts":"…","value":229.5,"unit":"V"}]}
// Unknown fields are ignored; duplicate known fields, an empty or missing metrics array,
// a bad name, a non-finite or non-numeric value, an unparseable or out-of-window ts and
// a too-long unit are errors (Code::kData), with out.reject telling the class.
Status parse_payload(std::string_view body, const Limits& limits, TimeNs now, Payload& out);

// CSV fields split by delim (RFC 4180 quoting), at most max (max: there were more);
// returns the count or -1 (err says where the quote broke). Views point into line or
// storage.
int split_csv(std::string_view line, char delim, std::vector<std::string_view>& fields, size_t max,
              std::string& storage, std::string& err);
bool valid_utf8(std::string_view s);
// "ts: …" style detail for a check_* reason that names a limit.
std::string limit_detail(const char* reason, const Limits& limits);

// Shared field checks (used by both parsers); each returns "" when the value is valid,
// else the reason without the field name.
const char* check_name(std::string_view s, const Limits& limits);
const char* check_unit(std::string_view s, const Limits& limits);
const char* check_ts(TimeNs ts, const Limits& limits, TimeNs now);

}  // namespace ep::ingest
