#include "output.h"

#include <charconv>

namespace ep::features {
namespace {

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

}  // namespace

void append_window_json(std::string& out, const WindowOut& w) {
  out += w.series->json_prefix;
  out += ",\"start\":\"";
  append_rfc3339(out, w.start);
  out += "\",\"end\":\"";
  append_rfc3339(out, w.end);
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
