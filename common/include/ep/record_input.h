#pragma once
// Reading NDJSON records (ep-eval, ep-plot): every line is parsed as JSON and handed to a
// callback; a line that is not JSON, or that the callback refuses, is reported with its
// stream and line number, counted, and skipped (or ends the read with --strict).
#include <rapidjson/document.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ep/ndjson.h"
#include "ep/records.h"
#include "ep/status.h"

namespace ep {

struct InputStats {
  std::int64_t lines = 0;     // non-blank lines
  std::int64_t records = 0;   // accepted by the callback
  std::int64_t rejected = 0;  // reported with their line number
  std::int64_t ignored = 0;   // valid records of kinds this read does not use
};

// Returns Status::ok() when the callback accepted a record, a data error (the reason,
// without location) to reject the line, or `kIgnoredRecord` to skip a record of another kind.
using RecordFn = std::function<Status(const rapidjson::Value& obj, Kind kind)>;
inline const Status kIgnoredRecord{Code::kConflict, "ignored"};

// Reads every line of `paths` (empty or "-": stdin). Rejects are logged through
// ep::log::reject. Returns an I/O error for unreadable input, the first reject's status
// (with location) under `strict`, otherwise ok; stats says how many lines were rejected.
Status read_records(const std::vector<std::string>& paths, bool strict, InputStats& stats,
                    const RecordFn& fn);

}  // namespace ep
