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

Result<std::size_t> get_count(const rapidjson::Value& v, const char* key, std::string_view path) {
  // At most INT64_MAX: counts are written back as int64.
  auto it = v.FindMember(key);
  if (it == v.MemberEnd() || !it->value.IsInt64() || it->value.GetInt64() < 0)
    return Status::data(json_path(path, key) + ": expected a non-negative integer");
  return static_cast<std::size_t>(it->value.GetInt64());
}

void Likelihood::save(JsonWriter& w) const {
  w.start_object();
  w.key("ring");
  w.start_array();
  for (double v : ring_) w.num(v);
  w.end_array();
  w.kv("head", static_cast<std::int64_t>(head_));
  w.kv("sum", sum_);
  w.kv("mean", mean_);
  w.kv("var", var_);
  w.kv("seen", static_cast<std::int64_t>(seen_));
  w.end_object();
}

Status Likelihood::load(const rapidjson::Value& v) {
  if (!v.IsObject()) return Status::data("expected an object");
  auto ring = v.FindMember("ring");
  if (ring == v.MemberEnd() || !ring->value.IsArray())
    return Status::data("ring: expected an array");
  if (ring->value.Size() > short_)
    return Status::data("ring: " + std::to_string(ring->value.Size()) +
                        " scores, more than --likelihood " + std::to_string(short_));
  std::vector<double> r;
  for (const auto& x : ring->value.GetArray()) {
    if (!x.IsNumber()) return Status::data("ring: expected numbers");
    r.push_back(x.GetDouble());
  }
  auto head = get_count(v, "head");
  auto sum = get_number(v, "sum");
  auto mean = get_number(v, "mean");
  auto var = get_number(v, "var");
  auto seen = get_count(v, "seen");
  if (!head) return head.status();
  if (!sum) return sum.status();
  if (!mean) return mean.status();
  if (!var) return var.status();
  if (!seen) return seen.status();
  if (*head >= std::max<std::size_t>(r.size(), 1)) return Status::data("head: out of range");
  ring_ = std::move(r);
  head_ = *head;
  sum_ = *sum;
  mean_ = *mean;
  var_ = *var;
  seen_ = *seen;
  return Status::ok();
}

void RangeNovelty::save(JsonWriter& w) const {
  w.start_object();
  w.kv("seen", static_cast<std::int64_t>(seen_));
  w.kv("lo", lo_);
  w.kv("hi", hi_);
  w.end_object();
}

Status RangeNovelty::load(const rapidjson::Value& v) {
  if (!v.IsObject()) return Status::data("expected an object");
  auto seen = get_count(v, "seen");
  auto lo = get_number(v, "lo");
  auto hi = get_number(v, "hi");
  if (!seen) return seen.status();
  if (!lo) return lo.status();
  if (!hi) return hi.status();
  if (*seen > 0 && !(*lo <= *hi)) return Status::data("lo: above hi");
  seen_ = *seen;
  lo_ = prev_lo_ = *lo;
  hi_ = prev_hi_ = *hi;
  return Status::ok();
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
