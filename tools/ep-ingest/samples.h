#pragma once
// Samples from the protocols other agents speak (Prometheus remote write, OTLP, Influx
// line protocol, collectd, logfmt, …), mapped to EdgePulse series and grouped by device.
//
// Series identity (docs/ep-ingest.md, "Series identity"): those protocols name a series by
// a metric name and a set of labels (tags, attributes); EdgePulse by device and metric.
// The first of SeriesMapping::device_labels that a sample carries names the device and
// leaves the label set; the remaining labels stay part of the metric, written the way
// Prometheus writes a series: name{k="v",k2="v2"} with the labels sorted by name and \\ \"
// \n escaped in values. Two different label sets therefore never become one series.
//
// A SampleSink collects one request's samples. A sample that breaks a rule is dropped
// with a reason naming it (the rest of the request goes on); the caller reports the
// rejected count and the first reasons in the protocol's own way.
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ep/status.h"
#include "payload.h"

namespace ep::ingest {

struct Label {
  std::string_view name, value;
};

struct SeriesMapping {
  // Labels naming the device, in order of preference (--device-label).
  std::vector<std::string> device_labels{"device", "instance", "host", "host.name",
                                         "service.instance.id"};
  // The device of a sample that carries none of them (--default-device); empty: such a
  // sample is rejected.
  std::string default_device;
};

// The metric identity of name + labels (labels need not be sorted; the device label must
// already be removed). Appends to out. The result follows metric_problem (ep/records.h).
void append_series_metric(std::string& out, std::string_view name, std::span<const Label> labels);


class SampleSink {
 public:
  struct Group {
    std::string_view device;
    std::vector<PayloadPoint> points;
  };

  SampleSink(const SeriesMapping& mapping, const Limits& limits) : mapping_(mapping), limits_(limits) {}
  // Empties the sink for a new request (keeps its buffers).
  void reset(TimeNs now);

  // A sample named by metric name and labels (the device label among them).
  void add(std::string_view name, std::span<const Label> labels, TimeNs ts, double value,
           std::string_view unit = {});
  // A sample whose device and metric are already known.
  void add_point(std::string_view device, std::string_view metric, TimeNs ts, double value,
                 std::string_view unit = {});
  // Input that yields no sample (a bad line, an unsupported metric type): counted as
  // `count` rejected samples, the reason kept if among the first few.
  void reject(std::string reason, size_t count = 1);
  // After the last add of a request: drops the points for which problem(device, point)
  // names a problem (each counted rejected with that reason) and the groups left empty.
  // Returns how many points were dropped.
  template <typename Problem>
  size_t drop_points(Problem problem);

  std::span<const Group> groups() const { return {groups_.data(), used_}; }
  // The clock for ts checks and for samples without a timestamp (stdin moves it per line).
  void set_now(TimeNs now) { now_ = now; }
  TimeNs now() const { return now_; }
  const SeriesMapping& mapping() const { return mapping_; }
  // Streams (stdin): the groups given points since the last call, in the order they got
  // their first one; empties the list.
  const std::vector<size_t>& take_touched();
  // Streams: drops the points of group i (emitted); the group and the interned strings stay
  // until reset().
  void clear_group(size_t i) { groups_[i].points.clear(); }
  // Streams: forgets the rejected count and reasons (kept per line).
  void clear_rejects() {
    rejected_ = 0;
    reasons_.clear();
  }
  size_t accepted() const { return accepted_; }
  const Limits& limits() const { return limits_; }
  size_t rejected() const { return rejected_; }
  // The first reasons (at most kMaxReasons), in input order.
  const std::vector<std::string>& reasons() const { return reasons_; }
  // "2 of 10 samples rejected: <first reason>; <second reason>" ("" when none).
  std::string summary() const;

  static constexpr size_t kMaxReasons = 5;

 private:
  // A label set seen before (in any request of this sink): its device and metric, both
  // valid, and its group in this request when gen == gen_. Saves finding the device,
  // sorting, escaping and validating again for every sample of a known series.
  struct Series {
    std::string device, metric;
    std::uint64_t gen = UINT64_MAX;  // no request's yet
    size_t group = 0;
  };
  static constexpr size_t kMaxSeries = 100000;  // the cache is emptied past this (at reset)

  Series* series_of(std::string_view name, std::span<const Label> labels);
  size_t group_index(std::string_view device);
  // Appends p to group gi (noting gi as touched) and counts it accepted.
  void push(size_t gi, const PayloadPoint& p);
  Group& group_of(std::string_view device) { return groups_[group_index(device)]; }
  // The checks of the sample itself (value, ts, unit); "" when it is fine.
  std::string sample_problem(std::string_view device, std::string_view metric, TimeNs ts, double value,
                             std::string_view unit) const;
  std::string_view intern(std::string_view s);

  // Removes the groups without points (after drop_points), keeping the order.
  void compact_groups();

  const SeriesMapping& mapping_;
  const Limits& limits_;
  TimeNs now_ = 0;
  std::vector<Group> groups_;  // the first used_ are this request's
  size_t used_ = 0;
  std::unordered_map<std::string_view, size_t> group_index_;
  std::deque<std::string> strings_;  // interned devices, metrics, units (stable views)
  std::unordered_map<std::string_view, std::string_view> interned_;
  std::unordered_set<std::string_view> valid_metrics_;  // interned metrics that passed metric_problem
  std::vector<Label> scratch_labels_;
  std::unordered_map<std::string, Series> series_;  // key: name and labels, length-prefixed
  std::string key_;
  std::uint64_t gen_ = 0;  // one per request (reset)
  std::string scratch_;
  size_t accepted_ = 0, rejected_ = 0;
  std::vector<std::string> reasons_;
  std::vector<size_t> touched_, touched_out_;
  std::vector<std::uint64_t> touched_epoch_;  // per group: epoch_ when last touched
  std::uint64_t epoch_ = 1;
};

template <typename Problem>
size_t SampleSink::drop_points(Problem problem) {
  size_t dropped = 0;
  for (size_t gi = 0; gi < used_; ++gi) {
    auto& points = groups_[gi].points;
    std::erase_if(points, [&](const PayloadPoint& p) {
      std::string why = problem(groups_[gi].device, p);
      if (why.empty()) return false;
      reject(std::move(why));
      ++dropped;
      return true;
    });
  }
  if (dropped) {
    accepted_ -= dropped;
    compact_groups();
  }
  return dropped;
}

}  // namespace ep::ingest
