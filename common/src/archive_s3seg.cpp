// s3://bucket/prefix archive, format 2 (docs/archive-format.md, "Version 2 on S3"):
// writers make batches durable in a local format 2 spool (a file:// root, the segment
// log of archive_segment.cpp) and acknowledge them from there; a background uploader
// puts each sealed segment as ONE object under the same relative key, checks that the
// store holds it, and only then deletes it locally. Readers list the sealed segments in
// the bucket and read each with one GET.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "archive_internal.h"
#include "ep/fsutil.h"
#include "ep/log.h"

namespace ep::archive_detail {
namespace {

constexpr std::string_view kSealedExt = ".seg";
constexpr TimeNs kPollInterval = kNsPerSec;  // the spool is looked at this often when idle

// A sealed segment's key "<tenant>/<yyyy>/<mm>/<dd>/<stem>.seg": its day, or nullopt.
std::optional<DayDir> segment_day(std::string_view key) {
  size_t slash = key.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view name = key.substr(slash + 1);
  if (!name.ends_with(kSealedExt) || !segment_stem_time(name.substr(0, name.size() - kSealedExt.size())))
    return std::nullopt;
  std::string rel(key.substr(0, slash));
  auto kp = parse_key(rel + "/x.json");
  if (!kp) return std::nullopt;
  return DayDir{kp->tenant, kp->day, rel, {}};
}

// A sealed segment in the spool waiting for its upload.
struct Pending {
  std::string rel_file, path;
  std::uint64_t size = 0;
  TimeNs stem_time = 0, sealed_at = 0;
};

class S3SegmentArchive final : public Archive {
 public:
  S3SegmentArchive(std::unique_ptr<S3Client> s3, const ArchiveOptions& o) : s3_(std::move(s3)), opts_(o) {}
  ~S3SegmentArchive() override;
  // With opts.create: opens the spool, seals what an earlier run left in it and starts
  // the uploader. Readers have no spool.
  Status start();

  Status put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) override;
  Status list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) override;
  Status scan(const ArchiveFilter& f, const ScanFn& fn) override;
  Status list_units(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) override;
  Result<std::string> get(const ArchiveObject& o) override;
  Status remove(const ArchiveObject& o) override;
  Result<std::uint64_t> remove_stale(TimeNs before) override {
    return spool_ ? spool_->remove_stale(before) : Result<std::uint64_t>(std::uint64_t{0});
  }
  Status seal() override { return flush(); }
  Status flush() override;
  ArchiveStats stats() const override;
  const std::string& uri() const override { return s3_->uri(); }
  int format() const override { return 2; }
  ArchiveObject locate(const std::string& tenant, const std::string& batch_id, TimeNs received_at) const override {
    std::string rel = day_prefix(tenant, received_at);
    rel.pop_back();
    return segment_object(uri(), rel, tenant, batch_id, received_at, 0);
  }

 private:
  // The sealed segments in the bucket matching f, in key order: fn(day, key, size).
  Status each_segment(const ArchiveFilter& f,
                      const std::function<bool(const DayDir&, const std::string&, std::uint64_t)>& fn);
  // Scans one segment object; false when fn stopped or on a fatal error.
  bool scan_segment(const DayDir& d, const std::string& key, const ScanFn& fn, Status& fatal);

  void kick();
  void sealed(std::uint64_t bytes);  // a segment was sealed in the spool
  void upload_loop();
  // Uploads every pending segment, oldest first; the first failure ends the round.
  Status upload_round();
  std::vector<Pending> pending();  // walks the spool; refreshes the pending figures
  Status upload(const Pending& p);
  std::uint64_t used_bytes() const;

  std::unique_ptr<S3Client> s3_;
  ArchiveOptions opts_;
  std::string spool_root_;
  std::unique_ptr<Archive> spool_;

  std::mutex round_mu_;  // one upload round at a time (uploader thread, flush)
  std::mutex mu_;        // stop_, kicked_
  std::condition_variable cv_;
  bool stop_ = false, kicked_ = false;
  std::thread uploader_;
  log::Throttled upload_log_{10 * kNsPerSec};

  // The pending figures: set by each walk of the spool, raised by every seal (before the
  // sealed bytes leave active_bytes) and lowered by every upload, so that bytes are always
  // counted as active, pending or uploaded. A walk that raced with a seal is redone.
  mutable std::mutex pending_mu_;
  std::uint64_t seals_ = 0;
  std::atomic<std::uint64_t> pending_segments_{0}, pending_bytes_{0};
  std::atomic<TimeNs> oldest_pending_{0};
  std::atomic<std::uint64_t> uploaded_segments_{0}, uploaded_bytes_{0}, failures_{0};
  mutable std::atomic<std::uint64_t> active_cache_{0};
  mutable std::atomic<TimeNs> active_at_{INT64_MIN / 2};
};

S3SegmentArchive::~S3SegmentArchive() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (uploader_.joinable()) uploader_.join();
  spool_.reset();  // its sealer calls kick() until it has stopped
}

Status S3SegmentArchive::start() {
  if (!opts_.create) return Status::ok();
  spool_root_ = opts_.spool_dir.empty() ? std::string(kDefaultSpool) : opts_.spool_dir;
  while (spool_root_.size() > 1 && spool_root_.back() == '/') spool_root_.pop_back();
  if (spool_root_.empty() || spool_root_.front() != '/')
    return Status::usage("--archive-spool " + spool_root_ + ": an absolute directory is needed");
  ArchiveOptions so = opts_;
  so.create = true;
  so.create_format = 2;
  so.on_sealed = [this](const std::string&, std::uint64_t bytes) { sealed(bytes); };
  auto spool = Archive::open("file://" + spool_root_, so);
  if (!spool) return spool.status().with_context("archive spool");
  if ((*spool)->format() != 2)
    return Status::usage("archive spool " + spool_root_ + ": a format 1 archive, not a format 2 spool");
  spool_ = std::move(spool).value();
  // Segments an earlier run left active (it stopped or was killed) are sealed now, so
  // that they upload; what it sealed but did not upload is found by the first round.
  if (Status s = spool_->seal(); !s) log::error(s.with_context("archive spool: sealing what an earlier run left"));
  pending();
  uploader_ = std::thread([this] { upload_loop(); });
  return Status::ok();
}

std::uint64_t S3SegmentArchive::used_bytes() const {
  // The active bytes are summed over every tenant-day writer: at most every 2 ms, so that
  // the check stays off the hot path of many concurrent groups.
  TimeNs now = monotonic_ns();
  if (now - active_at_.load() > 2'000'000) {
    active_cache_ = spool_ ? spool_->stats().active_bytes : 0;
    active_at_ = now;
  }
  return pending_bytes_.load() + active_cache_.load();
}

Status S3SegmentArchive::put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) {
  if (!spool_) return Status::usage(uri() + ": opened for reading (no spool)");
  if (used_bytes() >= opts_.spool_budget) {
    // Full: refuse until uploads free space (the client is told to retry later).
    kick();
    out.assign(puts.size(), Status::io("archive spool " + spool_root_ + ": budget of " +
                                       std::to_string(opts_.spool_budget) +
                                       " bytes used by segments not yet uploaded to " + uri() + ": " +
                                       std::strerror(ENOSPC)));
    return Status::ok();
  }
  EP_RETURN_IF_ERROR(spool_->put_many(puts, out));
  const std::string& local = spool_->uri();
  for (auto& r : out)
    if (r && r->starts_with(local)) *r = uri() + r->substr(local.size());
  return Status::ok();
}

// ---- uploads ----

void S3SegmentArchive::sealed(std::uint64_t bytes) {
  {
    std::lock_guard lock(pending_mu_);
    seals_++;
    pending_segments_++;
    pending_bytes_ += bytes;
    TimeNs now = SystemClock::instance().now();
    if (!oldest_pending_) oldest_pending_ = now;
  }
  kick();
}

void S3SegmentArchive::kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

std::vector<Pending> S3SegmentArchive::pending() {
  for (;;) {
    std::uint64_t seals;
    {
      std::lock_guard lock(pending_mu_);
      seals = seals_;
    }
    std::vector<Pending> out;
    std::uint64_t bytes = 0;
    TimeNs oldest = 0;
    Status st = walk_days(spool_root_, ArchiveFilter{}, [&](const DayDir& d) {
      auto names = regular_files(d.path);
      if (!names) return true;  // gone meanwhile
      for (const auto& n : *names) {
        if (!n.ends_with(kSealedExt)) continue;
        auto t = segment_stem_time(std::string_view(n).substr(0, n.size() - kSealedExt.size()));
        struct stat st;
        if (!t || ::stat((d.path + "/" + n).c_str(), &st) != 0) continue;
        Pending p{d.rel + "/" + n, d.path + "/" + n, static_cast<std::uint64_t>(st.st_size), *t,
                  static_cast<TimeNs>(st.st_mtim.tv_sec) * kNsPerSec + st.st_mtim.tv_nsec};
        bytes += p.size;
        if (!oldest || p.sealed_at < oldest) oldest = p.sealed_at;
        out.push_back(std::move(p));
      }
      return true;
    });
    if (!st) log::error(st.with_context("archive spool"));
    std::sort(out.begin(), out.end(), [](const Pending& a, const Pending& b) {
      return a.stem_time != b.stem_time ? a.stem_time < b.stem_time : a.rel_file < b.rel_file;
    });
    std::lock_guard lock(pending_mu_);
    if (seals != seals_) continue;  // a seal happened meanwhile: look again
    pending_segments_ = out.size();
    pending_bytes_ = bytes;
    oldest_pending_ = oldest;
    return out;
  }
}

Status S3SegmentArchive::upload(const Pending& p) {
  auto data = fs::read_file(p.path);
  if (!data) return data.status();
  EP_RETURN_IF_ERROR(s3_->put_new(p.rel_file, *data, opts_.s3_multipart_bytes, "application/octet-stream"));
  // The store has it (checked): only now does the local copy go.
  if (::unlink(p.path.c_str()) < 0 && errno != ENOENT)
    return Status::io(p.path + ": " + std::strerror(errno));
  EP_RETURN_IF_ERROR(fs::fsync_dir(p.path.substr(0, p.path.rfind('/'))));
  std::lock_guard lock(pending_mu_);
  uploaded_segments_++;
  uploaded_bytes_ += data->size();
  if (pending_segments_) pending_segments_--;
  pending_bytes_ -= std::min<std::uint64_t>(pending_bytes_.load(), data->size());
  return Status::ok();
}

Status S3SegmentArchive::upload_round() {
  std::lock_guard round(round_mu_);
  auto todo = pending();
  // Over budget with data in active segments: seal them so they can go up and free space.
  if (used_bytes() >= opts_.spool_budget && spool_->stats().active_bytes > 0) {
    if (Status s = spool_->seal(); !s) log::error(s.with_context("archive spool"));
    todo = pending();
  }
  for (const auto& p : todo) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return Status::ok();
    }
    if (Status s = upload(p); !s) {
      failures_++;
      pending();
      return s.with_context("upload of " + p.rel_file);
    }
  }
  if (!todo.empty()) pending();
  return Status::ok();
}

void S3SegmentArchive::upload_loop() {
  TimeNs backoff = 0;
  std::unique_lock lock(mu_);
  for (;;) {
    TimeNs wait = backoff ? backoff : kPollInterval;
    // A kick (a segment was sealed, the budget is full) starts a round early, but never
    // cuts a backoff short: while the store is down, rounds stay spaced.
    cv_.wait_for(lock, std::chrono::nanoseconds(wait), [&] { return stop_ || (kicked_ && !backoff); });
    if (stop_) return;
    kicked_ = false;
    lock.unlock();
    Status s = upload_round();
    if (s) {
      backoff = 0;
    } else {
      upload_log_.error(s, "archive upload (kept in the spool, retrying)");
      // Exponential backoff while the store is down: 250 ms doubling up to the maximum.
      backoff = std::min<TimeNs>(opts_.upload_backoff_max, std::max<TimeNs>(backoff * 2, kNsPerSec / 4));
    }
    lock.lock();
  }
}

Status S3SegmentArchive::flush() {
  if (!spool_) return Status::ok();
  EP_RETURN_IF_ERROR(spool_->seal());
  return upload_round();
}

ArchiveStats S3SegmentArchive::stats() const {
  ArchiveStats st;
  if (!spool_) return st;
  st.uploads = true;
  st.active_bytes = spool_->stats().active_bytes;
  st.pending_segments = pending_segments_;
  st.pending_bytes = pending_bytes_;
  st.oldest_pending = oldest_pending_;
  st.uploaded_segments = uploaded_segments_;
  st.uploaded_bytes = uploaded_bytes_;
  st.upload_failures = failures_;
  st.spool_budget = opts_.spool_budget;
  return st;
}

// ---- reading the bucket ----

Status S3SegmentArchive::each_segment(
    const ArchiveFilter& f, const std::function<bool(const DayDir&, const std::string&, std::uint64_t)>& fn) {
  return s3_->list(f.tenant.empty() ? "" : f.tenant + "/", list_start_after(f), [&](std::string_view key, std::uint64_t size) {
    auto d = segment_day(key);
    if (!d) return true;  // FORMAT, or not a segment
    if (!f.tenant.empty() && d->tenant != f.tenant) return true;
    // Keys sort by day within a tenant: past f.to, done.
    if (!day_matches(d->day, f)) return f.tenant.empty() || day_start(d->day) <= f.to;
    return fn(*d, std::string(key), size);
  });
}

bool S3SegmentArchive::scan_segment(const DayDir& d, const std::string& key, const ScanFn& fn, Status& fatal) {
  auto r = s3_->request("GET", s3_->url(s3_->full_key(key)), {}, {});
  if (!r) {
    fatal = r.status();
    return false;
  }
  if (r->status == 404) return true;  // pruned meanwhile
  if (r->status != 200) {
    fatal = s3_->http_error("GET", key, *r);
    return false;
  }
  bool go = true;
  seglog::scan_bytes(r->body, segment_visitor(uri(), d, key, fn, go));
  return go;
}

Status S3SegmentArchive::scan(const ArchiveFilter& f, const ScanFn& fn) {
  Status fatal;
  Status st = each_segment(f, [&](const DayDir& d, const std::string& key, std::uint64_t) {
    return scan_segment(d, key, fn, fatal);
  });
  if (!st) return st;
  return fatal;
}

Status S3SegmentArchive::list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) {
  // Whole segments are read (one GET each); damage is for verify to report.
  return scan(f, [&](const ArchiveObject& o, std::string_view, const Status& problem) {
    return !problem.is_ok() || fn(o);
  });
}

Status S3SegmentArchive::list_units(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) {
  return each_segment(f, [&](const DayDir& d, const std::string& key, std::uint64_t size) {
    ArchiveObject o;
    o.tenant = d.tenant;
    o.received_at = day_start(d.day);
    o.key = key;
    o.uri = uri() + "/" + key;
    o.size = size;
    return fn(o);
  });
}

Result<std::string> S3SegmentArchive::get(const ArchiveObject& o) {
  return find_in_day(o, [&](const DayDir& d, const ScanFn& fn) {
    ArchiveFilter f;
    f.tenant = d.tenant;
    f.from = day_start(d.day);
    f.to = f.from + kNsPerDay - 1;
    return scan(f, fn);
  });
}

Status S3SegmentArchive::remove(const ArchiveObject& o) {
  if (!segment_day(o.key)) return Status::data(o.key + ": not a segment object");
  return s3_->remove(o.key, "segment");
}

}  // namespace

Result<std::unique_ptr<Archive>> open_s3_segments(std::unique_ptr<S3Client> client, const ArchiveOptions& opts) {
  if (opts.spool_budget == 0) return Status::usage("--archive-spool-budget must be positive");
  if (opts.s3_multipart_bytes < (5u << 20))
    return Status::usage("--s3-multipart-size must be at least 5 MiB (5242880 bytes; the S3 minimum part size)");
  auto a = std::make_unique<S3SegmentArchive>(std::move(client), opts);
  EP_RETURN_IF_ERROR(a->start());
  return std::unique_ptr<Archive>(std::move(a));
}

}  // namespace ep::archive_detail
