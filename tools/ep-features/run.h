#pragma once
// One run over NDJSON input: read lines → parse records → extractor → window sink.
// Bad lines are reported with their location, counted, and skipped (--strict: the
// first one ends the run); the windows of every valid line are still produced.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "ep/ndjson.h"
#include "ep/status.h"
#include "extractor.h"
#include "options.h"

namespace ep::features {

struct RunSummary {
  bool from_db = false;     // lines are datapoint rows
  bool interrupted = false; // stopped by a signal (windows were flushed)
  std::uint64_t lines = 0;
  std::uint64_t rejected = 0;
  ExtractorStats stats;
  bool broken_pipe = false;
};

struct StreamOptions {
  bool strict = false;
  bool progress = false;
  // Set by SIGTERM/SIGINT: stop reading at the next line, flush every open window.
  const std::atomic<bool>* stop = nullptr;
};

// Reads every line of `reader`, emitting windows to `sink`, then flushes all open
// windows. Returns a non-ok Status for an unreadable input (I/O) or, with strict, the
// first rejected line (data); rejected lines otherwise only count in `summary`.
Status run_lines(const Options& opts, const StreamOptions& stream, LineReader& reader,
                 WindowSink& sink, RunSummary& summary);

// Same, writing NDJSON window records to `out` (stops quietly on a broken pipe).
Status run_stream(const Options& opts, const StreamOptions& stream, LineReader& reader,
                  RecordWriter& out, RunSummary& summary);

// "12 lines, 10 points, 4 windows (1 empty), 2 rejected, 1 late, 3 series"
std::string format_summary(const RunSummary& s);

}  // namespace ep::features
