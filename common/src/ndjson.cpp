#include "ep/ndjson.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cerrno>
#include <cstring>

#include "ep/progress.h"

namespace ep {

LineReader::LineReader(std::vector<std::string> paths, size_t max_line_bytes)
    : paths_(std::move(paths)), max_(max_line_bytes) {
  if (paths_.empty()) paths_.push_back("-");
  cap_ = std::max<size_t>(max_ + 1, 1 << 16);
  buf_ = std::make_unique<char[]>(cap_);
}

LineReader::LineReader(int fd, std::string name, size_t max_line_bytes)
    : fd_(fd), name_(std::move(name)), max_(max_line_bytes) {
  path_index_ = 0;
  cap_ = std::max<size_t>(max_ + 1, 1 << 16);
  buf_ = std::make_unique<char[]>(cap_);
}

std::uint64_t LineReader::input_size() const {
  if (paths_.empty()) return regular_file_size(fd_);
  std::uint64_t total = 0;
  for (const std::string& p : paths_) {
    std::uint64_t n = p == "-" ? regular_file_size(0) : regular_file_size(p);
    if (n == 0) return 0;
    total += n;
  }
  return total;
}

LineReader::~LineReader() {
  if (own_fd_ && fd_ >= 0) ::close(fd_);
}

bool LineReader::open_next() {
  if (own_fd_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
  own_fd_ = false;
  if (path_index_ >= paths_.size()) return false;
  const std::string& p = paths_[path_index_++];
  if (p == "-") {
    fd_ = 0;
    name_ = "stdin";
  } else {
    fd_ = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      status_ = Status::io(p + ": " + std::strerror(errno));
      return false;
    }
    own_fd_ = true;
    name_ = p;
  }
  line_no_ = 0;
  start_ = end_ = 0;
  eof_ = false;
  skipping_ = false;
  return true;
}

bool LineReader::fill() {
  if (start_ > 0) {
    std::memmove(buf_.get(), buf_.get() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (before_read_) before_read_();
  for (;;) {
    ssize_t n = ::read(fd_, buf_.get() + end_, cap_ - end_);
    if (n < 0) {
      if (errno == EINTR) continue;
      status_ = Status::io(name_ + ": " + std::strerror(errno));
      eof_ = true;
      return false;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    bytes_read_ += static_cast<size_t>(n);
    end_ += static_cast<size_t>(n);
    return true;
  }
}

bool LineReader::next(Line& line) {
  for (;;) {
    if (fd_ < 0) {
      if (!status_.is_ok() || !open_next()) return false;
    }
    // Look for a newline in the buffered bytes.
    char* base = buf_.get();
    void* nl = std::memchr(base + start_, '\n', end_ - start_);
    if (nl) {
      size_t len = static_cast<size_t>(static_cast<char*>(nl) - (base + start_));
      size_t s = start_;
      start_ += len + 1;
      ++line_no_;
      if (skipping_) {
        skipping_ = false;
        line = Line{{}, name_, line_no_, true};
        return true;
      }
      if (len > max_) {
        line = Line{{}, name_, line_no_, true};
        return true;
      }
      if (len > 0 && base[s + len - 1] == '\r') --len;
      line = Line{std::string_view(base + s, len), name_, line_no_, false};
      return true;
    }
    // No newline: the pending line is [start_, end_).
    if (end_ - start_ > max_) {
      // Over-long: drop what we have and skip to the next newline.
      skipping_ = true;
      start_ = end_ = 0;
    }
    if (!eof_ && fill()) continue;
    // End of this stream: a final unterminated line counts as a line.
    if (end_ > start_ || skipping_) {
      ++line_no_;
      size_t s = start_, len = end_ - start_;
      start_ = end_;
      if (skipping_) {
        skipping_ = false;
        line = Line{{}, name_, line_no_, true};
        return true;
      }
      if (len > 0 && base[s + len - 1] == '\r') --len;
      line = Line{std::string_view(base + s, len), name_, line_no_, false};
      return true;
    }
    if (!status_.is_ok()) return false;
    if (paths_.empty()) return false;  // fd constructor: single stream
    if (!open_next()) return false;
  }
}

RecordWriter::RecordWriter(int fd, size_t buffer_bytes) : fd_(fd), cap_(buffer_bytes) {
  buf_.reserve(cap_ + 1024);
}

RecordWriter::~RecordWriter() { flush(); }

bool RecordWriter::write(std::string_view record) {
  if (broken_pipe_ || errno_) return false;
  buf_.append(record);
  buf_.push_back('\n');
  ++records_;
  if (buf_.size() >= cap_) return flush();
  return true;
}

bool RecordWriter::flush() {
  size_t off = 0;
  while (off < buf_.size()) {
    if (broken_pipe_ || errno_) break;
    ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) broken_pipe_ = true;
      else errno_ = errno;
      break;
    }
    off += static_cast<size_t>(n);
  }
  buf_.clear();
  return !broken_pipe_ && !errno_;
}

Status RecordWriter::close() {
  flush();
  if (errno_) return Status::io(std::string("stdout: ") + std::strerror(errno_));
  return Status::ok();
}

void ignore_sigpipe() { std::signal(SIGPIPE, SIG_IGN); }

}  // namespace ep

