#pragma once
// The immutable raw archive (docs/architecture.md §6, docs/archive-format.md), shared by ep-ingest (writes
// before acknowledging) and ep-archive (write, replay, verify, ls, prune).
//
// One object per batch: the batch record (docs/architecture.md §3) as one NDJSON line, including
// "raw" — so replay re-emits exactly what ep-ingest emitted. Format 1 stores it at
//   <root>/<tenant>/<yyyy>/<mm>/<dd>/<batch_id>.json      (day of received_at, UTC)
// format 2 appends it to a segment log per tenant and day (ep/segment_log.h).
// Objects are never overwritten: a second put of the same batch_id is a no-op when
// the bytes are identical and a kConflict error when they differ.
//
// Backends: file:///path — format 1 (temp file, fsync, rename, fsync dir; put_many
// shares the fsyncs of a whole group) or format 2 (a group appended and synced with one
// fdatasync; archive_segment.cpp) — and s3://bucket/prefix (format 1, S3-compatible,
// libcurl SigV4; format 1 one object per batch, format 2 one object per sealed segment
// uploaded from a local spool: archive_s3seg.cpp). The implementation lives in common/src/archive*.cpp.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep {

struct ArchiveOptions {
  std::string s3_endpoint;  // --s3-endpoint; empty = AWS default for the region
  std::string s3_region;    // default $AWS_REGION, else "auto"
  std::string access_key, secret_key;  // default $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY
  // Create the archive (root directory, FORMAT marker) when it does not exist. Readers
  // (replay, verify, ls, prune) pass false so a mistyped URI is an error, not an empty archive.
  bool create = true;
  // Format of a file:// archive created by this open (an existing one keeps its own):
  // 1 = one file per batch, 2 = segment log (docs/archive-format.md).
  int create_format = 1;
  // Format 2: an active segment is sealed (zstd, index, footer) once it holds
  // segment_bytes or is segment_age old; chunk_bytes of records are compressed together.
  std::uint64_t segment_bytes = 64ull << 20;
  TimeNs segment_age = 3600 * kNsPerSec;
  size_t chunk_bytes = 1 << 20;
  std::uint64_t preallocate_bytes = 8ull << 20;  // zeros written ahead of an active segment's records
  int zstd_level = 3;
  long s3_timeout_ms = 30000;  // per S3 request
  int s3_retries = 3;          // attempts for a failed S3 request (5xx, 429, network)
  // Format 2: segment names end in "-<node_id>.<6 random>" so that writers on several
  // hosts never pick one name; empty = this host's name and process id ("web-1.p4242").
  std::string node_id;
  // s3:// format 2: batches are made durable in a local format 2 spool (a file:// root)
  // and sealed segments uploaded from it in the background, one object per segment.
  std::string spool_dir;  // empty = kDefaultSpool
  std::uint64_t spool_budget = 10ull << 30;  // active + not yet uploaded bytes at most
  std::uint64_t s3_multipart_bytes = 64ull << 20;  // larger segments go up in parts of this size
  TimeNs upload_backoff_max = 30 * kNsPerSec;       // longest wait between failed upload rounds
  // Called after a segment is sealed, with its file and size (the spool tells its uploader).
  std::function<void(const std::string& path, std::uint64_t bytes)> on_sealed;
};
inline constexpr const char* kDefaultSpool = "/var/lib/edgepulse/archive-spool";

// What a format 2 writer holds locally, and its uploads (s3:// format 2).
struct ArchiveStats {
  bool uploads = false;            // an s3:// format 2 archive uploading from a spool
  std::uint64_t active_bytes = 0;  // records in active segments of this process (or being sealed)
  std::uint64_t pending_segments = 0, pending_bytes = 0;  // sealed, not yet uploaded
  TimeNs oldest_pending = 0;       // when the oldest pending segment was sealed; 0: none
  std::uint64_t uploaded_segments = 0, uploaded_bytes = 0, upload_failures = 0;
  std::uint64_t spool_budget = 0;
};

struct ArchivePut {
  std::string tenant;
  std::string batch_id;
  TimeNs received_at = 0;
  std::string_view bytes;  // the object content (one batch record line, no '\n' needed)
};

struct ArchiveObject {
  std::string tenant, batch_id;
  TimeNs received_at = 0;  // from the key's day, refined from the object when read
  std::string key;         // path relative to the root
  std::string uri;         // full URI, e.g. file:///var/lib/edgepulse/archive/acme/...
  std::uint64_t size = 0;
};

// What Archive::scan passes on: an object and its bytes, or a problem found in place of
// one (problem not ok; obj names what is known: the file, the batch when known).
using ScanFn = std::function<bool(const ArchiveObject& obj, std::string_view bytes, const Status& problem)>;

struct ArchiveFilter {
  std::string tenant;  // empty = all
  TimeNs from = INT64_MIN, to = INT64_MAX;  // by received day (inclusive ranges)
};

// One segment file of a format 2 log (docs/archive-format.md, "Version 2").
struct SegmentFile {
  std::string tenant;
  std::int64_t day = 0;  // UTC days since the epoch
  std::string rel_day;   // "<tenant>/<yyyy>/<mm>/<dd>"
  std::string stem;      // "seg-<created>-<tag>": the same while active and once sealed
  std::string path;      // absolute path of the file that holds the segment now
  bool sealed = false;   // path is the .seg (a .wal left next to it is ignored)
};

class Archive {
 public:
  static Result<std::unique_ptr<Archive>> open(const std::string& uri,
                                               const ArchiveOptions& opts = {});
  virtual ~Archive() = default;

  // Durably stores every object of the group, sharing fsyncs. out[i] is the object
  // URI or the error for puts[i]; the call returns an error only if the whole group
  // failed before anything was attempted.
  virtual Status put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) = 0;
  Result<std::string> put(const ArchivePut& p);

  // Objects matching the filter, in (tenant, key) order. fn returns false to stop.
  virtual Status list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) = 0;
  virtual Result<std::string> get(const ArchiveObject& o) = 0;
  virtual Status remove(const ArchiveObject& o) = 0;

  virtual const std::string& uri() const = 0;
  // 1: one object per batch; 2: segment log (file:// only).
  virtual int format() const { return 1; }

  // Every object matching the filter with its bytes (each checked against its checksum
  // where the format has one), in list order; damage is passed on as a problem instead.
  // The default is list() + get().
  virtual Status scan(const ArchiveFilter& f, const ScanFn& fn);
  // The units removed by prune: objects (format 1) or segment files (format 2), with
  // received_at the start of their day. remove() takes them.
  virtual Status list_units(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) {
    return list(f, fn);
  }
  // Format 2: the segment files matching the filter, by tenant, day and stem (creation
  // order), one per stem. Other formats: a kUsage error.
  virtual Status segments(const ArchiveFilter& f, const std::function<bool(const SegmentFile&)>& fn) {
    (void)f;
    (void)fn;
    return Status::usage(uri() + ": not a segment log (archive format 2)");
  }
  // Seals every active segment (format 2; s3:// also uploads them); a no-op elsewhere.
  virtual Status seal() { return Status::ok(); }
  // Makes everything put so far reach its final store before returning: s3:// format 2
  // seals and uploads its spool; a no-op elsewhere (puts are durable where they land).
  virtual Status flush() { return Status::ok(); }
  virtual ArchiveStats stats() const { return {}; }

  // Removes leftovers of interrupted writes (file:// temp files) last modified before
  // `before`; returns how many. Backends without such leftovers return 0.
  virtual Result<std::uint64_t> remove_stale(TimeNs before) {
    (void)before;
    return std::uint64_t{0};
  }

  // Where the object of a batch lives (whether or not it exists): key and URI.
  virtual ArchiveObject locate(const std::string& tenant, const std::string& batch_id,
                       TimeNs received_at) const;
};

}  // namespace ep
