#include "sample_buffer.h"

#include <algorithm>

namespace ep::features {

void SampleBuffer::insert(Sample s) {
  if (data_.size() == head_ || data_.back().ts <= s.ts) {
    data_.push_back(s);
    return;
  }
  auto it = std::upper_bound(data_.begin() + static_cast<std::ptrdiff_t>(head_), data_.end(), s.ts,
                             [](TimeNs t, const Sample& x) { return t < x.ts; });
  data_.insert(it, s);
}

void SampleBuffer::pop_front() {
  ++head_;
  compact();
}

void SampleBuffer::drop_before(TimeNs t) {
  while (head_ < data_.size() && data_[head_].ts < t) ++head_;
  compact();
}

void SampleBuffer::compact() {
  if (head_ == data_.size()) {
    data_.clear();
    head_ = 0;
  } else if (head_ >= 1024 && head_ * 2 >= data_.size()) {
    data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

size_t SampleBuffer::lower_bound(TimeNs t) const {
  auto it = std::lower_bound(begin(), end(), t, [](const Sample& x, TimeNs v) { return x.ts < v; });
  return static_cast<size_t>(it - begin());
}

std::span<const Sample> SampleBuffer::range(TimeNs from, TimeNs to) const {
  size_t a = lower_bound(from);
  size_t b = a;
  const Sample* p = begin();
  // Windows are usually short relative to the buffer's tail: walk instead of searching.
  while (b < size() && p[b].ts < to) ++b;
  return {p + a, b - a};
}

void SortedValues::insert(double v) {
  v_.insert(std::upper_bound(v_.begin(), v_.end(), v), v);
}

void SortedValues::erase(double v) {
  auto it = std::lower_bound(v_.begin(), v_.end(), v);
  if (it != v_.end() && *it == v) v_.erase(it);
}

double median_sorted(std::span<const double> s) {
  size_t n = s.size();
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

// MAD of ascending x: the middle of the |x - m| sequence, found by merging the two
// runs that move away from m (left of m read backwards, right of m forwards); stops
// after n/2 + 1 steps, so a window of N sorted values costs O(N/2), no copy.
double mad_sorted(std::span<const double> s, double m) {
  const size_t n = s.size();
  if (n == 0) return 0;
  size_t right = static_cast<size_t>(std::lower_bound(s.begin(), s.end(), m) - s.begin());
  std::ptrdiff_t left = static_cast<std::ptrdiff_t>(right) - 1;
  const size_t k = n / 2;
  double prev = 0, d = 0;
  for (size_t taken = 0; taken <= k; ++taken) {
    prev = d;
    double dl = left >= 0 ? m - s[static_cast<size_t>(left)] : -1;
    double dr = right < n ? s[right] - m : -1;
    if (dr < 0 || (dl >= 0 && dl <= dr)) {
      d = dl;
      --left;
    } else {
      d = dr;
      ++right;
    }
  }
  return n % 2 ? d : (prev + d) / 2;
}

}  // namespace ep::features
