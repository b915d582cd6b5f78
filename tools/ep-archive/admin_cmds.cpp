// ep-archive ls and prune.
#include "archive_tool.h"
#include "ep/crypto.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/progress.h"

namespace ep::archive_tool {
namespace {

constexpr TimeNs kDay = 86400 * kNsPerSec;

std::string day_string(TimeNs t) { return format_rfc3339(t).substr(0, 10); }

}  // namespace

Status run_ls(const Options& o, Archive& a, Io& io, Summary& s) {
  ArchiveFilter f = filter_of(o);
  // Per (tenant, day) totals, emitted when the listing (ordered by key) moves on.
  std::string tenant;
  TimeNs day = 0;
  std::uint64_t n = 0, bytes = 0;
  bool out_ok = true;
  auto flush_day = [&] {
    if (n == 0) return true;
    JsonWriter w;
    w.start_object();
    w.kv("kind", "archive_day");
    w.kv("tenant", tenant);
    w.kv("day", day_string(day));
    w.kv("objects", static_cast<std::int64_t>(n));
    w.kv("bytes", static_cast<std::int64_t>(bytes));
    w.end_object();
    n = bytes = 0;
    return io.out->write(w.view());
  };
  Status st = a.list(f, [&](const ArchiveObject& obj) {
    s.objects++;
    s.bytes += obj.size;
    if (o.objects) {
      JsonWriter w;
      w.start_object();
      w.kv("kind", "archive_object");
      w.kv("tenant", obj.tenant);
      w.kv("day", day_string(obj.received_at));
      w.kv("batch_id", obj.batch_id);
      w.kv("bytes", static_cast<std::int64_t>(obj.size));
      w.kv("uri", obj.uri);
      w.end_object();
      return out_ok = io.out->write(w.view());
    }
    // Format 2 objects carry their exact received_at: group by its day.
    TimeNs obj_day = obj.received_at >= 0 ? obj.received_at - obj.received_at % kDay
                                          : obj.received_at - ((obj.received_at % kDay) + kDay) % kDay;
    if (obj.tenant != tenant || obj_day != day) {
      if (!(out_ok = flush_day())) return false;
      tenant = obj.tenant;
      day = obj_day;
    }
    n++;
    bytes += obj.size;
    return true;
  });
  if (!st) return st;
  if (out_ok) flush_day();
  return Status::ok();
}

Status run_prune(const Options& o, Archive& a, Io& io, Summary& s) {
  TimeNs cutoff = io.clock->now() - o.older_than;
  ArchiveFilter f = filter_of(o);
  f.to = std::min(o.to, cutoff - 1);
  Progress progress(io.progress, "objects pruned");
  Status fatal;
  bool out_ok = true;
  Status st = a.list_units(f, [&](const ArchiveObject& obj) {
    if (obj.received_at + kDay > cutoff) return true;  // the day is not wholly older
    s.objects++;
    s.bytes += obj.size;
    progress.update(s.objects);
    if (!o.dry_run) {
      Status r = a.remove(obj);
      if (r.code() == Code::kConflict) {  // a segment a writer still appends to
        log::warn(r.message());
        return true;
      }
      if (!r && r.code() != Code::kNotFound) {
        fatal = r;
        return false;
      }
      s.removed++;
    }
    JsonWriter w;
    w.start_object();
    w.kv("kind", "archive_pruned");
    w.kv("uri", obj.uri);
    w.kv("bytes", static_cast<std::int64_t>(obj.size));
    w.kv("dry_run", o.dry_run);
    w.end_object();
    return out_ok = io.out->write(w.view());
  });
  progress.finish();
  if (!st) return st;
  if (!fatal.is_ok()) return fatal;
  if (!o.dry_run) {
    auto stale = a.remove_stale(io.clock->now() - o.temp_age);
    if (!stale) return stale.status();
    if (*stale) log::info("removed " + std::to_string(*stale) + " leftover temp files of interrupted writes");
  }
  return Status::ok();
}

}  // namespace ep::archive_tool

namespace ep::archive_tool {
namespace {

// Files (objects or segments) and their bytes.
std::pair<std::uint64_t, std::uint64_t> footprint(Archive& a) {
  std::uint64_t n = 0, bytes = 0;
  (void)a.list_units({}, [&](const ArchiveObject& u) {
    n++;
    bytes += u.size;
    return true;
  });
  return {n, bytes};
}

// Copies every good object of src into dst (groups of --group), hashing the stream of
// copied bytes; corrupt objects are reported and left out.
Status copy_objects(const Options& o, Archive& src, Archive& dst, Summary& s, crypto::Sha256& digest) {
  std::vector<std::string> lines;
  std::vector<ArchivePut> puts;
  size_t group_bytes = 0;
  Status fatal;
  auto flush = [&] {
    std::vector<Result<std::string>> out;
    puts.clear();
    for (auto& l : lines) {
      rapidjson::Document doc;
      (void)parse_json(l, doc);  // checked when read
      puts.push_back({std::string(*get_string(doc, "tenant")), std::string(*get_string(doc, "batch_id")),
                      *get_time(doc, "received_at"), l});
    }
    Status st = dst.put_many(puts, out);
    for (size_t i = 0; st && i < out.size(); ++i)
      if (!out[i]) st = out[i].status().with_context("compact");
    s.written += lines.size();
    lines.clear();
    group_bytes = 0;
    return st;
  };
  Status st = src.scan({}, [&](const ArchiveObject& obj, std::string_view bytes, const Status& problem) {
    s.objects++;
    rapidjson::Document doc;
    Status c = problem.is_ok() ? check_object(bytes, obj, doc) : problem;
    if (!c) {
      s.corrupt++;
      log::emit(log::Level::kError, obj.uri, "corrupt, not compacted: " + c.message(), -1, Code::kData);
      return true;
    }
    s.bytes += bytes.size();
    digest.update(bytes);
    lines.emplace_back(bytes.substr(0, bytes.size() - 1));
    group_bytes += bytes.size();
    if (lines.size() >= o.group || group_bytes >= o.group_bytes) fatal = flush();
    return fatal.is_ok();
  });
  if (!st) return st;
  if (fatal.is_ok() && !lines.empty()) fatal = flush();
  return fatal;
}

}  // namespace

Status run_seal(const Options&, Archive& a, Io&, Summary&) {
  if (a.format() != 2) return Status::usage(a.uri() + ": format 1 has no segments (see compact)");
  return a.seal();
}

Status run_compact(const Options& o, Archive& a, Io& io, Summary& s) {
  if (o.into.empty()) return Status::usage("compact needs --into URI (a new file:// archive, format 2)");
  if (a.format() != 1) return Status::usage(a.uri() + ": already format 2");
  ArchiveOptions ao;
  ao.create_format = 2;
  auto opened = Archive::open(o.into, ao);
  if (!opened) return opened.status();
  Archive& dst = **opened;
  if (dst.format() != 2) return Status::usage("--into " + o.into + ": not a format 2 archive (file:// only)");
  bool empty = true;
  EP_RETURN_IF_ERROR(dst.list({}, [&](const ArchiveObject&) { return empty = false; }));
  if (!empty) return Status::usage("--into " + o.into + ": not empty");

  crypto::Sha256 before, after;
  EP_RETURN_IF_ERROR(copy_objects(o, a, dst, s, before));
  EP_RETURN_IF_ERROR(dst.seal());
  // The new archive replays what the old one held, byte for byte and in the same order.
  std::uint64_t replayed = 0;
  Status damaged;
  EP_RETURN_IF_ERROR(dst.scan({}, [&](const ArchiveObject& obj, std::string_view bytes, const Status& p) {
    if (!p.is_ok()) damaged = p.with_context(obj.uri);
    after.update(bytes);
    replayed++;
    return damaged.is_ok();
  }));
  if (!damaged.is_ok()) return damaged;
  if (replayed != s.written || before.finish() != after.finish())
    return Status::data("compact: the replay of " + o.into + " differs from " + a.uri() + " (" +
                        std::to_string(replayed) + " of " + std::to_string(s.written) + " batches)");
  auto [old_files, old_bytes] = footprint(a);
  auto [new_files, new_bytes] = footprint(dst);
  JsonWriter w;
  w.start_object();
  w.kv("kind", "archive_compacted");
  w.kv("from", a.uri());
  w.kv("into", dst.uri());
  w.kv("batches", static_cast<std::int64_t>(s.written));
  w.kv("files_before", static_cast<std::int64_t>(old_files));
  w.kv("bytes_before", static_cast<std::int64_t>(old_bytes));
  w.kv("files_after", static_cast<std::int64_t>(new_files));
  w.kv("bytes_after", static_cast<std::int64_t>(new_bytes));
  w.kv("replay_identical", true);
  w.end_object();
  io.out->write(w.view());
  if (s.corrupt) return Status::data(std::to_string(s.corrupt) + " corrupt objects not compacted");
  return Status::ok();
}

}  // namespace ep::archive_tool
