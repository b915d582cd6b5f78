#pragma once
// NDJSON I/O (docs/conventions.md 13, 14, 16).
// LineReader: reads lines from a sequence of files (or stdin) through one fixed buffer;
// a line longer than max_line_bytes is reported once and skipped, never reallocated.
// RecordWriter: whole records only, buffered, flushed before the reader blocks (so
// `tail -f | ep-x` flows) and at exit; a broken pipe is reported, not raised.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"

namespace ep {

inline constexpr size_t kDefaultMaxLineBytes = 4 << 20;  // 4 MiB: a 1 MiB body, escaped

struct Line {
  std::string_view text;    // without the trailing '\n' (and '\r')
  std::string_view stream;  // "stdin" or the file path
  std::int64_t number = 0;  // 1-based within its stream
  bool too_long = false;    // text is empty; the line exceeded max_line_bytes
};

class LineReader {
 public:
  // paths: empty or "-" means stdin. Files are opened lazily, in order.
  explicit LineReader(std::vector<std::string> paths, size_t max_line_bytes = kDefaultMaxLineBytes);
  // Reads from an already open fd (not closed); for tests and sockets.
  LineReader(int fd, std::string name, size_t max_line_bytes = kDefaultMaxLineBytes);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Next line; false at the end of all input. An I/O error (unreadable file) ends
  // the read with status() set; the caller decides whether to continue.
  bool next(Line& line);
  const Status& status() const { return status_; }

  // Called before every read(2) that may block, e.g. to flush the output.
  void set_before_read(std::function<void()> fn) { before_read_ = std::move(fn); }

  std::uint64_t bytes_read() const { return bytes_read_; }
  // The total size of the input when every input is a regular file (stdin redirected
  // from one included), else 0: unknown.
  std::uint64_t input_size() const;

 private:
  bool open_next();
  bool fill();

  std::vector<std::string> paths_;
  size_t path_index_ = 0;
  int fd_ = -1;
  bool own_fd_ = false;
  std::string name_;
  std::int64_t line_no_ = 0;
  size_t max_;
  std::unique_ptr<char[]> buf_;
  size_t cap_;
  size_t start_ = 0, end_ = 0;
  bool eof_ = false;
  bool skipping_ = false;  // discarding the rest of an over-long line
  std::uint64_t bytes_read_ = 0;
  std::function<void()> before_read_;
  Status status_;
};

class RecordWriter {
 public:
  // flush_each: flush after every record. Default: flush when the buffer fills, when
  // flush() is called (e.g. LineReader's before_read hook) and at close().
  explicit RecordWriter(int fd = 1, size_t buffer_bytes = 1 << 16);
  ~RecordWriter();

  // Appends one record plus '\n'. Returns false once the output is broken.
  bool write(std::string_view record);
  bool flush();
  // Flushes and checks the output; an error other than a broken pipe is an I/O error.
  Status close();

  bool broken_pipe() const { return broken_pipe_; }
  std::uint64_t records() const { return records_; }

 private:
  int fd_;
  size_t cap_;
  std::string buf_;
  bool broken_pipe_ = false;
  int errno_ = 0;
  std::uint64_t records_ = 0;
};

// Ignores SIGPIPE so writers see EPIPE instead of dying mid-record.
void ignore_sigpipe();

}  // namespace ep
