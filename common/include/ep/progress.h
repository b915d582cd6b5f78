#pragma once
// Progress on stderr for long work on a terminal: one '\r'-rewritten line, at most
// every 250 ms, cleared at the end. Disabled (no output) unless enabled.
#include <cstdint>
#include <string>

namespace ep {

class Progress {
 public:
  Progress(bool enabled, std::string what) : enabled_(enabled), what_(std::move(what)) {}
  ~Progress() { finish(); }
  // Reports `done` units (and `total` if known, else 0).
  void update(std::uint64_t done, std::uint64_t total = 0);
  void finish();

 private:
  bool enabled_;
  std::string what_;
  std::int64_t last_ns_ = 0;
  std::int64_t start_ns_ = 0;
  bool shown_ = false;
};

}  // namespace ep
