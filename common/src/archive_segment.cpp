// file:// archive backend, format 2 (docs/archive-format.md, "Version 2"): per tenant
// and day, batches are appended to an active segment (seg-<created ns>-<tag>.wal) and a
// group of puts is made durable with one fdatasync; full or old segments are sealed in
// the background into <stem>.seg (zstd chunks, index, footer). The record framing lives
// in segment_log.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "archive_internal.h"
#include "ep/crypto.h"
#include "ep/fsutil.h"
#include "ep/log.h"
#include "ep/segment_log.h"

namespace ep::archive_detail {
namespace {

constexpr std::string_view kActiveExt = ".wal", kSealedExt = ".seg";
// Identical re-puts are recognised against this many batches per tenant and day.
constexpr size_t kMaxKnown = 1 << 20;

Status sys_error(const std::string& ctx, int err) { return Status::io(ctx + ": " + std::strerror(err)); }

// "seg-<20-digit creation time ns>-<node id>.<6 random base62>"; sorts by creation.
std::string new_stem(TimeNs now, const std::string& node) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "seg-%020lld-", static_cast<long long>(now));
  return buf + node + "." + crypto::random_base62(6);
}
std::optional<TimeNs> stem_time(std::string_view stem) { return segment_stem_time(stem); }

// This host's name and process id, as a segment tag: [0-9A-Za-z-] (others become '-'),
// at most 40 characters of the name.
std::string default_node_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "host");
  std::string out;
  for (const char* c = host; *c && out.size() < 40; ++c)
    out.push_back(std::isalnum(static_cast<unsigned char>(*c)) ? *c : '-');
  return out + ".p" + std::to_string(::getpid());
}

// The segment files of a day directory: one per stem, the sealed form when both exist
// (a seal interrupted before the active file was removed).
struct SegFile {
  std::string stem, name;
  bool sealed = false;
  bool also_active = false;
};
Result<std::vector<SegFile>> segment_files(const std::string& dir) {
  auto names = regular_files(dir);
  if (!names) return names.status();
  std::map<std::string, SegFile> by_stem;
  for (const auto& n : *names) {
    bool sealed = n.ends_with(kSealedExt), active = n.ends_with(kActiveExt);
    if (!sealed && !active) continue;
    std::string stem = n.substr(0, n.size() - 4);
    if (!stem_time(stem)) continue;
    SegFile& f = by_stem[stem];
    f.stem = stem;
    if (sealed) {
      f.also_active = !f.name.empty();
      f.name = n;
      f.sealed = true;
    } else if (f.name.empty()) {
      f.name = n;
    } else {
      f.also_active = true;
    }
  }
  std::vector<SegFile> out;
  for (auto& [k, v] : by_stem) out.push_back(std::move(v));
  return out;
}

std::string with_newline(std::string_view line) {
  std::string s;
  s.reserve(line.size() + 1);
  s.append(line);
  s.push_back('\n');
  return s;
}

struct Known {
  std::uint32_t crc = 0, size = 0;
  std::uint64_t gen = 0, end = 0;  // active generation and offset, for the sync of a re-put
};

// One tenant's day: its active segment and the batch ids stored that day.
struct DayWriter {
  std::mutex mu;
  bool ready = false;
  std::string rel, dir;
  std::shared_ptr<seglog::Active> active;
  std::uint64_t gen = 1;  // bumped at every roll; older generations are durable
  std::unordered_map<std::string, Known> ids;
};

class SegmentArchive final : public Archive {
 public:
  SegmentArchive(std::string uri, std::string root, const ArchiveOptions& o)
      : uri_(std::move(uri)), root_(std::move(root)), opts_(o),
        node_(o.node_id.empty() ? default_node_id() : o.node_id) {}
  ~SegmentArchive() override;

  Status put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) override;
  Status list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) override;
  Status scan(const ArchiveFilter& f, const ScanFn& fn) override;
  Status list_units(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) override;
  Result<std::string> get(const ArchiveObject& o) override;
  Status remove(const ArchiveObject& o) override;
  Result<std::uint64_t> remove_stale(TimeNs before) override;
  Status seal() override;
  Status segments(const ArchiveFilter& f, const std::function<bool(const SegmentFile&)>& fn) override;
  ArchiveStats stats() const override;
  const std::string& uri() const override { return uri_; }
  int format() const override { return 2; }
  ArchiveObject locate(const std::string& tenant, const std::string& batch_id, TimeNs received_at) const override;

 private:
  Result<DayWriter*> writer_for(const std::string& tenant, TimeNs received_at);
  Status init(DayWriter& w);
  Status roll(DayWriter& w);  // under w.mu
  void seal_later(std::shared_ptr<seglog::Active> a);
  Status seal_now(const seglog::Active& a);
  void sealer_loop();
  // Scans one day's segment files; fn as for scan().
  bool scan_day(const DayDir& d, const ScanFn& fn, Status& fatal);
  std::string object_key(const std::string& rel_day, std::string_view batch_id) const {
    return rel_day + "#" + std::string(batch_id);
  }
  // The object of a batch stored in the day directory rel_day.
  ArchiveObject object_of(const std::string& rel_day, std::string_view tenant, std::string_view batch_id,
                          TimeNs received_at, std::uint64_t size) const {
    return segment_object(uri_, rel_day, tenant, batch_id, received_at, size);
  }

  std::string uri_, root_;
  ArchiveOptions opts_;
  std::string node_;
  mutable std::mutex mu_;  // writers_, seal queue, stop_
  std::map<std::string, std::unique_ptr<DayWriter>> writers_;
  std::condition_variable seal_cv_;
  std::deque<std::shared_ptr<seglog::Active>> to_seal_;
  size_t sealing_ = 0;
  std::uint64_t sealing_bytes_ = 0;  // of the segments queued or being sealed
  bool stop_ = false;
  std::thread sealer_;
  Status seal_error_;
};

SegmentArchive::~SegmentArchive() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    seal_cv_.notify_all();
  }
  if (sealer_.joinable()) sealer_.join();
}

Result<DayWriter*> SegmentArchive::writer_for(const std::string& tenant, TimeNs received_at) {
  std::string rel = day_prefix(tenant, received_at);
  rel.pop_back();
  std::lock_guard lock(mu_);
  auto& w = writers_[rel];
  if (!w) {
    w = std::make_unique<DayWriter>();
    w->rel = rel;
    w->dir = root_ + "/" + rel;
  }
  if (!sealer_.joinable()) sealer_ = std::thread([this] { sealer_loop(); });
  return w.get();
}

// First use of a day in this process: directories, the ids already stored, and an
// active segment (an unlocked one left by an earlier run is recovered and continued).
Status SegmentArchive::init(DayWriter& w) {
  std::set<std::string> sync;
  EP_RETURN_IF_ERROR(ensure_dirs(root_, w.rel, sync));
  for (const auto& d : sync) EP_RETURN_IF_ERROR(fs::fsync_dir(d));
  auto files = segment_files(w.dir);
  if (!files) return files.status();
  auto remember = [&](std::string_view id, std::uint32_t crc, std::uint32_t size) {
    if (w.ids.size() < kMaxKnown) w.ids[std::string(id)] = Known{crc, size, 0, 0};
  };
  for (const auto& f : *files) {
    std::string path = w.dir + "/" + f.name;
    if (f.sealed) {
      if (f.also_active) ::unlink((w.dir + "/" + f.stem + std::string(kActiveExt)).c_str());
      if (auto idx = seglog::read_index(path)) {
        for (const auto& e : *idx) remember(e.batch_id, e.crc, e.size);
        continue;
      }
      seglog::Visitor v;
      v.record = [&](const seglog::Found& r) { return remember(r.batch.batch_id, r.crc, r.size), true; };
      v.problem = [](const seglog::Problem&) { return true; };
      EP_RETURN_IF_ERROR(seglog::scan_file(path, v));
      continue;
    }
    seglog::Recovery rec;
    auto a = seglog::Active::adopt(path, *stem_time(f.stem), rec, [&](const seglog::Found& r) {
      remember(r.batch.batch_id, r.crc, r.size);
    }, opts_.preallocate_bytes);
    if (!a) return a.status();
    if (rec.torn_bytes)
      log::warn(uri_ + "/" + w.rel + "/" + f.name + ": torn tail of " + std::to_string(rec.torn_bytes) +
                " bytes after offset " + std::to_string(rec.good_end) + " (an interrupted write, never acknowledged) moved to " +
                rec.torn_path.substr(rec.torn_path.rfind('/') + 1));
    if (rec.damaged)
      log::emit(log::Level::kError, uri_ + "/" + w.rel + "/" + f.name,
                "damaged, not appended to (ep-archive verify reports it): " + rec.reason, -1, Code::kData);
    if (!*a) continue;  // another writer's, or damaged
    if (!w.active) w.active = std::move(*a);
    else seal_later(std::move(*a));
  }
  if (!w.active) {
    TimeNs now = SystemClock::instance().now();
    auto a = seglog::Active::create(w.dir + "/" + new_stem(now, node_) + std::string(kActiveExt), now, opts_.preallocate_bytes);
    if (!a) return a.status();
    w.active = std::move(*a);
    EP_RETURN_IF_ERROR(fs::fsync_dir(w.dir));
  }
  w.ready = true;
  return Status::ok();
}

Status SegmentArchive::roll(DayWriter& w) {
  // Everything appended so far becomes durable now, so re-puts of older generations
  // need no sync; sealing happens in the background.
  std::shared_ptr<seglog::Active> old = std::move(w.active);
  if (!old->failed()) {
    EP_RETURN_IF_ERROR(old->sync_to(old->size()));
    seal_later(old);
  }
  TimeNs now = SystemClock::instance().now();
  auto a = seglog::Active::create(w.dir + "/" + new_stem(now, node_) + std::string(kActiveExt), now, opts_.preallocate_bytes);
  if (!a) {
    w.active = std::move(old);
    return a.status();
  }
  w.active = std::move(*a);
  w.gen++;
  if (w.ids.size() >= kMaxKnown) w.ids.clear();
  return fs::fsync_dir(w.dir);
}

Status SegmentArchive::put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) {
  out.clear();
  out.reserve(puts.size());
  // Puts grouped by tenant and day, in input order within each.
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < puts.size(); ++i) {
    out.emplace_back(Status::software("archive put: not attempted"));
    if (Status s = validate_put(puts[i]); !s) {
      out[i] = s.with_context(uri_);
      continue;
    }
    std::string rel = day_prefix(puts[i].tenant, puts[i].received_at);
    rel.pop_back();
    groups[rel].push_back(i);
  }
  struct Sync {
    std::shared_ptr<seglog::Active> seg;
    std::uint64_t end;
    std::vector<size_t> items;
  };
  std::vector<Sync> syncs;
  std::string buf;
  for (auto& [rel, items] : groups) {
    auto wr = writer_for(puts[items[0]].tenant, puts[items[0]].received_at);
    if (!wr) {
      for (size_t i : items) out[i] = wr.status();
      continue;
    }
    DayWriter& w = **wr;
    std::unique_lock lock(w.mu);
    Status s = w.ready ? Status::ok() : init(w);
    TimeNs now = SystemClock::instance().now();
    if (s && (w.active->failed() || w.active->size() >= opts_.segment_bytes ||
              now - w.active->created() >= opts_.segment_age))
      s = roll(w);
    if (!s) {
      for (size_t i : items) out[i] = s.with_context(uri_);
      continue;
    }
    buf.clear();
    std::vector<size_t> appended;
    std::vector<Known*> known;  // of the appended
    Sync earlier{w.active, 0, {}};  // re-puts of batches not yet known durable
    for (size_t i : items) {
      const ArchivePut& p = puts[i];
      std::string_view line = p.bytes;
      while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
      // Encoded straight into the group's bytes; taken back out unless it is new.
      size_t at = buf.size();
      std::uint32_t crc = seglog::encode_batch(buf, {p.tenant, p.batch_id, p.received_at, line});
      size_t rec_size = buf.size() - at;
      std::string uri = uri_ + "/" + object_key(rel, p.batch_id);
      auto [it, fresh] = w.ids.try_emplace(p.batch_id);
      if (!fresh) {
        buf.resize(at);
        if (it->second.crc != crc || it->second.size != rec_size) {
          out[i] = Status::conflict(uri + ": batch exists with different content (archive objects are immutable)");
        } else {
          out[i] = uri;
          if (it->second.gen == w.gen) {
            earlier.end = std::max(earlier.end, it->second.end);
            earlier.items.push_back(i);
          }
        }
        continue;
      }
      it->second = Known{crc, static_cast<std::uint32_t>(rec_size), w.gen, 0};
      appended.push_back(i);
      known.push_back(&it->second);  // element pointers survive a rehash
      out[i] = uri;
    }
    if (!buf.empty()) {
      std::uint64_t end = 0;
      Status a = w.active->append(buf, end);
      for (size_t k = 0; k < appended.size(); ++k) {
        if (a) {
          known[k]->end = end;
        } else {
          w.ids.erase(puts[appended[k]].batch_id);
          out[appended[k]] = a;
        }
      }
      if (a) syncs.push_back(Sync{w.active, end, std::move(appended)});
    }
    if (!earlier.items.empty()) syncs.push_back(std::move(earlier));
  }
  // The group commit: one fdatasync per segment covers everything appended above (and
  // whatever other threads appended meanwhile).
  for (auto& s : syncs) {
    Status st = s.seg->sync_to(s.end);
    if (!st)
      for (size_t i : s.items) out[i] = st;
  }
  return Status::ok();
}

void SegmentArchive::seal_later(std::shared_ptr<seglog::Active> a) {
  std::lock_guard lock(mu_);
  sealing_bytes_ += a->size();
  to_seal_.push_back(std::move(a));
  if (!sealer_.joinable()) sealer_ = std::thread([this] { sealer_loop(); });
  seal_cv_.notify_all();
}

Status SegmentArchive::seal_now(const seglog::Active& a) {
  const std::string& path = a.path();
  size_t slash = path.rfind('/');
  std::string dir = path.substr(0, slash);
  std::string stem = path.substr(slash + 1, path.size() - slash - 1 - kActiveExt.size());
  std::string tmp = dir + "/.seal-" + stem + ".tmp";
  std::string sealed = dir + "/" + stem + std::string(kSealedExt);
  auto data = fs::read_file(path);
  if (!data) return data.status();
  seglog::SealOptions so;
  so.chunk_bytes = opts_.chunk_bytes;
  so.zstd_level = opts_.zstd_level;
  auto n = seglog::write_sealed(*data, tmp, so);
  if (!n) return n.status();
  if (::rename(tmp.c_str(), sealed.c_str()) < 0) return sys_error(sealed, errno);
  EP_RETURN_IF_ERROR(fs::fsync_dir(dir));
  if (::unlink(path.c_str()) < 0) return sys_error(path, errno);
  EP_RETURN_IF_ERROR(fs::fsync_dir(dir));
  struct stat st;
  if (opts_.on_sealed && ::stat(sealed.c_str(), &st) == 0) opts_.on_sealed(sealed, static_cast<std::uint64_t>(st.st_size));
  return Status::ok();
}

ArchiveStats SegmentArchive::stats() const {
  std::vector<DayWriter*> ws;  // never erased: the pointers stay valid
  {
    std::lock_guard lock(mu_);
    for (auto& [rel, w] : writers_) ws.push_back(w.get());
  }
  // Actives first, then what is being sealed: bytes moving from one to the other are
  // counted twice rather than not at all.
  ArchiveStats st;
  for (DayWriter* w : ws) {
    std::lock_guard wl(w->mu);
    if (w->active && w->active->size() > seglog::kActiveMagic.size()) st.active_bytes += w->active->size();
  }
  std::lock_guard lock(mu_);
  st.active_bytes += sealing_bytes_;
  return st;
}

void SegmentArchive::sealer_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    // Idle actives are sealed by age too: look every second (or at the segment age).
    auto wait = std::chrono::nanoseconds(std::min<TimeNs>(opts_.segment_age, kNsPerSec));
    seal_cv_.wait_for(lock, wait, [&] { return stop_ || !to_seal_.empty(); });
    if (to_seal_.empty()) {
      if (stop_) return;
      TimeNs now = SystemClock::instance().now();
      for (auto& [rel, w] : writers_) {
        std::unique_lock wl(w->mu, std::try_to_lock);
        if (!wl || !w->ready || !w->active || now - w->active->created() < opts_.segment_age) continue;
        if (w->active->size() <= seglog::kActiveMagic.size()) continue;  // empty: nothing to seal
        lock.unlock();
        if (Status s = roll(*w); !s) log::error(s);
        wl.unlock();
        lock.lock();
      }
      continue;
    }
    std::shared_ptr<seglog::Active> a = std::move(to_seal_.front());
    to_seal_.pop_front();
    sealing_++;
    lock.unlock();
    Status s = seal_now(*a);
    if (!s) log::emit(log::Level::kError, a->path(), "seal failed (kept as an active segment): " + s.message(), -1, s.code());
    std::uint64_t bytes = a->size();
    a.reset();
    lock.lock();
    sealing_--;
    sealing_bytes_ -= std::min(sealing_bytes_, bytes);
    if (!s) seal_error_ = s;
    seal_cv_.notify_all();
  }
}

Status SegmentArchive::seal() {
  // Actives of this process, then every unlocked active segment left in the archive.
  std::vector<DayWriter*> ws;
  {
    std::lock_guard lock(mu_);
    for (auto& [rel, w] : writers_) ws.push_back(w.get());
  }
  for (DayWriter* w : ws) {
    std::lock_guard wl(w->mu);
    if (w->ready && w->active && w->active->size() > seglog::kActiveMagic.size()) EP_RETURN_IF_ERROR(roll(*w));
  }
  std::unique_lock lock(mu_);
  seal_cv_.wait(lock, [&] { return to_seal_.empty() && sealing_ == 0; });
  Status err = seal_error_;
  lock.unlock();
  EP_RETURN_IF_ERROR(err);
  Status fatal;
  Status st = walk_days(root_, ArchiveFilter{}, [&](const DayDir& d) {
    auto files = segment_files(d.path);
    if (!files) return (fatal = files.status()).is_ok();
    for (const auto& f : *files) {
      if (f.sealed) continue;
      seglog::Recovery rec;
      auto a = seglog::Active::adopt(d.path + "/" + f.name, *stem_time(f.stem), rec, nullptr);
      if (!a) return (fatal = a.status()).is_ok();
      if (!*a || (*a)->size() <= seglog::kActiveMagic.size()) continue;
      if (Status s = seal_now(**a); !s) return (fatal = s).is_ok();
    }
    return true;
  });
  if (!st) return st;
  return fatal;
}

bool SegmentArchive::scan_day(const DayDir& d, const ScanFn& fn, Status& fatal) {
  auto files = segment_files(d.path);
  if (!files) {
    fatal = files.status();
    return false;
  }
  bool go = true;
  for (const auto& f : *files) {
    seglog::Visitor v = segment_visitor(uri_, d, d.rel + "/" + f.name, fn, go);
    Status s = seglog::scan_file(d.path + "/" + f.name, v);
    if (!s) {
      if (::access((d.path + "/" + f.name).c_str(), F_OK) != 0) continue;  // sealed or pruned meanwhile
      fatal = s;
      return false;
    }
    if (!go) return false;
  }
  return true;
}

Status SegmentArchive::scan(const ArchiveFilter& f, const ScanFn& fn) {
  Status fatal;
  Status st = walk_days(root_, f, [&](const DayDir& d) { return scan_day(d, fn, fatal); });
  if (!st) return st;
  return fatal;
}

Status SegmentArchive::list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) {
  // Objects from the sealed segments' indexes (no decompression) and the active ones' records.
  Status fatal;
  Status st = walk_days(root_, f, [&](const DayDir& d) {
    auto files = segment_files(d.path);
    if (!files) return (fatal = files.status()).is_ok();
    for (const auto& file : *files) {
      std::string path = d.path + "/" + file.name;
      auto idx = file.sealed ? seglog::read_index(path) : Result<std::vector<seglog::IndexEntry>>(Status::data(""));
      if (idx) {
        for (const auto& e : *idx)
          if (!fn(object_of(d.rel, d.tenant, e.batch_id, e.received_at, e.size))) return false;
        continue;
      }
      if (idx.status().code() == Code::kIo && ::access(path.c_str(), F_OK) == 0) return (fatal = idx.status()).is_ok();
      bool go = true;
      seglog::Visitor v;
      v.record = [&](const seglog::Found& r) {
        return go = fn(object_of(d.rel, r.batch.tenant, r.batch.batch_id, r.batch.received_at, r.size));
      };
      v.problem = [](const seglog::Problem&) { return true; };  // verify reports damage
      if (Status s = seglog::scan_file(path, v); !s && ::access(path.c_str(), F_OK) == 0) return (fatal = s).is_ok();
      if (!go) return false;
    }
    return true;
  });
  if (!st) return st;
  return fatal;
}

Status SegmentArchive::segments(const ArchiveFilter& f, const std::function<bool(const SegmentFile&)>& fn) {
  Status fatal;
  Status st = walk_days(root_, f, [&](const DayDir& d) {
    auto files = segment_files(d.path);
    if (!files) return (fatal = files.status()).is_ok();
    for (const auto& file : *files)
      if (!fn(SegmentFile{d.tenant, d.day, d.rel, file.stem, d.path + "/" + file.name, file.sealed})) return false;
    return true;
  });
  if (!st) return st;
  return fatal;
}

Status SegmentArchive::list_units(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) {
  Status fatal;
  Status st = walk_days(root_, f, [&](const DayDir& d) {
    auto files = regular_files(d.path);
    if (!files) return (fatal = files.status()).is_ok();
    for (const auto& name : *files) {
      if (!name.ends_with(kSealedExt) && !name.ends_with(kActiveExt)) continue;
      struct stat st;
      if (::stat((d.path + "/" + name).c_str(), &st) != 0) continue;
      ArchiveObject o;
      o.tenant = d.tenant;
      o.received_at = day_start(d.day);
      o.key = d.rel + "/" + name;
      o.uri = uri_ + "/" + o.key;
      o.size = static_cast<std::uint64_t>(st.st_size);
      if (!fn(o)) return false;
    }
    return true;
  });
  if (!st) return st;
  return fatal;
}

ArchiveObject SegmentArchive::locate(const std::string& tenant, const std::string& batch_id,
                                     TimeNs received_at) const {
  std::string rel = day_prefix(tenant, received_at);
  rel.pop_back();
  return object_of(rel, tenant, batch_id, received_at, 0);
}

Result<std::string> SegmentArchive::get(const ArchiveObject& o) {
  return find_in_day(o, [&](const DayDir& day, const ScanFn& fn) {
    DayDir d = day;
    d.path = root_ + "/" + d.rel;
    Status fatal;
    scan_day(d, fn, fatal);
    return fatal;
  });
}

Status SegmentArchive::remove(const ArchiveObject& o) {
  // A segment file (list_units); never one that a writer holds open.
  size_t slash = o.key.rfind('/');
  auto kp = slash == std::string::npos ? std::nullopt : parse_key(o.key.substr(0, slash) + "/x.json");
  std::string name = slash == std::string::npos ? std::string() : o.key.substr(slash + 1);
  if (!kp || (!name.ends_with(kSealedExt) && !name.ends_with(kActiveExt)) ||
      !stem_time(name.substr(0, name.size() - 4)))
    return Status::data(o.key + ": not a segment file");
  std::string path = root_ + "/" + o.key;
  if (name.ends_with(kActiveExt)) {
    seglog::Recovery rec;
    auto a = seglog::Active::adopt(path, 0, rec, nullptr);  // takes the lock, or fails to
    if (a && !*a && !rec.damaged) return Status::conflict(o.uri + ": in use by a writer");
  }
  if (::unlink(path.c_str()) < 0) {
    if (errno == ENOENT) return Status::not_found(o.uri + ": no such segment");
    return sys_error(path, errno);
  }
  return remove_empty_dirs(root_, path.substr(0, path.rfind('/')));
}

Result<std::uint64_t> SegmentArchive::remove_stale(TimeNs before) {
  // Interrupted seals leave .seal-*.tmp in day directories.
  std::uint64_t removed = 0;
  Status st = walk_days(root_, ArchiveFilter{}, [&](const DayDir& d) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(d.path, ec)) {
      std::string name = e.path().filename().string();
      if (!name.starts_with(".seal-")) continue;
      struct stat st;
      if (::lstat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (static_cast<TimeNs>(st.st_mtim.tv_sec) * kNsPerSec + st.st_mtim.tv_nsec >= before) continue;
      if (::unlink(e.path().c_str()) == 0) removed++;
    }
    return true;
  });
  if (!st) return st;
  return removed;
}

}  // namespace

std::optional<TimeNs> segment_stem_time(std::string_view stem) {
  // "seg-" 20 digits "-" tag ([0-9A-Za-z._-], 1 to 80 characters).
  if (stem.size() < 26 || stem.size() > 105 || !stem.starts_with("seg-") || stem[24] != '-') return std::nullopt;
  TimeNs t = 0;
  for (char c : stem.substr(4, 20)) {
    if (c < '0' || c > '9') return std::nullopt;
    t = t * 10 + (c - '0');
  }
  if (t < 0) return std::nullopt;
  for (char c : stem.substr(25))
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return std::nullopt;
  return t;
}

ArchiveObject segment_object(const std::string& uri, const std::string& rel_day, std::string_view tenant,
                             std::string_view batch_id, TimeNs received_at, std::uint64_t size) {
  ArchiveObject o;
  o.tenant.assign(tenant);
  o.batch_id.assign(batch_id);
  o.received_at = received_at;
  o.key = rel_day + "#" + std::string(batch_id);
  o.uri = uri + "/" + o.key;
  o.size = size;
  return o;
}

seglog::Visitor segment_visitor(const std::string& uri, const DayDir& d, const std::string& rel_file,
                                const ScanFn& fn, bool& go) {
  seglog::Visitor v;
  v.record = [&uri, &d, &fn, &go](const seglog::Found& r) {
    ArchiveObject o = segment_object(uri, d.rel, r.batch.tenant, r.batch.batch_id, r.batch.received_at, r.size);
    if (o.tenant != d.tenant || day_of(o.received_at) != d.day)
      return go = fn(o, {}, Status::data("tenant or day does not match the directory " + d.rel));
    std::string bytes = with_newline(r.batch.line);
    return go = fn(o, bytes, Status::ok());
  };
  v.problem = [&uri, &d, rel_file, &fn, &go](const seglog::Problem& p) {
    ArchiveObject o;
    o.tenant = d.tenant;
    o.batch_id = p.batch_id;
    o.received_at = day_start(d.day);
    o.key = rel_file + "@" + std::to_string(p.offset);
    o.uri = uri + "/" + o.key;
    return go = fn(o, {}, Status::data(p.reason));
  };
  return v;
}

Result<std::string> find_in_day(const ArchiveObject& o,
                                const std::function<Status(const DayDir& d, const ScanFn& fn)>& scan_day) {
  size_t hash = o.key.find('#');
  auto kp = hash == std::string::npos ? std::nullopt : parse_key(o.key.substr(0, hash) + "/x.json");
  if (!kp) return Status::data(o.key + ": not an archive object key");
  std::string id = o.key.substr(hash + 1);
  std::optional<std::string> found;
  std::string problem;
  Status fatal = scan_day(DayDir{kp->tenant, kp->day, o.key.substr(0, hash), {}},
                          [&](const ArchiveObject& obj, std::string_view bytes, const Status& p) {
    if (!p.is_ok()) {
      if (obj.batch_id == id || obj.batch_id.empty()) problem = obj.uri + ": " + p.message();
      return true;
    }
    if (obj.batch_id != id) return true;
    found.emplace(bytes);
    return false;
  });
  if (!fatal.is_ok()) return fatal;
  if (found) return *found;
  if (!problem.empty()) return Status::data(problem);
  return Status::not_found(o.uri + ": no such object");
}

Result<std::unique_ptr<Archive>> open_segments(const std::string& uri, const std::string& root,
                                               const ArchiveOptions& opts) {
  if (opts.segment_bytes < 4096) return Status::usage("segment size must be at least 4096 bytes");
  if (opts.segment_age <= 0) return Status::usage("segment age must be positive");
  return std::unique_ptr<Archive>(new SegmentArchive(uri, root, opts));
}

}  // namespace ep::archive_detail
