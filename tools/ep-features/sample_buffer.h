#pragma once
// Per-series storage of the points of open windows.
//  SampleBuffer: (ts, value) pairs sorted by ts, appended at the back (out-of-order
//    points are inserted in place), dropped from the front as windows close. A vector
//    with a moving head: contiguous spans for the feature pass, amortised O(1) pops.
//  SortedValues: the values of a count window kept sorted, so a sliding window of N
//    points costs two binary searches and two short memmoves per point instead of a
//    selection over N values (see docs/ep-features.md, "Sliding median").
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ep/time.h"

namespace ep::features {

struct Sample {
  TimeNs ts;
  double value;
};

class SampleBuffer {
 public:
  size_t size() const { return data_.size() - head_; }
  bool empty() const { return size() == 0; }
  const Sample& front() const { return data_[head_]; }
  const Sample& back() const { return data_.back(); }
  const Sample* begin() const { return data_.data() + head_; }
  const Sample* end() const { return data_.data() + data_.size(); }

  // Appends, or inserts after every sample with ts <= s.ts (stable for equal ts).
  void insert(Sample s);
  void push_back(Sample s) { data_.push_back(s); }
  // Drops the oldest sample.
  void pop_front();
  // Drops every sample with ts < t.
  void drop_before(TimeNs t);
  // Index range of samples with from <= ts < to.
  std::span<const Sample> range(TimeNs from, TimeNs to) const;
  // Samples with ts >= t: index of the first one (size() when none).
  size_t lower_bound(TimeNs t) const;
  void clear() { data_.clear(); head_ = 0; }
  size_t capacity_bytes() const { return data_.capacity() * sizeof(Sample); }

 private:
  void compact();
  std::vector<Sample> data_;
  size_t head_ = 0;
};

class SortedValues {
 public:
  void insert(double v);
  // Removes one occurrence of v (which must be present).
  void erase(double v);
  size_t size() const { return v_.size(); }
  const std::vector<double>& values() const { return v_; }
  void clear() { v_.clear(); }

 private:
  std::vector<double> v_;
};

// Median and MAD (median of |x - median|, unscaled) of ascending values.
double median_sorted(std::span<const double> sorted);
double mad_sorted(std::span<const double> sorted, double median);

}  // namespace ep::features
