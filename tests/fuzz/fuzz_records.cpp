// libFuzzer target: the NDJSON records of common/include/ep/records.h (batch, point,
// window, score, alert, truth), one record per input line, each parsed as every type.
// Properties: a rejection names its reason; an accepted record serialises to a line that
// parses back, as the same kind, to a record serialising to the same line; parsing into
// a reused record (as the stages reuse them line after line) gives the same record as
// parsing into a fresh one.
#include <cstdint>
#include <string>
#include <string_view>

#include "ep/json.h"
#include "ep/records.h"
#include "fuzz_check.h"

namespace {

using ep::fuzz::check;

template <typename R>
void round_trip(const rapidjson::Value& obj, ep::Kind kind, R& reused) {
  R fresh;
  ep::Status st = ep::parse_record(obj, fresh);
  ep::Status st_reused = ep::parse_record(obj, reused);
  check(st.is_ok() == st_reused.is_ok(), "a reused record accepts what a fresh one does");
  if (!st) {
    ep::fuzz::check_reason(st, "parse_record");
    return;
  }
  std::string line = ep::to_ndjson(fresh);
  check(ep::to_ndjson(reused) == line, "a reused record parses like a fresh one", line);
  rapidjson::Document doc;
  check(ep::parse_json(line, doc).is_ok(), "a serialised record is JSON", line);
  check(ep::kind_of(doc) == kind, "a serialised record names its kind", line);
  R again;
  check(ep::parse_record(doc, again).is_ok(), "a serialised record parses", line);
  check(ep::to_ndjson(again) == line, "parse -> serialise -> parse is stable", line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static rapidjson::Document doc;  // reused, as the stages reuse theirs
  static ep::Batch batch;
  static ep::Point point;
  static ep::Window window;
  static ep::Score score;
  static ep::Alert alert;
  static ep::Truth truth;
  while (!in.empty()) {
    size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
    ep::Status st = ep::parse_json(line, doc);
    if (!st) {
      ep::fuzz::check_reason(st, "parse_json");
      continue;
    }
    (void)ep::kind_of(doc);
    round_trip(doc, ep::Kind::kBatch, batch);
    round_trip(doc, ep::Kind::kPoint, point);
    round_trip(doc, ep::Kind::kWindow, window);
    round_trip(doc, ep::Kind::kScore, score);
    round_trip(doc, ep::Kind::kAlert, alert);
    round_trip(doc, ep::Kind::kTruth, truth);
  }
  return 0;
}
