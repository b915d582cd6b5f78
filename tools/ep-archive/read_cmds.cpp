// ep-archive replay and verify: read objects back, check them, emit or report.
#include <initializer_list>
#include <map>
#include <optional>
#include <set>

#include "archive_tool.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/progress.h"
#include "ep/records.h"

namespace ep::archive_tool {
namespace {

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

// UUIDv7 batch ids carry their creation time: the days around it are searched first.
std::optional<TimeNs> uuid_v7_time(std::string_view id) {
  if (id.size() != 36 || id[14] != '7') return std::nullopt;
  std::int64_t ms = 0;
  for (char c : std::string(id.substr(0, 8)) + std::string(id.substr(9, 4))) {
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (v < 0) return std::nullopt;
    ms = ms * 16 + v;
  }
  return ms * 1'000'000;
}

// Format 2 replay: the record passed its CRC (and was validated when archived), so it is
// emitted with "source" set to "replay" by splicing, without a parse. nullopt when the
// line needs the full path (no top-level "source", an escaped device name, odd shape).
std::optional<std::string> fast_replay_line(std::string_view line, const std::string& device, bool& skip,
                                            std::vector<JsonMember>& members) {
  skip = false;
  bool ok = device.empty() ? top_level_members(line, members, {"source"})
                           : top_level_members(line, members, {"source", "device"});
  if (!ok) return std::nullopt;
  const JsonMember* source = nullptr;
  for (const auto& m : members) {
    if (m.key == "source") source = &m;
    if (m.key == "device" && !device.empty()) {
      std::string_view v = line.substr(m.value_begin, m.value_end - m.value_begin);
      if (v.size() < 2 || v.front() != '"' || v.find('\\') != std::string_view::npos) return std::nullopt;
      skip = v.substr(1, v.size() - 2) != device;
    }
  }
  if (!source || line.substr(source->value_begin, 1) != "\"") return std::nullopt;
  std::string out;
  out.reserve(line.size() + 8);
  out.append(line.substr(0, source->value_begin));
  out.append("\"replay\"");
  out.append(line.substr(source->value_end));
  return out;
}

}  // namespace

ArchiveFilter filter_of(const Options& o) {
  ArchiveFilter f;
  f.tenant = o.tenant;
  f.from = o.from;
  f.to = o.to;
  return f;
}

Status run_replay(const Options& o, Archive& a, Io& io, Summary& s) {
  Progress progress(io.progress, "objects replayed");
  std::set<std::string, std::less<>> ids(o.batch_ids.begin(), o.batch_ids.end());
  Status fatal;
  bool out_ok = true;
  std::vector<JsonMember> members;
  Status st = a.scan(filter_of(o), [&](const ArchiveObject& obj, std::string_view bytes, const Status& problem) {
    if (!ids.empty() && !obj.batch_id.empty() && !ids.contains(obj.batch_id)) return true;
    s.objects++;
    progress.update(s.objects);
    s.bytes += bytes.size();
    if (a.format() == 2 && problem.is_ok() && !bytes.empty()) {
      if (obj.received_at < o.from || obj.received_at > o.to) return true;
      bool skip = false;
      if (auto line = fast_replay_line(bytes.substr(0, bytes.size() - 1), o.device, skip, members)) {
        if (skip) return true;
        if (!(out_ok = io.out->write(*line))) return false;
        s.passed++;
        return true;
      }
    }
    rapidjson::Document doc;
    Status c = problem.is_ok() ? check_object(bytes, obj, doc) : problem;
    if (!c) {
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
    if (!(out_ok = io.out->write(to_json(doc)))) return false;  // broken pipe: stop quietly
    s.passed++;
    return true;
  });
  progress.finish();
  if (!st) return st;
  if (!fatal.is_ok()) return fatal;
  if (!out_ok) return Status::ok();
  if (s.corrupt) return Status::data(std::to_string(s.corrupt) + " corrupt objects not replayed");
  return Status::ok();
}

Status run_get(const Options& o, Archive& a, Io& io, Summary& s) {
  if (o.batch_ids.size() != 1) return Status::usage("get needs one BATCH_ID");
  const std::string& id = o.batch_ids.front();
  std::optional<std::string> found;
  Status bad;
  auto look = [&](const ArchiveFilter& f) {
    return a.scan(f, [&](const ArchiveObject& obj, std::string_view bytes, const Status& problem) {
      if (obj.batch_id != id) return true;
      s.objects++;
      rapidjson::Document doc;
      Status c = problem.is_ok() ? check_object(bytes, obj, doc) : problem;
      if (!c) {
        bad = Status::data(obj.uri + ": corrupt: " + c.message());
        return true;
      }
      found.emplace(bytes.substr(0, bytes.size() - 1));
      return false;
    });
  };
  ArchiveFilter f = filter_of(o);
  if (auto t = uuid_v7_time(id)) {
    constexpr TimeNs kDay = 86400 * kNsPerSec;
    ArchiveFilter near = f;
    near.from = std::max(f.from, *t - kDay);
    near.to = std::min(f.to, *t + kDay);
    if (near.from <= near.to) EP_RETURN_IF_ERROR(look(near));
  }
  if (!found) EP_RETURN_IF_ERROR(look(f));
  if (found) {
    s.passed++;
    s.bytes += found->size();
    io.out->write(*found);
    return Status::ok();
  }
  if (!bad.is_ok()) return bad;
  return Status::not_found("batch " + id + ": not in " + a.uri());
}

Status run_verify(const Options& o, Archive& a, Io& io, Summary& s) {
  Progress progress(io.progress, "objects verified");
  Status fatal;
  bool out_ok = true;
  // Checks one object (or reports the problem found in its place); false stops the walk.
  auto check = [&](const ArchiveObject& obj, std::string_view bytes, Status c, std::string_view expect_sha) {
    s.objects++;
    progress.update(s.objects);
    s.bytes += bytes.size();
    rapidjson::Document doc;
    if (c) c = check_object(bytes, obj, doc);
    if (c && !expect_sha.empty() && *get_string(doc, "sha256") != expect_sha)
      c = Status::data("sha256: differs from the expected batch record");
    if (!c) {
      s.corrupt++;
      return out_ok = report(io, "corrupt", obj, c.message());
    }
    return true;
  };
  auto missing = [&](const ArchiveObject& obj) {
    s.objects++;
    s.missing++;
    return out_ok = report(io, "missing", obj, "no such object");
  };

  if (o.expect.empty()) {
    Status st = a.scan(filter_of(o), [&](const ArchiveObject& obj, std::string_view bytes, const Status& p) {
      return check(obj, bytes, p, {});
    });
    if (!st) return st;
  } else {
    // The objects named by batch records (what ep-ingest acknowledged) must all exist.
    // Format 1 fetches each; format 2 reads each tenant's day once.
    std::map<std::pair<std::string, std::int64_t>, std::map<std::string, std::pair<std::string, TimeNs>>> days;
    constexpr TimeNs kDay = 86400 * kNsPerSec;
    LineReader reader(o.expect);
    Line line;
    bool go = true;
    while (go && reader.next(line)) {
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
      if (a.format() == 2) {
        TimeNs day = b.received_at >= 0 ? b.received_at / kDay : -((-b.received_at + kDay - 1) / kDay);
        days[{b.tenant, day}][b.batch_id] = {b.sha256, b.received_at};
        continue;
      }
      ArchiveObject obj = a.locate(b.tenant, b.batch_id, b.received_at);
      auto bytes = a.get(obj);
      if (bytes) go = check(obj, *bytes, Status::ok(), b.sha256);
      else if (bytes.status().code() == Code::kNotFound) go = missing(obj);
      else if (bytes.status().code() == Code::kData) go = check(obj, {}, bytes.status(), b.sha256);
      else fatal = bytes.status(), go = false;
    }
    if (!reader.status().is_ok()) return reader.status();
    for (auto& [key, want] : days) {
      if (!go) break;
      ArchiveFilter f;
      f.tenant = key.first;
      f.from = key.second * kDay;
      f.to = f.from + kDay - 1;
      Status st = a.scan(f, [&](const ArchiveObject& obj, std::string_view bytes, const Status& p) {
        auto it = want.find(obj.batch_id);
        if (p.is_ok() && it == want.end()) return true;  // not named by --expect
        go = check(obj, bytes, p, it == want.end() ? std::string_view{} : std::string_view(it->second.first));
        if (it != want.end()) want.erase(it);
        return go;
      });
      if (!st) return st;
      for (auto& [id, v] : want)
        if (go) go = missing(a.locate(key.first, id, v.second));
    }
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
