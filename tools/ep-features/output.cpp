#include "output.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace ep::features {
namespace {

// Shortest form that reads back as the same double (Ryu in libstdc++).
void append_number(std::string& out, double v) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(p - buf));
}
void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(p - buf));
}

void two(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

// append_rfc3339 without snprintf: windows are written at up to millions per second
// (count windows), and formatting dominated. The date part is cached per day.
void append_ts(std::string& out, TimeNs t) {
  thread_local std::int64_t cached_day = INT64_MIN;
  thread_local char date[11];
  if (t < 0) {  // before 1970 (int64 ns end in 2262, well inside 4-digit years)
    append_rfc3339(out, t);
    return;
  }
  std::int64_t ms = t / kNsPerMs, secs = ms / 1000, day = secs / 86400;
  int msr = static_cast<int>(ms % 1000), sod = static_cast<int>(secs % 86400);
  if (day != cached_day) {
    std::int64_t y;
    unsigned m, d;
    civil_from_days(day, y, m, d);
    two(date, static_cast<int>(y / 100));
    two(date + 2, static_cast<int>(y % 100));
    date[4] = '-';
    two(date + 5, static_cast<int>(m));
    date[7] = '-';
    two(date + 8, static_cast<int>(d));
    date[10] = 'T';
    cached_day = day;
  }
  char buf[24];
  std::copy(date, date + 11, buf);
  two(buf + 11, sod / 3600);
  buf[13] = ':';
  two(buf + 14, sod / 60 % 60);
  buf[16] = ':';
  two(buf + 17, sod % 60);
  buf[19] = '.';
  buf[20] = static_cast<char>('0' + msr / 100);
  two(buf + 21, msr % 100);
  buf[23] = 'Z';
  out.append(buf, 24);
}

}  // namespace

void append_window_json(std::string& out, const WindowOut& w) {
  out += w.series->json_prefix;
  out += ",\"start\":\"";
  append_ts(out, w.start);
  out += "\",\"end\":\"";
  append_ts(out, w.end);
  out += "\",\"n\":";
  append_int(out, w.n);
  if (w.expected >= 0) {
    out += ",\"expected\":";
    append_int(out, w.expected);
  }
  out += ",\"features\":";
  append_features_json(out, w.features);
  out += '}';
}

void append_features_json(std::string& out, const FeatureSet& features) {
  out += '{';
  bool first = true;
  for (int f = 0; f < kFeatureCount; ++f) {
    auto id = static_cast<Feature>(f);
    if (!features.has(id)) continue;
    if (!first) out += ',';
    first = false;
    out += '"';
    out += kFeatureNames[f];
    out += "\":";
    if (id == kStuck) out += features.get(id) != 0 ? "true" : "false";
    else append_number(out, features.get(id));
  }
  out += '}';
}

void NdjsonWindowSink::on_window(const WindowOut& w) {
  if (broken_) return;
  line_.clear();
  append_window_json(line_, w);
  if (!out_.write(line_)) broken_ = true;
}

}  // namespace ep::features
