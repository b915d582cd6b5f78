#pragma once
// Idempotency-Key across restarts: every batch accepted with a key carries it in its
// batch record ("idempotency_key", next to "sha256" and "points"), which the archive
// stores durably before the 202. At start, ep-ingest reads back the records of the last
// --idempotency-window (only the day directories that can hold them) and restores
// their answers into the cache, so a retry after a restart gets the original batch.
#include <cstdint>
#include <string>
#include <string_view>

#include "ep/archive.h"
#include "ep/status.h"
#include "idempotency.h"

namespace ep::ingest {

// What a keyed batch record says about its answer.
struct KeyedBatch {
  std::string key, sha256;
  std::int64_t points = 0;
  TimeNs received_at = 0;
};
// Reads the top-level idempotency_key, sha256, received_at and the number of points of
// a batch record line (stops parsing once it has them, so "raw" is usually not read).
// False when the line has no idempotency_key or lacks one of the others.
bool read_keyed_batch(std::string_view line, KeyedBatch& out);

struct KeyRecovery {
  std::uint64_t batches = 0;   // good batch records read
  std::uint64_t keyed = 0;     // of them with an idempotency_key within the window
  std::uint64_t problems = 0;  // damaged or torn records skipped
  size_t restored = 0;         // cache entries afterwards
  TimeNs elapsed = 0;
};
// Restores into cache the answers recorded in the archive within cache.window() of now.
// Damage is skipped and reported on stderr (the first few in full, then a count); an
// error only when the archive cannot be read at all.
Result<KeyRecovery> recover_keys(Archive& archive, IdempotencyCache& cache, TimeNs now);

}  // namespace ep::ingest
