#include "surprise.h"

#include <algorithm>
#include <cmath>

namespace ep::score {

Likelihood::Likelihood(std::size_t short_window, std::size_t history, std::size_t min_history)
    : short_(std::max<std::size_t>(short_window, 1)),
      history_(std::max<std::size_t>(history, 1)),
      min_history_(min_history) {
  ring_.reserve(short_);
}

double Likelihood::push(double raw) {
  if (!std::isfinite(raw)) raw = 1.0;
  if (ring_.size() < short_) {
    ring_.push_back(raw);
    sum_ += raw;
  } else {
    sum_ += raw - ring_[head_];
    ring_[head_] = raw;
    head_ = (head_ + 1) % short_;
    // Recompute now and then so rounding in the running sum cannot accumulate.
    if (head_ == 0) {
      sum_ = 0;
      for (double v : ring_) sum_ += v;
    }
  }
  const double avg = sum_ / static_cast<double>(ring_.size());
  double out = -1;
  if (seen_ >= min_history_ && seen_ > 0) {
    const double sd = std::max(std::sqrt(std::max(var_, 0.0)), 1e-4);
    const double z = (avg - mean_) / sd;
    out = likelihood_score(0.5 * std::erfc(z / std::sqrt(2.0)));
  }
  ++seen_;
  const double alpha = 1.0 / static_cast<double>(std::min(seen_, history_));
  const double d = avg - mean_;
  mean_ += alpha * d;
  var_ = (1 - alpha) * (var_ + alpha * d * d);
  return out;
}

double likelihood_score(double p) {
  if (!(p >= 0)) p = 0;
  const double s = std::log(1e-10 + p) / std::log(1e-10);
  return std::clamp(s, 0.0, 1.0);
}

int RangeNovelty::push(double lo, double hi) {
  if (!std::isfinite(lo) && !std::isfinite(hi)) return 0;
  if (!std::isfinite(lo)) lo = hi;
  if (!std::isfinite(hi)) hi = lo;
  int novel = 0;
  if (seen_ == 0) {
    lo_ = lo;
    hi_ = hi;
  } else if (seen_ >= after_) {
    const double margin = tol_ * (hi_ - lo_);
    if (hi > hi_ + margin) novel = 1;
    else if (lo < lo_ - margin) novel = -1;
  }
  prev_lo_ = lo_;
  prev_hi_ = hi_;
  lo_ = std::min(lo_, lo);
  hi_ = std::max(hi_, hi);
  ++seen_;
  return novel;
}

}  // namespace ep::score
