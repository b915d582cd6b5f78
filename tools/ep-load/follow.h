#pragma once
// ep-load --follow ARCHIVE: a service that reads the archive's segment log (format 2,
// docs/archive-format.md) itself and loads it with the same Writer as the stdin loader,
// committing its cursor in the transaction that loads the rows.
//
// Cursor (table archive_cursors, one row per consumer and segment): the segment's
// identity is tenant / day / stem — the file name without .wal or .seg, unchanged when
// an active segment is sealed — and its position is the number of good records consumed
// from the start of the segment. Sealing keeps exactly the good records of the active
// file in their order, so the count means the same in both files. For an active file
// the row also keeps the byte offset after the last consumed record and that record's
// crc and size: a resume reads from that record and checks it is still the one consumed
// (in a sealed file, the record at count − 1). If it is not (the writer zeroed a failed
// group, or a crash lost a tail the loader had read), the segment is read again from
// its start; batches already loaded are skipped by ingest_batches, so nothing is loaded
// twice either way.
//
// Damage: a stretch of an active segment that fails its checksum while good records
// follow may be a group the writer is still writing; it counts as damage once it is
// still there damage_confirm later, and is then reported (segment and offset) and
// skipped. A bad tail (nothing good after it) is waited on, never loaded. In a sealed
// segment damage is reported and skipped at once.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "ep/archive.h"
#include "load.h"

namespace ep::load {

struct FollowOptions {
  std::string archive;                     // --follow: file:// URI of a format 2 root
  std::string consumer = "ep-load";        // --consumer
  std::string tenant;                      // --tenant: only this tenant's segments
  TimeNs poll_interval = 200 * kNsPerMs;   // --poll-interval: look for new records this often
  std::string metrics_listen;              // --metrics-listen HOST:PORT ("" = none)
  TimeNs report_interval = 5 * kNsPerSec;  // lag written to archive_consumers at least this often
  TimeNs damage_confirm = kNsPerSec;       // see above
  TimeNs lag_interval = kNsPerSec;         // the head of the log is measured this often
};

// What /metrics shows (a snapshot; see render_follow_metrics).
struct FollowStats {
  std::uint64_t lag_batches = 0, head_batches = 0;
  double lag_seconds = 0;
  bool lag_known = false;
  std::uint64_t batches_loaded = 0, batches_skipped = 0, points_loaded = 0;
  std::uint64_t records_damaged = 0, records_rejected = 0, rewinds = 0;
  std::uint64_t commits = 0, retries = 0;
  std::uint64_t segments = 0, segments_done = 0;
  bool postgres_up = false;
};

// Prometheus text exposition of st for consumer `consumer` (ep_load_follow_*).
void render_follow_metrics(const FollowStats& st, const std::string& consumer, std::string& out);

// Follows the log until ctx.stop. Errors: kUsage (not a format 2 file:// root),
// kUnavailable when the schema is missing or too old; never because Postgres is down.
Status follow(const Options& o, const FollowOptions& f, RunContext& ctx, Summary& summary);

}  // namespace ep::load
