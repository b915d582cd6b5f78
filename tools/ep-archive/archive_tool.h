#pragma once
// ep-archive core: the sub-commands write, replay, verify, ls and prune over an
// ep::Archive (common/include/ep/archive.h). main.cpp only parses the command line,
// opens the archive and maps the returned Status to an exit code.
#include <cstdint>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "ep/archive.h"
#include "ep/cli.h"
#include "ep/ndjson.h"
#include "ep/status.h"
#include "ep/time.h"

namespace ep::archive_tool {

struct Options {
  std::string archive;  // URI
  std::string s3_endpoint, s3_region;
  // Filters (replay, verify, ls, prune). Strings as given; resolved by resolve().
  std::string tenant, device, from_s, to_s;
  std::vector<std::string> batch_ids;  // replay --batch-id; get BATCH_ID
  TimeNs from = INT64_MIN, to = INT64_MAX;
  // write
  size_t group = 256;                  // batches per group commit
  size_t group_bytes = 16 << 20;       // or this many bytes of objects
  size_t max_line_bytes = kDefaultMaxLineBytes;
  int format = 2;  // of an archive write or compact creates
  std::string spool;          // --archive-spool: write into an s3:// format 2 archive
  // compact
  std::string into;  // the new format 2 archive
  // verify
  std::vector<std::string> expect;  // batch-record files naming objects that must exist
  // ls
  bool objects = false;
  // prune
  std::string older_than_s;
  TimeNs older_than = 0;
  bool dry_run = false;
  TimeNs temp_age = 3600 * kNsPerSec;  // leftover temp files older than this are removed
};

// What a run reports back to main(): counts for the summary line and the Status.
struct Summary {
  std::uint64_t objects = 0, bytes = 0, written = 0, passed = 0, rejected = 0,
                corrupt = 0, missing = 0, removed = 0;
};

struct Io {
  std::vector<std::string> inputs;  // [FILE...] (write)
  RecordWriter* out = nullptr;
  bool progress = false;
  bool strict = false;
  const Clock* clock = &SystemClock::instance();
};

// Parses --from/--to (RFC 3339, a date, or a duration meaning "that long ago") and
// --older-than. A date-only --to includes that whole day.
Status resolve(Options& o, const Clock& clock, bool need_older_than);

Status run_write(const Options& o, Archive& a, Io& io, Summary& s);
Status run_replay(const Options& o, Archive& a, Io& io, Summary& s);
Status run_verify(const Options& o, Archive& a, Io& io, Summary& s);
Status run_ls(const Options& o, Archive& a, Io& io, Summary& s);
Status run_prune(const Options& o, Archive& a, Io& io, Summary& s);
Status run_get(const Options& o, Archive& a, Io& io, Summary& s);
Status run_compact(const Options& o, Archive& a, Io& io, Summary& s);
Status run_seal(const Options& o, Archive& a, Io& io, Summary& s);

// One sub-command (docs/conventions.md 3): the table drives registration, --help and dispatch.
struct Command {
  const char* name;
  const char* help;
  bool reads_only;  // opens the archive without creating it
  Status (*run)(const Options&, Archive&, Io&, Summary&);
  std::string (*summary)(const Summary&);
};
const std::vector<Command>& commands();
// Registers the options of every sub-command on cli (and the default `write`).
void register_commands(Cli& cli, Options& o, std::vector<CLI::App*>& subs);

// Checks one archive object: one JSON batch record whose tenant, batch_id and day match
// its key and whose sha256 matches its raw bytes. `doc` receives the parsed record.
Status check_object(std::string_view bytes, const ArchiveObject& o, rapidjson::Document& doc);

// The filter of --tenant/--from/--to.
ArchiveFilter filter_of(const Options& o);

}  // namespace ep::archive_tool
