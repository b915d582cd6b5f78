#pragma once
// ep-load: batch/point records -> Postgres, idempotently (see writer.h). The reader
// thread parses and groups; this thread loads, emits and reports progress.
#include <atomic>
#include <functional>
#include <string>

#include "ep/ndjson.h"
#include "ep/status.h"
#include "options.h"
#include "reader.h"
#include "writer.h"

namespace ep::load {

struct Summary {
  ReadStats read;
  WriteStats write;
  std::uint64_t records_not_loaded = 0;  // read but not loaded when the run failed
  bool output_closed = false;            // --emit reader went away (broken pipe)
  std::string line() const;              // one-line summary for stderr
};

struct RunContext {
  Reporter* reporter = nullptr;
  std::atomic<bool>* stop = nullptr;          // set by SIGTERM/SIGINT
  RecordWriter* emit = nullptr;               // --emit output, or nullptr
  std::function<void(const std::string&)> notice;  // operational notices
  std::function<Status(const char*)> fault;         // test hook (Writer::fault)
};

// Loads all input. Returns the first fatal Status (e.g. kUnavailable after --max-wait);
// rejected records are counted in the summary, not returned.
Status run(const Options& o, RunContext& ctx, Summary& summary);

}  // namespace ep::load
