// ep-archive replay and verify: read objects back, check them, emit or report.
#include "archive_tool.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/progress.h"
#include "ep/records.h"

namespace ep::archive_tool {
namespace {

ArchiveFilter filter_of(const Options& o) {
  ArchiveFilter f;
  f.tenant = o.tenant;
  f.from = o.from;
  f.to = o.to;
  return f;
}

void set_string(rapidjson::Document& doc, const char* key, std::string_view v) {
  auto& alloc = doc.GetAllocator();
  rapidjson::Value val(v.data(), static_cast<rapidjson::SizeType>(v.size()), alloc);
  auto it = doc.FindMember(key);
  if (it != doc.MemberEnd())
    it->value = std::move(val);
  else
    doc.AddMember(rapidjson::Value(key, alloc), std::move(val), alloc);
}

// A verify finding, one NDJSON record on stdout.
bool report(Io& io, std::string_view status, const ArchiveObject& o, std::string_view reason) {
  JsonWriter w;
  w.start_object();
  w.kv("kind", "verify");
  w.kv("status", status);
  w.kv("uri", o.uri);
  w.kv("tenant", o.tenant);
  w.kv("batch_id", o.batch_id);
  w.kv("reason", reason);
  w.end_object();
  return io.out->write(w.view());
}

}  // namespace

Status run_replay(const Options& o, Archive& a, Io& io, Summary& s) {
  Progress progress(io.progress, "replay: objects");
  Status fatal;
  Status st = a.list(filter_of(o), [&](const ArchiveObject& obj) {
    s.objects++;
    progress.update(s.objects);
    auto bytes = a.get(obj);
    if (!bytes) {
      if (bytes.status().code() == Code::kNotFound) return true;  // pruned meanwhile
      fatal = bytes.status();
      return false;
    }
    s.bytes += bytes->size();
    rapidjson::Document doc;
    if (Status c = check_object(*bytes, obj, doc); !c) {
      // Never replay a damaged batch: report it, count it, go on (exit 65).
      s.corrupt++;
      log::emit(log::Level::kError, obj.uri, "corrupt, not replayed: " + c.message(), -1, Code::kData);
      if (io.strict) {
        fatal = Status::data(obj.uri + ": corrupt (--strict)");
        return false;
      }
      return true;
    }
    if (!o.device.empty()) {
      auto dev = get_string(doc, "device");
      if (!dev || *dev != o.device) return true;
    }
    TimeNs received = *get_time(doc, "received_at");  // checked by check_object
    if (received < o.from || received > o.to) return true;
    set_string(doc, "source", "replay");
    if (!io.out->write(to_json(doc))) return false;  // broken pipe: stop quietly
    s.passed++;
    return true;
  });
  progress.finish();
  if (!st) return st;
  if (!fatal.is_ok()) return fatal;
  if (s.corrupt) return Status::data(std::to_string(s.corrupt) + " corrupt objects not replayed");
  return Status::ok();
}

Status run_verify(const Options& o, Archive& a, Io& io, Summary& s) {
  Progress progress(io.progress, "verify: objects");
  Status fatal;
  bool out_ok = true;
  // Checks one object; false stops the walk.
  auto check = [&](const ArchiveObject& obj, std::string_view expect_sha) {
    s.objects++;
    progress.update(s.objects);
    auto bytes = a.get(obj);
    if (!bytes) {
      if (bytes.status().code() != Code::kNotFound) {
        fatal = bytes.status();
        return false;
      }
      s.missing++;
      return out_ok = report(io, "missing", obj, "no such object");
    }
    s.bytes += bytes->size();
    rapidjson::Document doc;
    Status c = check_object(*bytes, obj, doc);
    if (c && !expect_sha.empty() && *get_string(doc, "sha256") != expect_sha)
      c = Status::data("sha256: differs from the expected batch record");
    if (!c) {
      s.corrupt++;
      return out_ok = report(io, "corrupt", obj, c.message());
    }
    return true;
  };

  if (o.expect.empty()) {
    Status st = a.list(filter_of(o), [&](const ArchiveObject& obj) { return check(obj, {}); });
    if (!st) return st;
  } else {
    // The objects named by batch records (what ep-ingest acknowledged) must all exist.
    LineReader reader(o.expect);
    Line line;
    while (reader.next(line)) {
      if (line.text.empty()) continue;
      rapidjson::Document doc;
      Batch b;
      Status ps = line.too_long ? Status::data("line too long") : parse_json(line.text, doc);
      if (ps && kind_of(doc) != Kind::kBatch) ps = Status::data("not a batch record");
      if (ps) ps = parse_record(doc, b);
      if (!ps) {
        s.rejected++;
        log::reject(line.stream, line.number, ps.message());
        continue;
      }
      if (!o.tenant.empty() && b.tenant != o.tenant) continue;
      if (b.received_at < o.from || b.received_at > o.to) continue;
      if (!check(a.locate(b.tenant, b.batch_id, b.received_at), b.sha256)) break;
    }
    if (!reader.status().is_ok()) return reader.status();
  }
  progress.finish();
  if (!fatal.is_ok()) return fatal;
  if (!out_ok) return Status::ok();  // broken pipe
  if (s.corrupt || s.missing)
    return Status::data(std::to_string(s.corrupt) + " corrupt and " + std::to_string(s.missing) +
                        " missing objects");
  if (s.rejected) return Status::data(std::to_string(s.rejected) + " --expect records rejected");
  return Status::ok();
}

}  // namespace ep::archive_tool
