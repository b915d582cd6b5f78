// ep-archive ls and prune.
#include "archive_tool.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/progress.h"

namespace ep::archive_tool {
namespace {

constexpr TimeNs kDay = 86400 * kNsPerSec;

std::string day_string(TimeNs t) { return format_rfc3339(t).substr(0, 10); }

}  // namespace

Status run_ls(const Options& o, Archive& a, Io& io, Summary& s) {
  ArchiveFilter f;
  f.tenant = o.tenant;
  f.from = o.from;
  f.to = o.to;
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
    if (obj.tenant != tenant || obj.received_at != day) {
      if (!(out_ok = flush_day())) return false;
      tenant = obj.tenant;
      day = obj.received_at;
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
  ArchiveFilter f;
  f.tenant = o.tenant;
  f.from = o.from;
  f.to = std::min(o.to, cutoff - 1);
  Progress progress(io.progress, "prune: objects");
  Status fatal;
  bool out_ok = true;
  Status st = a.list(f, [&](const ArchiveObject& obj) {
    if (obj.received_at + kDay > cutoff) return true;  // the day is not wholly older
    s.objects++;
    s.bytes += obj.size;
    progress.update(s.objects);
    if (!o.dry_run) {
      Status r = a.remove(obj);
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
