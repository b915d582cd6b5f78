// file:// archive backend (docs/archive-format.md): one file per batch under
// <root>/<tenant>/<yyyy>/<mm>/<dd>/<batch_id>.json, written as a temp file, synced,
// moved into place without ever replacing an existing object, then the directory is
// synced. put_many() shares the expensive syncs across a whole group (group commit).
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "archive_internal.h"
#include "ep/crypto.h"
#include "ep/fsutil.h"

namespace ep::archive_detail {
namespace {

// fs::errno_status, so fs::is_storage_full recognises a full disk here too.
Status sys_error(const std::string& ctx, int err) { return fs::errno_status(ctx, err); }

// Moves tmp to path unless path exists (EEXIST). renameat2(RENAME_NOREPLACE) where the
// file system supports it, else link(2) + unlink(2), which has the same guarantee.
int move_noreplace(const std::string& tmp, const std::string& path) {
#ifdef RENAME_NOREPLACE
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return errno;
#endif
  if (::link(tmp.c_str(), path.c_str()) < 0) return errno;
  ::unlink(tmp.c_str());
  return 0;
}

// Runs fn(0..n-1) on up to kSyncThreads threads (inline for n == 1).
constexpr size_t kSyncThreads = 16;
void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n <= 1) {
    if (n == 1) fn(0);
    return;
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  std::vector<std::thread> threads;
  size_t extra = std::min(n, kSyncThreads) - 1;
  threads.reserve(extra);
  for (size_t t = 0; t < extra; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
}

// Directory entries (no "." / ".."), sorted by name.
struct Entry {
  std::string name;
  unsigned char type;  // DT_*
};
Result<std::vector<Entry>> read_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return sys_error(dir, errno);
  std::vector<Entry> out;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;  // ".", "..", temp files, hidden files
    out.push_back({e->d_name, e->d_type});
  }
  int err = errno;
  ::closedir(d);
  if (err) return sys_error(dir, err);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return out;
}

bool is_dir(const std::string& parent, const Entry& e) {
  if (e.type == DT_DIR) return true;
  if (e.type != DT_UNKNOWN) return false;
  struct stat st;
  return ::stat((parent + "/" + e.name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Entries of parent/e, or an empty list when e is not a directory (foreign files).
Result<std::vector<Entry>> read_subdir(const std::string& parent, const Entry& e) {
  auto r = read_dir(parent + "/" + e.name);
  if (!r && !is_dir(parent, e)) return std::vector<Entry>{};
  return r;
}

class FileArchive final : public Archive {
 public:
  FileArchive(std::string uri, std::string root) : uri_(std::move(uri)), root_(std::move(root)) {}

  Status put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) override;
  Status list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) override;
  Result<std::string> get(const ArchiveObject& o) override;
  Status remove(const ArchiveObject& o) override;
  Result<std::uint64_t> remove_stale(TimeNs before) override;
  const std::string& uri() const override { return uri_; }

 private:
  std::string path_of(const std::string& key) const { return root_ + "/" + key; }

  std::string uri_, root_;
};

Status FileArchive::put_many(std::span<const ArchivePut> puts, std::vector<Result<std::string>>& out) {
  struct Pending {
    size_t index;
    std::string key, dir, path, tmp, bytes;
    int fd = -1;
  };
  out.clear();
  out.reserve(puts.size());
  std::vector<Pending> pending;
  pending.reserve(puts.size());
  std::set<std::string> sync_dirs;  // absolute directories to fsync once at the end

  // 1. Validate, create directories, write every temp file (no sync yet).
  for (size_t i = 0; i < puts.size(); ++i) {
    const ArchivePut& p = puts[i];
    out.emplace_back(Status::software("archive put: not attempted"));
    if (Status s = validate_put(p); !s) {
      out[i] = s.with_context(uri_);
      continue;
    }
    Pending w;
    w.index = i;
    std::string rel_dir = day_prefix(p.tenant, p.received_at);
    rel_dir.pop_back();
    w.key = rel_dir + "/" + p.batch_id + ".json";
    w.dir = root_ + "/" + rel_dir;
    w.path = root_ + "/" + w.key;
    w.tmp = w.dir + "/.tmp-" + p.batch_id + "-" + crypto::random_base62(8);
    w.bytes = object_bytes(p.bytes);
    Status s;
    for (int attempt = 0; attempt < 2; ++attempt) {
      // A concurrent prune may remove an empty day directory between ensure and open.
      s = ensure_dirs(root_, rel_dir, sync_dirs);
      if (!s) break;
      w.fd = ::open(w.tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (w.fd >= 0 || errno != ENOENT) break;
    }
    if (s && w.fd < 0) s = sys_error(w.tmp, errno);
    if (s) s = fs::write_fully(w.fd, w.bytes, w.tmp);
    if (!s) {
      if (w.fd >= 0) {
        ::close(w.fd);
        ::unlink(w.tmp.c_str());
      }
      out[i] = s;
      continue;
    }
    pending.push_back(std::move(w));
  }

  // 2. Make the data durable.
  // fdatasync of many small new files is dominated by journal commits; issued one after
  // another each waits for its own commit, issued concurrently the file system (jbd2 on
  // ext4, the log on XFS) folds them into a few. So a group syncs in parallel.
  std::vector<int> sync_err(pending.size(), 0);
  parallel_for(pending.size(), [&](size_t i) {
    int rc;
    do rc = ::fdatasync(pending[i].fd);
    while (rc < 0 && errno == EINTR);
    sync_err[i] = rc < 0 ? errno : 0;
  });
  for (size_t i = 0; i < pending.size(); ++i) {
    auto& w = pending[i];
    ::close(w.fd);
    w.fd = -1;
    if (sync_err[i]) {
      out[w.index] = sys_error(w.tmp, sync_err[i]);
      ::unlink(w.tmp.c_str());
      w.tmp.clear();
    }
  }

  // 3. Move into place, never replacing: an existing object must be identical.
  std::set<std::string> ok_dirs;
  for (auto& w : pending) {
    if (w.tmp.empty()) continue;
    int err = move_noreplace(w.tmp, w.path);
    if (err == 0) {
      out[w.index] = uri_ + "/" + w.key;
      sync_dirs.insert(w.dir);
      continue;
    }
    ::unlink(w.tmp.c_str());
    if (err != EEXIST) {
      out[w.index] = sys_error(w.path, err);
      continue;
    }
    auto existing = fs::read_file(w.path);
    if (!existing) {
      out[w.index] = existing.status();
    } else if (*existing == w.bytes) {
      // Already archived (a retry). Sync its directory too: the first writer may not
      // have synced it yet when we acknowledge.
      out[w.index] = uri_ + "/" + w.key;
      sync_dirs.insert(w.dir);
    } else {
      out[w.index] = Status::conflict(uri_ + "/" + w.key +
                                      ": object exists with different content (archive objects are immutable)");
    }
  }

  // 4. One fsync per touched directory (in parallel, as above). A failure fails every
  // put below that directory.
  std::vector<std::string> dirs(sync_dirs.begin(), sync_dirs.end());
  std::vector<Status> dir_status(dirs.size());
  parallel_for(dirs.size(), [&](size_t i) { dir_status[i] = fs::fsync_dir(dirs[i]); });
  for (size_t i = 0; i < dirs.size(); ++i) {
    if (dir_status[i]) continue;
    for (auto& w : pending)
      if (out[w.index].is_ok() && (w.dir == dirs[i] || w.dir.starts_with(dirs[i] + "/")))
        out[w.index] = dir_status[i];
  }
  return Status::ok();
}

Status FileArchive::list(const ArchiveFilter& f, const std::function<bool(const ArchiveObject&)>& fn) {
  Status inner;
  Status st = walk_days(root_, f, [&](const DayDir& d) {
    auto files = regular_files(d.path);
    if (!files) {
      inner = files.status();
      return false;
    }
    for (const auto& name : *files) {
      ArchiveObject o;
      o.key = d.rel + "/" + name;
      auto kp = parse_key(o.key);
      if (!kp) continue;
      struct stat st;
      if (::stat((d.path + "/" + name).c_str(), &st) != 0) {
        if (errno == ENOENT) continue;  // removed while listing
        inner = sys_error(d.path + "/" + name, errno);
        return false;
      }
      o.tenant = std::move(kp->tenant);
      o.batch_id = std::move(kp->batch_id);
      o.received_at = day_start(kp->day);
      o.uri = uri_ + "/" + o.key;
      o.size = static_cast<std::uint64_t>(st.st_size);
      if (!fn(o)) return false;
    }
    return true;
  });
  if (!st) return st;
  return inner;
}

Result<std::string> FileArchive::get(const ArchiveObject& o) {
  if (!parse_key(o.key)) return Status::data(o.key + ": not an archive object key");
  std::string path = path_of(o.key);
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT)
    return Status::not_found(o.uri + ": no such object");
  return fs::read_file(path);
}

Status FileArchive::remove(const ArchiveObject& o) {
  if (!parse_key(o.key)) return Status::data(o.key + ": not an archive object key");
  std::string path = path_of(o.key);
  if (::unlink(path.c_str()) < 0) {
    if (errno == ENOENT) return Status::not_found(o.uri + ": no such object");
    return sys_error(path, errno);
  }
  return remove_empty_dirs(root_, path.substr(0, path.rfind('/')));
}

Result<std::uint64_t> FileArchive::remove_stale(TimeNs before) {
  // Temp files live in day directories: <root>/<tenant>/<yyyy>/<mm>/<dd>/.tmp-*.
  std::uint64_t removed = 0;
  std::set<std::string> emptied;
  std::error_code ec;
  namespace sfs = std::filesystem;
  for (auto it = sfs::recursive_directory_iterator(root_, ec); !ec && it != sfs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it.depth() > 4) {
      it.disable_recursion_pending();
      continue;
    }
    std::string name = it->path().filename().string();
    if (!name.starts_with(".tmp-")) continue;
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    TimeNs mtime = static_cast<TimeNs>(st.st_mtim.tv_sec) * kNsPerSec + st.st_mtim.tv_nsec;
    if (mtime >= before) continue;
    if (::unlink(it->path().c_str()) == 0) {
      removed++;
      emptied.insert(it->path().parent_path().string());
    }
  }
  if (ec) return Status::io(root_ + ": " + ec.message());
  // Day directories that held only temp files go too, as after a prune.
  for (const auto& dir : emptied) (void)remove_empty_dirs(root_, dir);
  return removed;
}

}  // namespace

Status ensure_dirs(const std::string& root, const std::string& rel, std::set<std::string>& sync) {
  std::string path = root;
  size_t start = 0;
  while (start < rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string parent = path;
    path += "/";
    path.append(rel, start, end - start);
    if (::mkdir(path.c_str(), 0755) == 0) {
      sync.insert(parent);
    } else if (errno != EEXIST) {
      return sys_error(path, errno);
    }
    start = end + 1;
  }
  return Status::ok();
}

Status remove_empty_dirs(const std::string& root, std::string dir) {
  // The day, month, year and tenant directories go once empty; then the deepest
  // surviving directory is synced.
  for (int level = 0; level < 4 && dir.size() > root.size(); ++level) {
    if (::rmdir(dir.c_str()) < 0) break;  // ENOTEMPTY (or EEXIST): still in use
    dir = dir.substr(0, dir.rfind('/'));
  }
  return fs::fsync_dir(dir);
}

Result<std::vector<std::string>> regular_files(const std::string& dir) {
  auto entries = read_dir(dir);
  if (!entries) {
    if (::access(dir.c_str(), F_OK) != 0 && errno == ENOENT) return std::vector<std::string>{};
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) return std::vector<std::string>{};
    return entries.status();
  }
  std::vector<std::string> out;
  for (const auto& e : *entries) {
    if (e.type == DT_REG) {
      out.push_back(e.name);
    } else if (e.type == DT_UNKNOWN) {
      struct stat st;
      if (::stat((dir + "/" + e.name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) out.push_back(e.name);
    }
  }
  return out;
}

Status walk_days(const std::string& root, const ArchiveFilter& f, const std::function<bool(const DayDir&)>& fn) {
  auto tenants = read_dir(root);
  if (!tenants) return tenants.status();
  // Order tenants as their keys sort ("a-b/" before "a/"), the same order S3 lists in.
  std::sort(tenants->begin(), tenants->end(),
            [](const Entry& a, const Entry& b) { return a.name + "/" < b.name + "/"; });
  for (const auto& t : *tenants) {
    if (!f.tenant.empty() && t.name != f.tenant) continue;
    auto years = read_subdir(root, t);
    if (!years) return years.status();
    std::string tdir = root + "/" + t.name;
    for (const auto& y : *years) {
      auto months = read_subdir(tdir, y);
      if (!months) return months.status();
      std::string ydir = tdir + "/" + y.name;
      for (const auto& m : *months) {
        auto days = read_subdir(ydir, m);
        if (!days) return days.status();
        std::string mdir = ydir + "/" + m.name;
        for (const auto& d : *days) {
          DayDir dd;
          dd.rel = t.name + "/" + y.name + "/" + m.name + "/" + d.name;
          // Parse a representative key to check the day shape and apply the filter.
          auto probe = parse_key(dd.rel + "/x.json");
          if (!probe || !day_matches(probe->day, f) || !is_dir(mdir, d)) continue;
          dd.tenant = t.name;
          dd.day = probe->day;
          dd.path = mdir + "/" + d.name;
          if (!fn(dd)) return Status::ok();
        }
      }
    }
  }
  return Status::ok();
}

Result<std::unique_ptr<Archive>> open_file(const std::string& uri, const std::string& root,
                                           const ArchiveOptions& opts) {
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) {
    if (errno != ENOENT) return sys_error(uri, errno);
    if (!opts.create) return Status::io(uri + ": no such archive");
    EP_RETURN_IF_ERROR(fs::make_dirs(root));
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::io(uri + ": not a directory");
  }
  std::string marker = root + "/" + std::string(kFormatName);
  auto existing = fs::read_file(marker);
  if (!existing && opts.create) {
    std::string_view line = opts.create_format == 2 ? kFormatLine2 : kFormatLine;
    Status s = fs::write_file_atomic(marker, line, /*no_clobber=*/true);
    if (!s && s.code() != Code::kConflict) return s.with_context(uri);
    existing = fs::read_file(marker);  // ours, or a concurrent creator's
  }
  if (existing && *existing == kFormatLine2) return open_segments(uri, root, opts);
  if (existing && *existing != kFormatLine)
    return Status::usage(uri + ": unsupported archive format: " + existing->substr(0, existing->find('\n')));
  return std::unique_ptr<Archive>(new FileArchive(uri, root));
}

}  // namespace ep::archive_detail
