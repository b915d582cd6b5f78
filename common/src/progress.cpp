#include "ep/progress.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>

#include "ep/log.h"
#include "ep/time.h"

namespace ep {

std::string format_count(double n, bool bytes) {
  static constexpr const char* kCount[] = {"", "k", "M", "G", "T", "P"};
  static constexpr const char* kBytes[] = {" B", " kB", " MB", " GB", " TB", " PB"};
  int i = 0;
  while (n >= 999.5 && i < 5) {
    n /= 1000;
    ++i;
  }
  const char* unit = bytes ? kBytes[i] : kCount[i];
  char buf[32];
  if (i == 0) std::snprintf(buf, sizeof buf, "%.0f%s", n, unit);
  else std::snprintf(buf, sizeof buf, n < 9.995 ? "%.2f%s" : n < 99.95 ? "%.1f%s" : "%.0f%s", n, unit);
  return buf;
}

std::string format_eta(double seconds) {
  long long s = std::isfinite(seconds) && seconds > 0 ? std::llround(seconds) : 0;
  if (s > 359999) s = 359999;  // 99h59m
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  return buf;
}

std::string format_progress(std::string_view tool, const ProgressSample& s) {
  double rate = s.seconds > 0 ? static_cast<double>(s.done) / s.seconds : 0;
  std::string out(tool);
  out += ": ";
  if (s.bytes) {
    out += format_count(static_cast<double>(s.done), true) + " read, " +
           format_count(rate, true) + "/s";
  } else {
    out += format_count(static_cast<double>(s.done), false);
    if (s.total) out += "/" + format_count(static_cast<double>(s.total), false);
    out += " ";
    out += s.what;
    out += ", " + format_count(rate, false) + "/s";
  }
  if (s.total) {
    double frac = std::min(1.0, static_cast<double>(s.done) / static_cast<double>(s.total));
    char pct[16];
    std::snprintf(pct, sizeof pct, "%d%%", static_cast<int>(100 * frac));
    out += ", ";
    out += pct;
    if (rate > 0 && s.done < s.total)
      out += " (ETA " + format_eta(static_cast<double>(s.total - s.done) / rate) + ")";
  }
  if (s.bytes && !s.what.empty()) {
    out += ", " + format_count(static_cast<double>(s.records), false) + " ";
    out += s.what;
  }
  return out;
}

namespace {
std::uint64_t regular_size(int rc, const struct stat& st) {
  if (rc != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}
}  // namespace

std::uint64_t regular_file_size(int fd) {
  struct stat st {};
  return regular_size(::fstat(fd, &st), st);
}

std::uint64_t regular_file_size(const std::string& path) {
  struct stat st {};
  return regular_size(::stat(path.c_str(), &st), st);
}

Progress::Progress(bool enabled, std::string what)
    : enabled_(enabled), what_(std::move(what)), start_ns_(enabled ? monotonic_ns() : 0) {}

Progress Progress::bytes(bool enabled, std::uint64_t total_bytes, std::string records) {
  Progress p(enabled, std::move(records));
  p.bytes_ = true;
  p.total_ = total_bytes;
  return p;
}

void Progress::update(std::uint64_t done, std::uint64_t total, std::uint64_t records) {
  if (!enabled_) return;
  TimeNs now = monotonic_ns();
  if (now - last_ns_ < 250 * kNsPerMs) return;
  last_ns_ = now;
  ProgressSample s{bytes_, what_, done, total ? total : total_, records,
                   static_cast<double>(now - start_ns_) / 1e9};
  log::write_stderr("\r" + format_progress(log::tool(), s) + "\033[K");
  shown_ = true;
}

void Progress::finish() {
  if (shown_) log::write_stderr("\r\033[K");
  shown_ = false;
}

}  // namespace ep
