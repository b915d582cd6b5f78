#include "ep/fsutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ep/crypto.h"

namespace ep::fs {
namespace {
std::string dir_of(const std::string& path) {
  auto p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}
// Writes all of data to fd; on failure closes fd and removes path.
Status write_all(int fd, std::string_view data, const std::string& path) {
  Status s = write_fully(fd, data, path);
  if (!s) {
    ::close(fd);
    ::unlink(path.c_str());
  }
  return s;
}
}  // namespace

Status errno_status(const std::string& ctx, int err) {
  return Status::io(ctx + ": " + std::strerror(err));
}

bool is_storage_full(const Status& s) {
  if (s.code() != Code::kIo) return false;
  for (int err : {ENOSPC, EDQUOT}) {
    std::string_view suffix = std::strerror(err);
    const std::string& m = s.message();
    if (m.size() > suffix.size() && m.compare(m.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  }
  return false;
}

Status write_fully(int fd, std::string_view data, const std::string& ctx) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(ctx, errno);
    }
    off += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status(dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc < 0) return errno_status(dir, err);
  return Status::ok();
}

Status write_new_file(const std::string& path, std::string_view data, int mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) return Status::conflict(path + ": already exists");
    return errno_status(path, errno);
  }
  if (Status s = write_all(fd, data, path); !s) return s;
  if (::close(fd) < 0) {
    int err = errno;
    ::unlink(path.c_str());
    return errno_status(path, err);
  }
  return Status::ok();
}

Status sync_filesystem(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status(path, errno);
  int rc = ::syncfs(fd);
  int err = errno;
  ::close(fd);
  if (rc < 0) return errno_status(path + ": syncfs", err);
  return Status::ok();
}

Status make_dirs(const std::string& dir, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io(dir + ": " + ec.message());
  (void)mode;
  return Status::ok();
}

Status write_file_atomic(const std::string& path, std::string_view data, bool no_clobber,
                         int mode) {
  std::string tmp = path + ".tmp." + crypto::random_base62(8);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return errno_status(tmp, errno);
  if (Status s = write_all(fd, data, tmp); !s) return s;
  if (::fsync(fd) < 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return errno_status(tmp, err);
  }
  ::close(fd);
  if (no_clobber) {
    if (::link(tmp.c_str(), path.c_str()) < 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      if (err == EEXIST) return Status::conflict(path + ": already exists");
      return errno_status(path, err);
    }
    ::unlink(tmp.c_str());
  } else if (::rename(tmp.c_str(), path.c_str()) < 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errno_status(path, err);
  }
  return fsync_dir(dir_of(path));
}

Result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status(path, errno);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return errno_status(path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace ep::fs
