#include "score.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cmath>
#include <deque>
#include <numeric>
#include <optional>

#include "ep/fsutil.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/progress.h"
#include "surprise.h"

namespace ep::score {

namespace {

constexpr std::size_t kMaxFallbackFeatures = 256;

double window_value(const Window& w, const std::string& name) {
  if (const double* v = w.feature(name)) return *v;
  if (name == "n") return static_cast<double>(w.n);
  if (name == "expected" && w.expected > 0) return static_cast<double>(w.expected);
  return std::nan("");
}

int index_of(const std::vector<std::string>& names, std::string_view n) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == n) return static_cast<int>(i);
  return -1;
}

// The `count` features with the largest |z| (finite values only), largest first.
std::vector<Explanation> explain(const std::vector<std::string>& names,
                                 const std::vector<double>& values,
                                 const std::vector<double>& baseline, const std::vector<double>& z,
                                 std::size_t count) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (std::isfinite(values[i]) && std::isfinite(z[i])) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return std::fabs(z[a]) > std::fabs(z[b]); });
  if (order.size() > count) order.resize(count);
  std::vector<Explanation> out;
  for (std::size_t i : order) out.push_back({names[i], values[i], baseline[i], z[i]});
  return out;
}

}  // namespace

std::string label_for(const std::vector<std::string>& names, const std::vector<double>& values,
                      const std::vector<double>& baseline, const std::vector<double>& z) {
  auto zf = [&](std::string_view n) {
    int i = index_of(names, n);
    return i >= 0 && std::isfinite(z[i]) ? z[i] : 0.0;
  };
  // A feature's value minus its baseline; NaN when the feature is not there.
  auto delta = [&](std::string_view n) {
    int i = index_of(names, n);
    return i >= 0 ? values[i] - baseline[i] : std::nan("");
  };
  double max_abs = 0;
  for (double v : z)
    if (std::isfinite(v)) max_abs = std::max(max_abs, std::fabs(v));

  // stuck: a flat stretch far less likely than the series' usual flat steps allow
  // (flat_surprise), or a window that did not change although the baseline does. The
  // latter also happens to an ordinary window of two or three equal samples, or of one
  // sample left by a gap, so where flat_surprise is known it must be half as unusual too.
  double flat = kStuckSurprise;  // no flat_surprise (older windows and models): no test
  if (int fs = index_of(names, "flat_surprise"); fs >= 0 && std::isfinite(values[fs])) {
    flat = values[fs] - (std::isfinite(baseline[fs]) ? baseline[fs] : 0);
    if (flat >= kStuckSurprise) return "stuck";
  }
  if (flat >= kStuckSurprise / 2) {
    int st = index_of(names, "stuck");
    if (st >= 0 && values[st] >= 0.5 && baseline[st] < 0.5) return "stuck";
    int rg = index_of(names, "range");
    if (rg >= 0 && values[rg] == 0 && baseline[rg] > 0 && zf("range") < -1) return "stuck";
  }

  double zm = zf("missing_rate");
  if (zm >= 3 && zm >= 0.5 * max_abs) return "missingness";

  // The robust level (median, else mean) moved about as far as the extremes: the whole
  // window shifted (drift). Extremes alone: a few points (spike/drop); these also move
  // the mean, slope and delta_mean, so those only decide when the extremes are quiet.
  double hi = std::max(zf("max"), 0.0), lo = std::max(-zf("min"), 0.0), ext = std::max(hi, lo);
  double level = std::fabs(index_of(names, "median") >= 0 ? zf("median") : zf("mean"));
  if (level >= 3 && level >= 0.6 * ext) {
    // A sudden jump inside the window (first differences far beyond their baseline) is
    // a spike or drop that covers much of the window; a gradual move is drift.
    double zl = index_of(names, "median") >= 0 ? zf("median") : zf("mean");
    if (zf("max_abs_diff") >= 3) return zl < 0 ? "drop" : "spike";
    // So is a jump at the window's start: the level moved since the previous window by
    // most of its distance from the usual value at this time of day. A drift gets there
    // over many windows.
    const double moved = delta("delta_mean"), off = delta("season_day");
    if (std::isfinite(moved) && std::isfinite(off) && std::fabs(zf("delta_mean")) >= 3 &&
        std::fabs(moved) >= 0.5 * std::fabs(off))
      return zl < 0 ? "drop" : "spike";
    return "drift";
  }
  if (ext >= 3) return hi >= lo ? "spike" : "drop";
  double trend = 0;
  for (const char* n : {"slope", "delta_mean", "season_day", "season_week"})
    trend = std::max(trend, std::fabs(zf(n)));
  if (trend >= 3) return "drift";
  if (hi > 0 || lo > 0) return hi >= lo ? "spike" : "drop";
  // No extremes among the features: the direction of the strongest deviation decides.
  std::size_t top = 0;
  for (std::size_t i = 1; i < z.size(); ++i)
    if (std::fabs(z[i]) > std::fabs(z[top])) top = i;
  return !z.empty() && z[top] < 0 ? "drop" : "spike";
}

double fallback_score(double z, double z0) {
  z = std::fabs(z);
  if (!std::isfinite(z)) return 1.0;
  double z2 = z * z;
  return z2 / (z2 + z0 * z0);
}

bool is_spread_feature(std::string_view name) {
  return name == "std" || name == "mad" || name == "range" || name == "diff_std" ||
         name == "max_abs_diff";
}

double guard_z(std::string_view name, double value, double baseline, double z) {
  if (name == "flat_surprise") return value > baseline ? value - baseline : 0.0;
  if (!(z > 0) || !(value > baseline)) return z;
  const double scale = (value - baseline) / z;  // the robust scale the z was computed with
  if (name == "missing_rate") {
    if (!(baseline < 1)) return z;
    const double present = std::max(1 - value, kMinPresentShare), usual = 1 - baseline;
    return std::log(usual / present) * usual / scale;
  }
  if (!(baseline > 0) || !is_spread_feature(name)) return z;
  return std::log(value / baseline) * baseline / scale;
}

namespace {

// FNV-1a over a window's n, expected and feature names and value bits.
std::uint64_t features_hash(const Window& w) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  };
  mix(&w.n, sizeof w.n);
  mix(&w.expected, sizeof w.expected);
  for (const auto& f : w.features) {
    mix(f.name.data(), f.name.size() + 1 /* the terminator separates names */);
    mix(&f.value, sizeof f.value);
  }
  return h;
}

}  // namespace

struct Scorer::State {
  bool from_state = false;  // loaded by --state
  // The latest window scored (by end, then start): a window at or before it is scored
  // again (an overlapping lookback, a rewritten features row) without changing the state.
  bool scored_any = false;
  TimeNs last_start = 0, last_end = 0;
  // With --state: the latest results, oldest first (Options::state_windows at most).
  struct Result {
    TimeNs start = 0, end = 0;
    std::uint64_t features = 0;  // hash of the window's n, expected and features
    Scored scored;
  };
  std::deque<Result> results;
  bool looked_up = false;
  SeriesKey model_key;  // the key the model was found under
  bool has_model = false;
  // Adaptation, for the model `model_id`.
  std::string model_id;
  std::vector<double> offset;              // baseline shift per model feature
  std::deque<std::vector<double>> recent;  // last K rows (model features)
  std::size_t anomalous_run = 0;
  // Fallback history.
  std::vector<std::string> fb_names;
  std::deque<std::vector<double>> fb_rows;
  // Stream mode.
  std::optional<Likelihood> likelihood;
  std::optional<RangeNovelty> range;
  std::string candidate_label;  // the label should the window turn out anomalous
  std::size_t rest_left = 0;
  // Events.
  bool in_event = false;
  double event_peak = 0;
  std::size_t normal_run = 0;
};

Scorer::Scorer(Options opt, const model::Source* store) : opt_(opt), store_(store) {}
Scorer::~Scorer() = default;

std::shared_ptr<const model::Model> Scorer::cache_get(const SeriesKey& k, Status& err,
                                                      bool& found) {
  found = false;
  std::string ks = k.to_string();
  if (auto it = lru_index_.find(ks); it != lru_index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    found = true;
    return it->second->model;
  }
  if (!store_) return nullptr;
  auto m = store_->load(k);
  if (!m) {
    if (m.status().code() != Code::kNotFound) err = m.status();
    return nullptr;
  }
  ++loads_;
  found = true;
  auto ptr = std::make_shared<const model::Model>(std::move(m).value());
  lru_.push_front({ks, ptr});
  lru_index_[ks] = lru_.begin();
  while (lru_.size() > std::max<std::size_t>(opt_.model_cache, 1)) {
    lru_index_.erase(lru_.back().key);
    lru_.pop_back();
  }
  return ptr;
}

void Scorer::reload_models() {
  if (store_) store_->refresh();
  lru_.clear();
  lru_index_.clear();
  for (auto& [key, st] : states_) {
    st->looked_up = false;
    st->has_model = false;
  }
}

std::shared_ptr<const model::Model> Scorer::model_for(State& st, const Window& w, Status& err) {
  bool found = false;
  if (!st.looked_up) {
    st.looked_up = true;
    SeriesKey own{w.tenant, w.device, w.metric};
    auto m = cache_get(own, err, found);
    if (found) {
      st.model_key = own;
      st.has_model = true;
      return m;
    }
    if (!err.is_ok()) return nullptr;
    SeriesKey group{w.tenant, model::kGroupDevice, w.metric};
    m = cache_get(group, err, found);
    if (found) {
      st.model_key = group;
      st.has_model = true;
    }
    return m;
  }
  if (!st.has_model) return nullptr;
  return cache_get(st.model_key, err, found);  // reloads when evicted from the cache
}

double Scorer::model_score(const model::Model& m, const std::vector<double>& offset,
                           const std::vector<double>& v, std::vector<double>& x,
                           std::vector<double>& base, std::vector<double>& z) const {
  const std::size_t d = m.features.size();
  x.resize(d), base.resize(d), z.resize(d);
  for (std::size_t f = 0; f < d; ++f) {
    base[f] = m.center[f] + offset[f];
    x[f] = std::isfinite(v[f]) ? v[f] : base[f];  // impute the baseline
    z[f] = (x[f] - base[f]) / m.scale[f];
  }
  double score = model::calibrate(m.forest.score(z.data()), m.threshold);
  if (opt_.z_guard > 0) {
    for (std::size_t f = 0; f < d; ++f)
      if (std::isfinite(v[f]))
        score = std::max(score, fallback_score(guard_z(m.features[f], x[f], base[f], z[f]), opt_.z_guard));
  }
  return score;
}

void Scorer::score_model(State& st, const model::Model& m, const Window& w, Score& out) {
  const std::size_t d = m.features.size();
  if (st.model_id != m.id() || st.offset.size() != d) {
    st.model_id = m.id();
    st.offset.assign(d, 0.0);
    st.recent.clear();
    st.anomalous_run = 0;
  }
  std::vector<double> shown(d);
  for (std::size_t f = 0; f < d; ++f)
    shown[f] = window_value(w, m.features[f]);  // NaN (absent) is left out of the explanation
  std::vector<double> x, base, z;
  out.score = model_score(m, st.offset, shown, x, base, z);
  out.anomaly = out.score >= opt_.threshold;
  if (out.anomaly && std::any_of(st.offset.begin(), st.offset.end(), [](double o) { return o != 0; })) {
    // Adapted to a level shift or a trend, and now off that new normal: when the window
    // fits the trained model again, the shift is over and the series is back to its
    // usual normal, which is not an anomaly (it was, for K more windows, before). The
    // jump back from the previous window (delta_mean) is that return, so it is left out.
    std::vector<double> none(d, 0.0), x0, base0, z0, back(shown);
    if (int dm = index_of(m.features, "delta_mean"); dm >= 0) back[dm] = std::nan("");
    const double trained = model_score(m, none, back, x0, base0, z0);
    if (trained < opt_.threshold) {
      st.offset = std::move(none);
      st.recent.clear();
      st.anomalous_run = 0;
      x = std::move(x0), base = std::move(base0), z = std::move(z0);
      out.score = trained;
      out.anomaly = false;
    }
  }
  out.label = out.anomaly ? label_for(m.features, x, base, z) : "normal";
  if (stream_mode()) st.candidate_label = out.anomaly ? out.label : label_for(m.features, x, base, z);
  out.model = m.id();
  out.explanation = explain(m.features, shown, base, z, opt_.explain);

  // Adaptation (see score.h).
  const std::size_t k = std::max<std::size_t>(opt_.adapt_after, 1);
  if (out.anomaly && (out.label == "missingness" || out.label == "stuck")) {
    // A gap or a stuck sensor is a fault, not a new normal: it never becomes the
    // baseline (it would, after K windows, and then the recovery would alarm).
    st.anomalous_run = 0;
    st.recent.clear();
    return;
  }
  st.recent.push_back(x);
  if (st.recent.size() > k) st.recent.pop_front();
  if (out.anomaly) {
    if (++st.anomalous_run >= k && st.recent.size() >= k) {
      std::vector<double> col(st.recent.size());
      for (std::size_t f = 0; f < d; ++f) {
        for (std::size_t i = 0; i < st.recent.size(); ++i) col[i] = st.recent[i][f];
        st.offset[f] = model::median_in_place(col) - m.center[f];
      }
      st.anomalous_run = 0;
      st.recent.clear();
    }
  } else {
    st.anomalous_run = 0;
    if (opt_.adapt_alpha > 0)
      for (std::size_t f = 0; f < d; ++f)
        st.offset[f] += opt_.adapt_alpha *
                        std::clamp(x[f] - base[f], -3 * m.scale[f], 3 * m.scale[f]);
  }
}

void Scorer::score_fallback(State& st, const Window& w, Score& out) {
  out.model = "fallback";
  out.status = "warming";
  // Align this window's features with the series' history columns.
  std::vector<double> row(st.fb_names.size(), std::nan(""));
  for (const auto& f : w.features) {
    int i = index_of(st.fb_names, f.name);
    if (i < 0) {
      if (st.fb_names.size() >= kMaxFallbackFeatures) continue;
      i = static_cast<int>(st.fb_names.size());
      st.fb_names.push_back(f.name);
      row.push_back(std::nan(""));
    }
    row[i] = f.value;
  }
  const std::size_t d = st.fb_names.size();
  std::vector<double> base(d, std::nan("")), z(d, std::nan(""));
  double best = 0;
  if (st.fb_rows.size() >= opt_.fallback_min) {
    std::vector<double> col;
    for (std::size_t f = 0; f < d; ++f) {
      if (!std::isfinite(row[f])) continue;
      col.clear();
      for (const auto& r : st.fb_rows)
        if (f < r.size() && std::isfinite(r[f])) col.push_back(r[f]);
      if (col.size() < opt_.fallback_min) continue;
      model::Robust rs = model::robust_stats(col);
      base[f] = rs.center;
      z[f] = (row[f] - rs.center) / rs.scale;
      best = std::max(best, fallback_score(guard_z(st.fb_names[f], row[f], base[f], z[f]),
                                           opt_.fallback_z));
    }
  }
  out.score = best;
  out.anomaly = best >= opt_.threshold && best > 0;
  if (out.anomaly || stream_mode()) {
    std::vector<double> zl(z), bl(base);
    for (std::size_t f = 0; f < d; ++f)
      if (!std::isfinite(zl[f])) zl[f] = 0, bl[f] = row[f];
    st.candidate_label = label_for(st.fb_names, row, bl, zl);
    out.label = out.anomaly ? st.candidate_label : "normal";
  } else {
    out.label = "normal";
  }
  out.explanation = explain(st.fb_names, row, base, z, opt_.explain);
  st.fb_rows.push_back(std::move(row));
  while (st.fb_rows.size() > std::max(opt_.fallback_history, opt_.fallback_min))
    st.fb_rows.pop_front();
}

Scored Scorer::score(const Window& w, Status& model_error) {
  Scored s;
  Score& out = s.score;
  out.tenant = w.tenant;
  out.device = w.device;
  out.metric = w.metric;
  out.start = w.start;
  out.end = w.end;
  auto& st = states_[SeriesKey{w.tenant, w.device, w.metric}];
  if (!st) st = std::make_unique<State>();
  const bool again = st->scored_any && (w.end < st->last_end ||
                                        (w.end == st->last_end && w.start <= st->last_start));
  const bool keep = !opt_.state.empty() && opt_.state_windows > 0;
  const std::uint64_t hash = keep ? features_hash(w) : 0;
  if (again && keep) {
    for (const auto& r : st->results)
      if (r.start == w.start && r.end == w.end && r.features == hash) return r.scored;
  }
  std::optional<State> before;
  if (again) before.emplace(*st);
  auto m = model_for(*st, w, model_error);
  if (m) {
    st->fb_rows.clear();  // the fallback's history is no longer needed
    st->fb_names.clear();
    score_model(*st, *m, w, out);
  } else {
    score_fallback(*st, w, out);
  }
  if (stream_mode()) post_process(*st, w, s);
  const bool resting = st->rest_left > 0;
  if (resting && --st->rest_left == 0) st->in_event = false;  // the rest period is over
  if (out.anomaly && resting) {
    // Within the rest period after an onset: the same event, whatever its score.
    if (opt_.dedupe) {
      s.repeat = true;
      out.score = std::min(out.score, std::nextafter(opt_.threshold, 0.0));
    }
    st->normal_run = 0;
  } else if (out.anomaly) {
    s.onset = !st->in_event;
    if (s.onset && opt_.rest > 0) st->rest_left = opt_.rest;
    if (s.onset || out.score > st->event_peak + 0.5 * (1 - st->event_peak)) {
      st->event_peak = out.score;
    } else if (opt_.dedupe) {
      s.repeat = true;
      out.score = std::nextafter(opt_.threshold, 0.0);
    }
    st->in_event = true;
    st->normal_run = 0;
  } else if (++st->normal_run >= std::max<std::size_t>(opt_.event_gap, 1)) {
    st->in_event = false;
  }
  if (again) {
    *st = std::move(*before);
  } else {
    st->scored_any = true;
    st->last_start = w.start;
    st->last_end = w.end;
    if (keep) {
      st->results.push_back({w.start, w.end, hash, s});
      while (st->results.size() > opt_.state_windows) st->results.pop_front();
    }
  }
  return s;
}

void Scorer::post_process(State& st, const Window& w, Scored& s) {
  Score& out = s.score;
  if (opt_.likelihood > 0) {
    if (!st.likelihood) st.likelihood.emplace(opt_.likelihood, opt_.likelihood_history, opt_.likelihood_min);
    const double l = st.likelihood->push(out.score);
    if (l < 0) {
      out.score = 0;
      out.status = "warming";
    } else {
      out.score = l;
    }
  }
  if (opt_.novelty >= 0) {
    if (!st.range) st.range.emplace(opt_.novelty, opt_.novelty_after);
    const double* mx = w.feature("max");
    const double* mn = w.feature("min");
    const double* last = w.feature("last");
    if (!last) last = w.feature("mean");
    const double hi = mx ? *mx : last ? *last : std::nan("");
    const double lo = mn ? *mn : last ? *last : std::nan("");
    s.novel = st.range->push(lo, hi);
    if (s.novel != 0) {
      out.score = 1.0;
      // First in the explanation: the value beyond the seen range, the edge it passed
      // as the baseline, and z = how far beyond, in units of the seen range.
      const double edge = s.novel > 0 ? st.range->previous_high() : st.range->previous_low();
      const double width = st.range->previous_high() - st.range->previous_low();
      const double v = s.novel > 0 ? hi : lo;
      Explanation e{mx || mn ? (s.novel > 0 ? "max" : "min") : (w.feature("last") ? "last" : "mean"),
                    v, edge, width > 0 ? (v - edge) / width : (v > edge ? 1.0 : -1.0)};
      std::erase_if(out.explanation, [&](const Explanation& x) { return x.feature == e.feature; });
      out.explanation.insert(out.explanation.begin(), e);
      if (out.explanation.size() > std::max<std::size_t>(opt_.explain, 1))
        out.explanation.resize(std::max<std::size_t>(opt_.explain, 1));
    }
  }
  out.anomaly = out.score >= opt_.threshold;
  if (!out.anomaly) {
    out.label = "normal";
  } else if (s.novel != 0 && (st.candidate_label.empty() || st.candidate_label == "stuck" ||
                              st.candidate_label == "missingness")) {
    out.label = s.novel > 0 ? "spike" : "drop";
  } else {
    out.label = st.candidate_label.empty() ? (s.novel < 0 ? "drop" : "spike") : st.candidate_label;
  }
  st.candidate_label.clear();
}

namespace {

constexpr std::string_view kStateFormat = "ep-score-state";

std::string hex_u64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}
constexpr int kStateVersion = 1;

void write_row(JsonWriter& w, const std::vector<double>& row) {
  w.start_array();
  for (double v : row) w.num(v);  // NaN (absent) is written as null
  w.end_array();
}

Result<std::vector<double>> read_row(const rapidjson::Value& v, const std::string& what) {
  if (!v.IsArray()) return Status::data(what + ": expected an array");
  std::vector<double> row;
  row.reserve(v.Size());
  for (const auto& x : v.GetArray()) {
    if (x.IsNumber()) row.push_back(x.GetDouble());
    else if (x.IsNull()) row.push_back(std::nan(""));
    else return Status::data(what + ": expected numbers or null");
  }
  return row;
}

Result<std::deque<std::vector<double>>> read_rows(const rapidjson::Value& o, const char* key,
                                                  const std::string& path) {
  std::deque<std::vector<double>> rows;
  auto it = o.FindMember(key);
  if (it == o.MemberEnd()) return rows;
  if (!it->value.IsArray()) return Status::data(json_path(path, key) + ": expected an array");
  std::size_t i = 0;
  for (const auto& r : it->value.GetArray()) {
    auto row = read_row(r, json_path(path, key) + "[" + std::to_string(i++) + "]");
    if (!row) return row.status();
    rows.push_back(std::move(*row));
  }
  return rows;
}

}  // namespace

bool Scorer::has_state(const SeriesKey& k) const {
  auto it = states_.find(k);
  return it != states_.end() && it->second->from_state;
}

Status Scorer::save_state(const std::string& path) const {
  JsonWriter w;
  w.start_object();
  w.kv("format", kStateFormat);
  w.kv("version", kStateVersion);
  w.key("series");
  w.start_array();
  for (const auto& [key, st] : states_) {
    w.start_object();
    w.kv("tenant", key.tenant);
    w.kv("device", key.device);
    w.kv("metric", key.metric);
    if (!st->model_id.empty()) {
      w.kv("model", st->model_id);
      w.key("offset");
      write_row(w, st->offset);
      w.key("recent");
      w.start_array();
      for (const auto& r : st->recent) write_row(w, r);
      w.end_array();
      w.kv("anomalous_run", static_cast<std::int64_t>(st->anomalous_run));
    }
    if (!st->fb_names.empty()) {
      w.key("fallback_features");
      w.start_array();
      for (const auto& n : st->fb_names) w.str(n);
      w.end_array();
      w.key("fallback_rows");
      w.start_array();
      for (const auto& r : st->fb_rows) write_row(w, r);
      w.end_array();
    }
    w.kv("in_event", st->in_event);
    w.kv("event_peak", st->event_peak);
    w.kv("normal_run", static_cast<std::int64_t>(st->normal_run));
    w.kv("rest_left", static_cast<std::int64_t>(st->rest_left));
    if (st->scored_any) {
      w.kv("last_start", static_cast<std::int64_t>(st->last_start));
      w.kv("last_end", static_cast<std::int64_t>(st->last_end));
    }
    if (!st->results.empty()) {
      w.key("results");
      w.start_array();
      for (const auto& r : st->results) {
        w.start_object();
        w.kv("start", static_cast<std::int64_t>(r.start));
        w.kv("end", static_cast<std::int64_t>(r.end));
        w.kv("features", hex_u64(r.features));
        w.kv("novel", r.scored.novel);
        w.key("record");
        w.raw(to_record(r.scored));
        w.end_object();
      }
      w.end_array();
    }
    if (st->likelihood) {
      w.key("likelihood");
      st->likelihood->save(w);
    }
    if (st->range) {
      w.key("range");
      st->range->save(w);
    }
    w.end_object();
  }
  w.end_array();
  w.end_object();
  std::string text = w.take();
  text += '\n';
  return fs::write_file_atomic(path, text).with_context("--state " + path);
}

Status Scorer::load_state(const std::string& path) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0 && errno == ENOENT) return Status::ok();  // first run
  auto text = fs::read_file(path);
  if (!text) return text.status().with_context("--state");
  auto fail = [&](const Status& why) {
    states_.clear();
    std::string aside = path + ".corrupt";
    Status st = Status::data("--state " + path + ": " + why.message() +
                             "; starting from a fresh state");
    if (std::rename(path.c_str(), aside.c_str()) == 0)
      st = Status::data(st.message() + " (the file was moved to " + aside + ")");
    return st;
  };
  rapidjson::Document doc;
  // parse_json reads every number back as the double that was written.
  if (Status st = parse_json(*text, doc); !st) return fail(st);
  if (!doc.IsObject()) return fail(Status::data("expected a JSON object"));
  auto fmt = get_string(doc, "format");
  if (!fmt || *fmt != kStateFormat) return fail(Status::data("format: expected \"ep-score-state\""));
  auto ver = get_number(doc, "version");
  if (!ver || *ver != kStateVersion)
    return fail(Status::data("version: expected " + std::to_string(kStateVersion)));
  auto series = doc.FindMember("series");
  if (series == doc.MemberEnd() || !series->value.IsArray())
    return fail(Status::data("series: expected an array"));
  std::size_t i = 0;
  for (const auto& o : series->value.GetArray()) {
    const std::string at = "series[" + std::to_string(i++) + "]";
    if (!o.IsObject()) return fail(Status::data(at + ": expected an object"));
    auto tenant = get_string(o, "tenant", at);
    auto device = get_string(o, "device", at);
    auto metric = get_string(o, "metric", at);
    if (!tenant) return fail(tenant.status());
    if (!device) return fail(device.status());
    if (!metric) return fail(metric.status());
    auto st = std::make_unique<State>();
    st->from_state = true;
    if (auto m = opt_string(o, "model")) {
      st->model_id = std::string(*m);
      auto off = o.FindMember("offset");
      if (off == o.MemberEnd()) return fail(Status::data(json_path(at, "offset") + ": missing"));
      auto row = read_row(off->value, json_path(at, "offset"));
      if (!row) return fail(row.status());
      st->offset = std::move(*row);
      auto recent = read_rows(o, "recent", at);
      if (!recent) return fail(recent.status());
      st->recent = std::move(*recent);
      for (const auto& r : st->recent)
        if (r.size() != st->offset.size())
          return fail(Status::data(json_path(at, "recent") + ": rows differ from offset in length"));
      auto run = get_count(o, "anomalous_run", at);
      if (!run) return fail(run.status());
      st->anomalous_run = *run;
    }
    if (auto names = o.FindMember("fallback_features"); names != o.MemberEnd()) {
      if (!names->value.IsArray())
        return fail(Status::data(json_path(at, "fallback_features") + ": expected an array"));
      for (const auto& n : names->value.GetArray()) {
        if (!n.IsString())
          return fail(Status::data(json_path(at, "fallback_features") + ": expected strings"));
        st->fb_names.emplace_back(n.GetString(), n.GetStringLength());
      }
      auto rows = read_rows(o, "fallback_rows", at);
      if (!rows) return fail(rows.status());
      st->fb_rows = std::move(*rows);
      for (const auto& r : st->fb_rows)
        if (r.size() > st->fb_names.size())
          return fail(Status::data(json_path(at, "fallback_rows") + ": a row longer than fallback_features"));
    }
    auto in_event = o.FindMember("in_event");
    if (in_event == o.MemberEnd() || !in_event->value.IsBool())
      return fail(Status::data(json_path(at, "in_event") + ": expected true or false"));
    st->in_event = in_event->value.GetBool();
    auto peak = get_number(o, "event_peak", at);
    auto normal = get_count(o, "normal_run", at);
    auto rest = get_count(o, "rest_left", at);
    if (!peak) return fail(peak.status());
    if (!normal) return fail(normal.status());
    if (!rest) return fail(rest.status());
    st->event_peak = *peak;
    st->normal_run = *normal;
    st->rest_left = *rest;
    auto ls = o.FindMember("last_start");
    auto le = o.FindMember("last_end");
    if (ls != o.MemberEnd() || le != o.MemberEnd()) {
      if (ls == o.MemberEnd() || le == o.MemberEnd() || !ls->value.IsInt64() || !le->value.IsInt64())
        return fail(Status::data(json_path(at, "last_end") + ": expected last_start and last_end in ns"));
      st->scored_any = true;
      st->last_start = ls->value.GetInt64();
      st->last_end = le->value.GetInt64();
    }
    if (auto rs = o.FindMember("results"); rs != o.MemberEnd()) {
      if (!rs->value.IsArray()) return fail(Status::data(json_path(at, "results") + ": expected an array"));
      std::size_t k = 0;
      for (const auto& r : rs->value.GetArray()) {
        const std::string rat = json_path(at, "results") + "[" + std::to_string(k++) + "]";
        if (!r.IsObject()) return fail(Status::data(rat + ": expected an object"));
        auto start = r.FindMember("start");
        auto end = r.FindMember("end");
        auto hash = opt_string(r, "features");
        auto rec = r.FindMember("record");
        if (start == r.MemberEnd() || end == r.MemberEnd() || !start->value.IsInt64() ||
            !end->value.IsInt64() || !hash || hash->size() != 16 || rec == r.MemberEnd() ||
            !rec->value.IsObject())
          return fail(Status::data(rat + ": expected start, end (ns), features (16 hex digits) and record"));
        State::Result res;
        res.start = start->value.GetInt64();
        res.end = end->value.GetInt64();
        try {
          res.features = std::stoull(std::string(*hash), nullptr, 16);
        } catch (const std::exception&) {
          return fail(Status::data(rat + ".features: not hexadecimal"));
        }
        if (Status p = parse_record(rec->value, res.scored.score); !p)
          return fail(Status::data(rat + ".record: " + p.message()));
        res.scored.score.start = res.start;  // records carry ms; the key is exact
        res.scored.score.end = res.end;
        auto flag = [&](const char* name) {
          auto f = rec->value.FindMember(name);
          return f != rec->value.MemberEnd() && f->value.IsBool() && f->value.GetBool();
        };
        res.scored.onset = flag("onset");
        res.scored.repeat = flag("repeat");
        if (auto nv = r.FindMember("novel"); nv != r.MemberEnd() && nv->value.IsInt())
          res.scored.novel = nv->value.GetInt();
        st->results.push_back(std::move(res));
      }
    }
    if (auto lk = o.FindMember("likelihood"); lk != o.MemberEnd() && opt_.likelihood > 0) {
      st->likelihood.emplace(opt_.likelihood, opt_.likelihood_history, opt_.likelihood_min);
      if (Status l = st->likelihood->load(lk->value); !l) {
        // Another --likelihood window than the one the state was kept with: start the
        // likelihood afresh rather than mix the two.
        log::warn("--state " + path + ": " + json_path(at, "likelihood") + ": " + l.message() +
                  "; the likelihood of " + std::string(*tenant) + "/" + std::string(*device) +
                  "/" + std::string(*metric) + " starts afresh");
        st->likelihood.reset();
      }
    }
    if (auto rg = o.FindMember("range"); rg != o.MemberEnd() && opt_.novelty >= 0) {
      st->range.emplace(opt_.novelty, opt_.novelty_after);
      if (Status r = st->range->load(rg->value); !r)
        return fail(Status::data(json_path(at, "range") + ": " + r.message()));
    }
    states_[SeriesKey{std::string(*tenant), std::string(*device), std::string(*metric)}] =
        std::move(st);
  }
  log::info("state from " + path + ": " + std::to_string(states_.size()) + " series");
  return Status::ok();
}

std::string to_record(const Scored& s) {
  std::string rec = to_ndjson(s.score);
  if (s.onset && !rec.empty() && rec.back() == '}') rec.insert(rec.size() - 1, ",\"onset\":true");
  if (s.repeat && !rec.empty() && rec.back() == '}') rec.insert(rec.size() - 1, ",\"repeat\":true");
  return rec;
}

bool score_window(Scorer& scorer, const Window& w, RecordWriter& out, ScoreSink* sink,
                  Summary& summary, Status& sink_status) {
  Status model_error;
  Scored s = scorer.score(w, model_error);
  if (!model_error.is_ok()) {
    ++summary.model_errors;
    log::emit(log::Level::kError, SeriesKey{w.tenant, w.device, w.metric}.to_string(),
              model_error.message() + " (scored by the fallback)", -1, model_error.code());
  }
  ++summary.windows;
  if (s.score.anomaly) ++summary.anomalies;
  if (s.score.model == "fallback") ++summary.fallback;
  if (!out.write(to_record(s))) return false;  // broken pipe: stop quietly
  if (sink) {
    sink_status = sink->on_score(s);
    if (!sink_status.is_ok()) return false;
  }
  return true;
}

Status run(const Options& opt, const model::Source* store, LineReader& in, RecordWriter& out,
           bool strict, bool progress, Summary& summary, ScoreSink* sink) {
  Scorer scorer(opt, store);
  Status state_status;
  if (!opt.state.empty()) {
    state_status = scorer.load_state(opt.state);
    if (!state_status.is_ok() && state_status.code() != Code::kData) return state_status;
    if (!state_status.is_ok()) log::error(state_status);
  }
  bool warned_cache = false;
  Progress prog(progress, "windows scored");
  Line line;
  rapidjson::Document doc;
  Window w;
  Status sink_status;
  auto reject = [&](const Line& l, std::string_view reason) {
    ++summary.rejected;
    log::reject(l.stream, l.number, reason);
  };
  while (in.next(line)) {
    if (opt.reload && opt.reload()) {
      scorer.reload_models();
      ++summary.reloads;
      log::info("models reloaded (SIGHUP): each series takes its latest model from its next window");
    }
    ++summary.lines;
    if (line.too_long) {
      reject(line, "line longer than the maximum line length");
    } else if (line.text.empty()) {
      continue;
    } else if (Status s = parse_json(line.text, doc); !s) {
      reject(line, s.message());
    } else if (kind_of(doc) != Kind::kWindow) {
      reject(line, "kind: expected \"window\"");
    } else if (Status p = parse_record(doc, w); !p) {
      reject(line, p.message());
    } else {
      if (!score_window(scorer, w, out, sink, summary, sink_status)) break;
      if (!warned_cache && scorer.model_loads() > 1000 &&
          static_cast<std::size_t>(scorer.model_loads()) > 2 * scorer.series()) {
        warned_cache = true;
        log::warn("models are being reloaded (" + std::to_string(scorer.model_loads()) +
                  " loads for " + std::to_string(scorer.series()) +
                  " series): raise --model-cache above the number of series in the input");
      }
    }
    if (summary.rejected > 0 && strict) break;
    if ((summary.lines & 4095) == 0) prog.update(static_cast<std::uint64_t>(summary.lines), 0);
    if (opt.stop && opt.stop->load(std::memory_order_relaxed)) {
      summary.interrupted = true;
      break;
    }
  }
  prog.finish();
  if (!sink_status.is_ok()) return sink_status;
  if (!opt.state.empty()) EP_RETURN_IF_ERROR(scorer.save_state(opt.state));
  if (!in.status().is_ok()) return in.status();
  if (summary.rejected > 0 && strict)
    return Status::data("stopped at the first rejected record (--strict)");
  if (summary.rejected > 0 || summary.model_errors > 0)
    return Status::data(std::to_string(summary.rejected) + " input records rejected, " +
                        std::to_string(summary.model_errors) + " unreadable models");
  return state_status;
}

}  // namespace ep::score
