#pragma once
// Segment files of archive format version 2 (docs/archive-format.md, "Version 2"):
// batches appended as checksummed records to an active segment (`.wal`), made durable
// a group at a time with one fdatasync, and sealed into a zstd-compressed segment
// (`.seg`) with an index and a footer. Modelled on LevelDB's log format (framed,
// checksummed records; a torn tail is cut off on open) and Kafka's record batches
// (many records compressed together, checksummed as stored).
//
// Every stored byte is covered by a checksum (zlib's CRC-32): a record's CRC covers its
// magic, length, type and payload; a sealed segment's chunks, index and footer are
// records (or a footer) with their own CRC, and the records inside a chunk keep theirs.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"
#include "ep/time.h"

namespace ep::seglog {

inline constexpr std::string_view kActiveMagic = "EPLOG02\n";  // first 8 bytes of a .wal
inline constexpr std::string_view kSealedMagic = "EPSEG02\n";  // first 8 bytes of a .seg
inline constexpr std::string_view kFooterMagic = "EPSEGEND";
inline constexpr std::uint32_t kRecordMagic = 0x32525045;  // "EPR2" little-endian
inline constexpr size_t kRecordHeader = 13;                 // magic, length, crc, type
inline constexpr size_t kFooterBytes = 32;
inline constexpr std::uint32_t kMaxPayload = 64u << 20;
inline constexpr std::uint64_t kPreallocate = 8u << 20;  // default zero bytes added ahead of the records
enum RecordType : std::uint8_t { kBatch = 1, kChunk = 2, kIndex = 3 };

// One archived batch: the batch record line (no newline) and the fields it is filed by.
struct Batch {
  std::string_view tenant, batch_id;
  TimeNs received_at = 0;
  std::string_view line;
};

// Appends the framed record of b to out; returns its CRC.
std::uint32_t encode_batch(std::string& out, const Batch& b);

// What a scan reports besides good records.
struct Problem {
  std::uint64_t offset = 0;  // in the file (a chunk's offset for records inside it)
  std::string batch_id;      // when known (a damaged chunk names its batches from the index)
  std::string reason;
  bool torn = false;  // bad bytes at the end of an active segment with no good record after
  std::uint64_t length = 0;  // bytes of the damaged stretch (active segments)
};
struct Found {
  Batch batch;
  std::uint64_t offset = 0;  // of the record (active) or of its chunk (sealed)
  std::uint32_t inner = 0;   // offset inside the decompressed chunk (sealed)
  std::uint32_t size = 0;    // stored record bytes (framing included)
  std::uint32_t crc = 0;
};
struct Visitor {
  std::function<bool(const Found&)> record;      // false stops
  std::function<bool(const Problem&)> problem;   // false stops
};

// Reads a whole segment file (active or sealed, told apart by its magic), checking every
// checksum; good records go to v.record in order, damage to v.problem. Never passes on
// a record that fails a check. An error Status only for I/O.
Status scan_file(const std::string& path, const Visitor& v);
// The same over bytes already in memory.
void scan_bytes(std::string_view data, const Visitor& v);
// The records of an active segment read from the middle: `bytes` start at file offset
// `base`, a record boundary after the header (offsets reported are file offsets). Zero
// bytes from a record boundary to the end are the clean end, as in a whole file.
void scan_active_range(std::string_view bytes, std::uint64_t base, const Visitor& v);

// Index entries of a sealed segment (without decompressing), or an error when the
// footer or index is damaged (then scan_file still reads the chunks).
struct IndexEntry {
  std::string batch_id;
  std::uint64_t chunk_offset = 0;
  std::uint32_t inner = 0, size = 0, crc = 0;
  TimeNs received_at = 0;
};
Result<std::vector<IndexEntry>> read_index(const std::string& path);

struct SealOptions {
  size_t chunk_bytes = 1 << 20;  // uncompressed bytes of records per zstd chunk
  int zstd_level = 3;
};
// Writes the sealed form of the records in `active` (an active segment's bytes; only
// complete, good records are taken) to `out_path` (created, fdatasync'ed; the caller
// renames and syncs the directory). Returns the number of records sealed.
Result<std::uint64_t> write_sealed(std::string_view active, const std::string& out_path,
                                   const SealOptions& o);

// What opening an active segment for appending found.
struct Recovery {
  std::uint64_t good_end = 0;   // end of the last complete record
  std::uint64_t torn_bytes = 0; // cut off and moved aside
  std::string torn_path;        // where they went
  bool damaged = false;         // a bad record before good ones: not appendable
  std::string reason;
};

// An active segment open for appending (an exclusive flock(2) keeps other writers out).
// The file is extended ahead of the records with zero bytes (kPreallocate at a time,
// whenever less than that is left), so an append overwrites allocated blocks and its
// fdatasync need not commit metadata. The zeros are written by a background thread (one
// per process, shared by every active segment) a slice at a time, each slice written
// back before the next, then committed with an fdatasync of its own: a sync on the
// request path never waits for more than one slice of them.
// append() writes a group's framed records with one write(2); sync_to() makes
// everything up to an offset durable, one fdatasync covering every group appended
// before it started (group commit: concurrent callers wait for the running sync).
class Active {
 public:
  // Creates a new segment file at path.
  static Result<std::shared_ptr<Active>> create(const std::string& path, TimeNs created,
                                                std::uint64_t preallocate = kPreallocate);
  // Opens an existing one: checks every record, moves a torn tail aside
  // (`.torn-<name>-<offset>` next to it) and truncates to the last good record.
  // Returns null (and rec.damaged or a locked file) when it cannot be appended to.
  static Result<std::shared_ptr<Active>> adopt(const std::string& path, TimeNs created,
                                               Recovery& rec,
                                               const std::function<void(const Found&)>& each,
                                               std::uint64_t preallocate = kPreallocate);
  ~Active();

  // Appends bytes (whole records); end receives the offset after them.
  Status append(std::string_view bytes, std::uint64_t& end);
  Status sync_to(std::uint64_t end);
  std::uint64_t size() const;
  TimeNs created() const { return created_; }
  const std::string& path() const { return path_; }
  bool failed() const;
  // Zero bytes allocated after the records (for tests: preallocation has caught up).
  std::uint64_t allocated() const;
  // Waits until no preallocation is pending (for tests and shutdown).
  void wait_preallocated() const;

  // Run by the background preallocator: extends the file by one preallocation.
  void extend();

 private:
  Active(int fd, std::string path, std::uint64_t size, std::uint64_t allocated, TimeNs created)
      : fd_(fd), path_(std::move(path)), written_(size), synced_(size), allocated_(allocated), created_(created) {}
  void maybe_extend();  // under mu_: queues extend() when less than a preallocation is left
  int fd_;
  // The preallocator's own open file description: its write-back waits and fdatasync
  // must not consume a write-back error that fd_'s fdatasync has to report.
  int prep_fd_ = -1;
  std::string path_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::uint64_t written_, synced_;
  std::uint64_t allocated_;  // file size: zero bytes after written_ (preallocated)
  std::uint64_t preallocate_ = kPreallocate;
  std::uint64_t retry_at_ = 0;  // after a failed preallocation: not before written_ reaches this
  bool extending_ = false;      // queued for or running extend()
  bool closing_ = false;        // the destructor runs: extend() stops
  bool syncing_ = false;
  Status failed_;
  TimeNs created_;
};

}  // namespace ep::seglog
