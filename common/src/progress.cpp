#include "ep/progress.h"

#include <cstdio>

#include "ep/log.h"
#include "ep/time.h"

namespace ep {

void Progress::update(std::uint64_t done, std::uint64_t total) {
  if (!enabled_) return;
  TimeNs now = monotonic_ns();
  if (start_ns_ == 0) start_ns_ = now;
  if (now - last_ns_ < 250 * kNsPerMs) return;
  last_ns_ = now;
  double secs = static_cast<double>(now - start_ns_) / 1e9;
  char buf[160];
  if (total)
    std::snprintf(buf, sizeof buf, "\r%s: %s: %llu/%llu (%.0f%%) %.0f/s   ",
                  std::string(log::tool()).c_str(), what_.c_str(),
                  static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                  100.0 * static_cast<double>(done) / static_cast<double>(total),
                  secs > 0 ? static_cast<double>(done) / secs : 0.0);
  else
    std::snprintf(buf, sizeof buf, "\r%s: %s: %llu %.0f/s   ", std::string(log::tool()).c_str(),
                  what_.c_str(), static_cast<unsigned long long>(done),
                  secs > 0 ? static_cast<double>(done) / secs : 0.0);
  log::write_stderr(buf);
  shown_ = true;
}

void Progress::finish() {
  if (shown_) log::write_stderr("\r\033[K");
  shown_ = false;
}

}  // namespace ep
