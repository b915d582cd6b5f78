#pragma once
// Reading window records for ep-train on several threads. The calling thread reads
// lines into chunks; worker threads parse them (JSON in place, then the window record);
// the calling thread hands the windows on and reports rejects in input order. What the
// trainer sees, and the order of the messages, do not depend on the thread count.
#include <cstdint>
#include <functional>

#include "ep/ndjson.h"
#include "ep/records.h"
#include "ep/status.h"

namespace ep::train {

struct ReadOptions {
  int threads = 1;      // parser threads; 1 parses on the calling thread
  bool strict = false;  // stop at the first rejected line
};

struct ReadStats {
  std::int64_t lines = 0;     // every line handed on or rejected (blank ones too)
  std::int64_t rejected = 0;  // reported through log::reject with stream and line
};

// Reads `in` to its end (or, with strict, to the first reject), calling on_window for
// each valid window record and on_lines(lines so far) about every 1024 lines, both on
// the calling thread, in input order. Memory: a bounded number of chunks in flight
// (kChunkLines lines each). Returns in.status() (an I/O error) or ok; rejects are
// counted in stats, not returned.
Status read_windows(LineReader& in, const ReadOptions& opt,
                    const std::function<void(const Window&)>& on_window,
                    const std::function<void(std::int64_t)>& on_lines, ReadStats& stats);

inline constexpr std::size_t kChunkLines = 2048;

}  // namespace ep::train
