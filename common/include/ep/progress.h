#pragma once
// Progress on stderr for long work on a terminal: one '\r'-rewritten line, at most
// every 250 ms, cleared at the end. Disabled (no output) unless enabled. The line names
// the tool once, then what was done with units, the rate, and, when the total is
// known, the percentage and the time left:
//   ep-features: 1.35 GB read, 348 MB/s, 41% (ETA 12s), 9.84M lines
//   ep-archive: 1.20k objects, 310/s
#include <cstdint>
#include <string>
#include <string_view>

namespace ep {

// One progress reading, and how it reads. Pure: unit-tested.
struct ProgressSample {
  bool bytes = false;         // `done`/`total` are bytes of input, else counted things
  std::string_view what;      // counted things ("lines", "objects"); with bytes: the
                              // records also counted (`records`), "" for none
  std::uint64_t done = 0;
  std::uint64_t total = 0;    // 0: unknown (no percentage, no ETA)
  std::uint64_t records = 0;  // with bytes: records read so far
  double seconds = 0;         // since the start
};
std::string format_progress(std::string_view tool, const ProgressSample& s);
// 1234567 -> "1.23M", 999 -> "999"; with bytes, "1.23 MB" (decimal units).
std::string format_count(double n, bool bytes);
// Seconds left -> "12s", "3m05s", "2h07m".
std::string format_eta(double seconds);

// The size of the regular file behind `fd` (stdin redirected from a file included)
// or at `path`, or 0 when it is not a regular file (a pipe, a terminal, a socket).
std::uint64_t regular_file_size(int fd);
std::uint64_t regular_file_size(const std::string& path);

class Progress {
 public:
  // Counts `what` ("lines", "objects").
  Progress(bool enabled, std::string what);
  // Counts bytes of input of `total_bytes` (0 if unknown), and `records` ("lines").
  static Progress bytes(bool enabled, std::uint64_t total_bytes, std::string records);
  ~Progress() { finish(); }
  Progress(Progress&&) = default;
  // Reports `done` things or bytes (and `total` if known, else 0, meaning the total given
  // at construction), and with bytes the `records` read so far.
  void update(std::uint64_t done, std::uint64_t total = 0, std::uint64_t records = 0);
  void finish();

 private:
  bool enabled_;
  std::string what_;
  bool bytes_ = false;
  std::uint64_t total_ = 0;
  std::int64_t last_ns_ = 0;
  std::int64_t start_ns_ = 0;
  bool shown_ = false;
};

}  // namespace ep
