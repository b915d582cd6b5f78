#include "samples.h"

#include <algorithm>
#include <cmath>

#include "ep/records.h"

namespace ep::ingest {

namespace {

void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

// A string of a series' cache key, length-prefixed (label values may hold any byte).
void append_key(std::string& key, std::string_view s) {
  auto n = static_cast<std::uint32_t>(s.size());
  key.append(reinterpret_cast<const char*>(&n), sizeof n).append(s);
}

}  // namespace

void append_series_metric(std::string& out, std::string_view name, std::span<const Label> labels) {
  out += name;
  if (labels.empty()) return;
  thread_local std::vector<Label> sorted;
  sorted.assign(labels.begin(), labels.end());
  std::sort(sorted.begin(), sorted.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
  out += '{';
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i) out += ',';
    out += sorted[i].name;
    out += "=\"";
    append_escaped(out, sorted[i].value);
    out += '"';
  }
  out += '}';
}

void SampleSink::reset(TimeNs now) {
  now_ = now;
  for (size_t i = 0; i < used_; ++i) groups_[i].points.clear();
  used_ = 0;
  group_index_.clear();
  interned_.clear();
  valid_metrics_.clear();
  strings_.clear();
  accepted_ = rejected_ = 0;
  reasons_.clear();
  ++gen_;
  if (series_.size() > kMaxSeries) series_.clear();
  touched_.clear();
  ++epoch_;
}

const std::vector<size_t>& SampleSink::take_touched() {
  touched_out_.swap(touched_);
  touched_.clear();
  ++epoch_;
  return touched_out_;
}

void SampleSink::push(size_t gi, const PayloadPoint& p) {
  if (touched_epoch_.size() <= gi) touched_epoch_.resize(gi + 1, 0);
  if (touched_epoch_[gi] != epoch_) {
    touched_epoch_[gi] = epoch_;
    touched_.push_back(gi);
  }
  groups_[gi].points.push_back(p);
  ++accepted_;
}

std::string_view SampleSink::intern(std::string_view s) {
  if (auto it = interned_.find(s); it != interned_.end()) return it->second;
  std::string_view v = strings_.emplace_back(s);
  interned_.emplace(v, v);
  return v;
}

size_t SampleSink::group_index(std::string_view device) {
  if (auto it = group_index_.find(device); it != group_index_.end()) return it->second;
  if (used_ == groups_.size()) groups_.emplace_back();
  Group& g = groups_[used_];
  g.device = intern(device);
  group_index_.emplace(g.device, used_);
  return used_++;
}

void SampleSink::compact_groups() {
  size_t kept = 0;
  for (size_t i = 0; i < used_; ++i) {
    if (groups_[i].points.empty()) continue;
    if (kept != i) std::swap(groups_[kept], groups_[i]);
    ++kept;
  }
  used_ = kept;
  group_index_.clear();
  for (size_t i = 0; i < used_; ++i) group_index_.emplace(groups_[i].device, i);
  ++gen_;  // the cached group of each series is stale
}

void SampleSink::reject(std::string reason, size_t count) {
  rejected_ += count;
  if (reasons_.size() < kMaxReasons) reasons_.push_back(std::move(reason));
}

SampleSink::Series* SampleSink::series_of(std::string_view name, std::span<const Label> labels) {
  key_.clear();
  append_key(key_, name);
  for (const auto& l : labels) {
    append_key(key_, l.name);
    append_key(key_, l.value);
  }
  if (auto it = series_.find(key_); it != series_.end()) return &it->second;
  std::string_view device;
  size_t device_at = labels.size();
  for (const auto& want : mapping_.device_labels) {
    for (size_t i = 0; i < labels.size() && device_at == labels.size(); ++i)
      if (labels[i].name == want && !labels[i].value.empty()) device_at = i;
    if (device_at != labels.size()) break;
  }
  if (device_at != labels.size()) {
    device = labels[device_at].value;
  } else if (!mapping_.default_device.empty()) {
    device = mapping_.default_device;
  } else {
    scratch_.clear();
    append_series_metric(scratch_, name, labels);
    reject(scratch_ + ": no device label (looked for --device-label; set --default-device)");
    return nullptr;
  }
  scratch_labels_.clear();
  for (size_t i = 0; i < labels.size(); ++i)
    if (i != device_at) scratch_labels_.push_back(labels[i]);
  scratch_.clear();
  append_series_metric(scratch_, name, scratch_labels_);
  std::string problem;
  if (!valid_name(device, limits_.max_name_len)) problem = "device: not a valid name ([A-Za-z0-9._:/-], 1-128)";
  else if (const char* why = metric_problem(scratch_, limits_.max_metric_bytes); *why) problem = std::string("metric: ") + why;
  if (!problem.empty()) {
    reject(std::string(device) + "/" + scratch_ + ": " + problem);
    return nullptr;
  }
  return &series_.emplace(key_, Series{std::string(device), scratch_}).first->second;
}

void SampleSink::add(std::string_view name, std::span<const Label> labels, TimeNs ts, double value,
                     std::string_view unit) {
  Series* s = series_of(name, labels);
  if (!s) return;
  if (std::string why = sample_problem(s->device, s->metric, ts, value, unit); !why.empty()) return reject(std::move(why));
  if (s->gen != gen_) {
    s->group = group_index(s->device);
    s->gen = gen_;
  }
  // The metric's view stays valid until the next reset (the cache is only emptied there).
  push(s->group, PayloadPoint{s->metric, ts, value, unit.empty() ? std::string_view{} : intern(unit)});
}

std::string SampleSink::sample_problem(std::string_view device, std::string_view metric, TimeNs ts, double value,
                                       std::string_view unit) const {
  auto fail = [&](std::string_view field, const char* why) {
    return std::string(device) + "/" + std::string(metric) + ": " + std::string(field) + ": " + why;
  };
  if (!std::isfinite(value)) return fail("value", "not a finite number");
  if (const char* why = check_ts(ts, limits_, now_); *why) return fail("ts", why);
  if (const char* why = check_unit(unit, limits_); *why) return fail("unit", why);
  return {};
}

void SampleSink::add_point(std::string_view device, std::string_view metric, TimeNs ts, double value,
                           std::string_view unit) {
  auto fail = [&](std::string_view field, const char* why) {
    reject(std::string(device) + "/" + std::string(metric) + ": " + std::string(field) + ": " + why);
  };
  // Devices and metrics seen before in this request (or stream) were checked then.
  auto known_group = group_index_.find(device);
  bool known_device = known_group != group_index_.end();
  if (!known_device && !valid_name(device, limits_.max_name_len))
    return fail("device", "not a valid name ([A-Za-z0-9._:/-], 1-128)");
  auto known_metric = valid_metrics_.find(metric);
  if (known_metric == valid_metrics_.end())
    if (const char* why = metric_problem(metric, limits_.max_metric_bytes); *why) return fail("metric", why);
  if (std::string why = sample_problem(device, metric, ts, value, unit); !why.empty()) return reject(std::move(why));
  Group& g = known_device ? groups_[known_group->second] : group_of(device);
  std::string_view m = known_metric != valid_metrics_.end() ? *known_metric : intern(metric);
  if (known_metric == valid_metrics_.end()) valid_metrics_.insert(m);
  push(static_cast<size_t>(&g - groups_.data()), PayloadPoint{m, ts, value, unit.empty() ? std::string_view{} : intern(unit)});
}

std::string SampleSink::summary() const {
  if (rejected_ == 0) return {};
  std::string s = std::to_string(rejected_) + " of " + std::to_string(rejected_ + accepted_) +
                  " samples rejected: ";
  for (size_t i = 0; i < reasons_.size(); ++i) s += (i ? "; " : "") + reasons_[i];
  return s;
}

}  // namespace ep::ingest
