#pragma once
// `ep-ingest --stdin`: one payload per line (NDJSON, the HTTP body shape) or CSV
// `device,metric,ts,value[,unit]`, validated like HTTP, emitted as batch records.
// Bad lines go to --rejects FILE as {"line":N,"error":"…","input":"…"} (or stderr) and
// the run goes on. CSV rows are grouped into one batch per device, emitted when the
// device's batch is full, when the input goes idle (nothing more to read right now) and
// at the end, so `tail -f log | ep-ingest --stdin` flows.
#include <cstdint>

#include "ep/time.h"
#include "options.h"

namespace ep::ingest {

struct StdinSummary {
  std::uint64_t lines = 0, batches = 0, points = 0, rejected = 0;
};

// Returns ok, kData when some lines were rejected (all valid input emitted), kIo on an
// output or archive failure. A broken stdout pipe ends the run quietly (ok).
Status run_stdin(const Options& opts, int in_fd, int out_fd, const Clock& clock, StdinSummary& summary);

}  // namespace ep::ingest
