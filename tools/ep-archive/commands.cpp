// The sub-command table, option registration and filter resolution.
#include <algorithm>

#include "archive_tool.h"
#include "ep/records.h"

namespace ep::archive_tool {
namespace {

std::string summary_write(const Summary& s) {
  return "archived " + std::to_string(s.written) + " batches (" + std::to_string(s.bytes) +
         " bytes), passed " +
         std::to_string(s.passed) + " other records, rejected " + std::to_string(s.rejected);
}
std::string summary_replay(const Summary& s) {
  return "replayed " + std::to_string(s.passed) + " of " + std::to_string(s.objects) +
         " objects (" + std::to_string(s.bytes) + " bytes), " + std::to_string(s.corrupt) +
         " corrupt";
}
std::string summary_verify(const Summary& s) {
  return "verified " + std::to_string(s.objects) + " objects (" + std::to_string(s.bytes) +
         " bytes): " + std::to_string(s.objects - s.corrupt - s.missing) + " ok, " +
         std::to_string(s.corrupt) + " corrupt, " + std::to_string(s.missing) + " missing";
}
std::string summary_ls(const Summary& s) {
  return std::to_string(s.objects) + " objects, " + std::to_string(s.bytes) + " bytes";
}
std::string summary_get(const Summary& s) {
  return s.passed ? "found" : "not found";
}
std::string summary_compact(const Summary& s) {
  return "compacted " + std::to_string(s.written) + " of " + std::to_string(s.objects) + " objects (" +
         std::to_string(s.bytes) + " bytes), " + std::to_string(s.corrupt) + " corrupt";
}
std::string summary_seal(const Summary&) { return "sealed every active segment"; }
std::string summary_prune(const Summary& s) {
  return "pruned " + std::to_string(s.removed) + " of " + std::to_string(s.objects) +
         " objects (" + std::to_string(s.bytes) + " bytes)";
}

// "2026-01-05T10:00:00Z", "2026-01-05" or a duration ("24h": that long before now).
Result<TimeNs> parse_when(const std::string& flag, const std::string& s, const Clock& clock,
                          bool end_of_day) {
  ParseTimeOptions po;
  po.assume_utc = true;
  po.allow_date_only = true;
  if (auto t = parse_rfc3339(s, po)) {
    bool date_only = s.size() == 10;
    return date_only && end_of_day ? *t + 86400 * kNsPerSec - 1 : *t;
  }
  if (auto d = parse_duration(s)) return clock.now() - *d;
  return Status::usage(flag + " " + s + ": expected an RFC 3339 time, a date or a duration (24h, 7d)");
}

}  // namespace

Status resolve(Options& o, const Clock& clock, bool need_older_than) {
  if (!o.from_s.empty()) {
    auto t = parse_when("--from", o.from_s, clock, false);
    if (!t) return t.status();
    o.from = *t;
  }
  if (!o.to_s.empty()) {
    auto t = parse_when("--to", o.to_s, clock, true);
    if (!t) return t.status();
    o.to = *t;
  }
  if (o.from > o.to) return Status::usage("--from is after --to");
  if (need_older_than) {
    if (o.older_than_s.empty()) return Status::usage("prune needs --older-than DUR (e.g. 90d)");
    auto d = parse_duration(o.older_than_s);
    if (!d || *d <= 0)
      return Status::usage("--older-than " + o.older_than_s + ": expected a positive duration (90d)");
    o.older_than = *d;
  }
  if (o.group == 0) return Status::usage("--group must be at least 1");
  return Status::ok();
}

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"write", "Archive stdin batches; pass them on with \"raw\" replaced by \"archive\" (default)",
       false, run_write, summary_write},
      {"replay", "Emit archived batch records (source \"replay\") in received order per tenant",
       true, run_replay, summary_replay},
      {"verify",
       "Check every object (format 2: every record's CRC; both: sha256 of raw); report corrupt and missing "
       "objects (exit 65)",
       true, run_verify, summary_verify},
      {"get", "Print the stored batch record of BATCH_ID", true, run_get, summary_get},
      {"ls", "List objects: counts and bytes per tenant and day (or per object)", true, run_ls,
       summary_ls},
      {"prune", "Remove objects (format 2: segment files) whose day is older than --older-than", true,
       run_prune, summary_prune},
      {"seal", "Seal every active segment of a format 2 archive (zstd, index, footer)", true, run_seal,
       summary_seal},
      {"compact", "Rewrite a format 1 archive into a new format 2 archive (--into) and check its replay is identical",
       true, run_compact, summary_compact},
  };
  return kCommands;
}

void register_commands(Cli& cli, Options& o, std::vector<CLI::App*>& subs) {
  CLI::App& app = cli.app();
  const char* kArch = "Archive";
  app.add_option("--archive", o.archive, "Archive URI: file:///path or s3://bucket/prefix")
      ->envname("EDGEPULSE_ARCHIVE")
      ->group(kArch);
  app.add_option("--s3-endpoint", o.s3_endpoint,
                 "S3-compatible endpoint, e.g. https://<account>.r2.cloudflarestorage.com "
                 "(default $AWS_ENDPOINT_URL_S3, else AWS)")
      ->group(kArch);
  app.add_option("--s3-region", o.s3_region, "SigV4 region (default $AWS_REGION, else auto)")
      ->group(kArch);
  const char* kFilter = "Filters (replay, verify, ls, prune)";
  app.add_option("--tenant", o.tenant, "Only this tenant")->group(kFilter);
  app.add_option("--from", o.from_s, "Received at or after TS (RFC 3339, date, or a duration ago)")
      ->group(kFilter);
  app.add_option("--to", o.to_s, "Received at or before TS (a date includes the whole day)")
      ->group(kFilter);
  const char* kWrite = "write";
  app.add_option("--group", o.group, "Batches per group commit (they share the fsyncs)")
      ->group(kWrite);
  app.add_option("--max-line-bytes", o.max_line_bytes, "Longest accepted input line")
      ->group(kWrite);
  app.add_option("--archive-spool", o.spool,
                 std::string("write into an s3:// format 2 archive: the local spool the segments are "
                             "sealed in and uploaded from before write ends (default ") + kDefaultSpool + ")")
      ->type_name("DIR")->group(kWrite);
  app.add_option("--format", o.format,
                 "Format of an archive that write creates: 2 segment log (default for file://), "
                 "1 one object per batch (default for s3://)")
      ->check(CLI::IsMember({1, 2}))
      ->group(kWrite);
  cli.add_inputs();
  app.require_subcommand(0, 1);
  for (const auto& c : commands()) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    sub->fallthrough();
    std::string name = c.name;
    if (name == "write") cli.add_inputs(sub);
    if (name == "replay") {
      sub->add_option("--device", o.device, "Only this device");
      sub->add_option("--batch-id", o.batch_ids, "Only this batch (repeatable)");
    }
    if (name == "get") sub->add_option("BATCH_ID", o.batch_ids, "The batch id")->required();
    if (name == "compact")
      sub->add_option("--into", o.into, "The new archive (file://, created as format 2; must be empty)")
          ->required();
    if (name == "verify")
      sub->add_option("--expect", o.expect,
                      "Batch records (ep-ingest or ep-archive output) whose objects must exist; "
                      "checks only those")
          ->type_name("FILE");
    if (name == "ls") sub->add_flag("--objects", o.objects, "One line per object instead of per day");
    if (name == "prune") {
      sub->add_option("--older-than", o.older_than_s, "Remove days older than DUR (e.g. 90d)");
      sub->add_flag("--dry-run", o.dry_run, "Only list what would be removed");
    }
    subs.push_back(sub);
  }
}

}  // namespace ep::archive_tool
