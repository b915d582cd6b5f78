#include "nab.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ep::eval::nab {

const std::vector<Profile>& profiles() {
  static const std::vector<Profile> kProfiles = {
      {"standard", 1.0, 1.0, 0.11},
      {"reward_low_FP_rate", 1.0, 1.0, 0.22},
      {"reward_low_FN_rate", 1.0, 2.0, 0.11},
  };
  return kProfiles;
}

const Profile* find_profile(std::string_view name) {
  for (const auto& p : profiles())
    if (p.name == name) return &p;
  return nullptr;
}

std::size_t probation_rows(std::size_t rows, double percent) {
  double len = std::min(std::floor(percent * static_cast<double>(rows)), percent * 5000.0);
  // Rows with index i >= len are scored; len may be fractional in principle.
  return static_cast<std::size_t>(std::ceil(std::max(len, 0.0)));
}

double scaled_sigmoid(double y) {
  if (y > 3.0) return -1.0;
  // 2 * sigmoid(-5y) - 1 with sigmoid(x) = 1 / (1 + e^-x), in Python's operation order.
  return 2.0 * (1.0 / (1.0 + std::exp(5.0 * y))) - 1.0;
}

Result<std::vector<Span>> locate_windows(const File& f) {
  // NAB walks the rows in file order and enters a window at the first row whose
  // timestamp equals its start; the window ends at the first row equal to its end
  // (timestamps.index). Rows need not be sorted (some NAB files repeat an hour). Without
  // an exact match, the window starts at the first row at or after its start and ends at
  // the last row of the run that stays at or before its end.
  const std::size_t n = f.ts.size();
  std::vector<Span> spans;
  spans.reserve(f.windows.size());
  for (std::size_t k = 0; k < f.windows.size(); ++k) {
    auto [start, end] = f.windows[k];
    std::string where = f.name + ": window " + std::to_string(k + 1) + " [" +
                        format_rfc3339(start) + ", " + format_rfc3339(end) + "]";
    if (end < start) return Status::data(where + ": end before start");
    if (k > 0 && start <= f.windows[k - 1].second)
      return Status::data(where + ": windows must be sorted and must not overlap");
    std::size_t first = n, last = n;
    for (std::size_t i = 0; i < n && first == n; ++i)
      if (f.ts[i] == start) first = i;
    for (std::size_t i = 0; i < n && first == n; ++i)
      if (f.ts[i] >= start) first = i;
    if (first == n || f.ts[first] > end) return Status::data(where + ": covers no row of the file");
    for (std::size_t i = 0; i < n && last == n; ++i)
      if (f.ts[i] == end && i >= first) last = i;
    if (last == n) {
      last = first;
      while (last + 1 < n && f.ts[last + 1] <= end && f.ts[last + 1] >= start) ++last;
    }
    if (!spans.empty() && first <= spans.back().last)
      return Status::data(where + ": shares rows with the previous window");
    spans.push_back(Span{first, last});
  }
  return spans;
}

std::vector<Row> sweep_rows(const File& f, const std::vector<Span>& spans, const Profile& p,
                            int window_base) {
  const double max_tp = scaled_sigmoid(-1.0);
  const std::size_t n = f.ts.size();
  const std::size_t probation = probation_rows(n);
  std::vector<Row> out;
  out.reserve(n > probation ? n - probation : 0);

  std::size_t next = 0;  // next window to enter
  int cur = -1;          // window we are in
  double cur_width = 0;
  std::size_t cur_right = 0;
  bool have_prev = false;
  double prev_width = 0;
  std::size_t prev_right = 0;

  for (std::size_t i = 0; i < n; ++i) {
    if (next < spans.size() && i == spans[next].first) {
      cur = static_cast<int>(next++);
      cur_right = spans[cur].last;
      cur_width = static_cast<double>(cur_right - spans[cur].first + 1);
    }
    double weight;
    if (cur >= 0) {
      double pos = -static_cast<double>(cur_right - i + 1) / cur_width;
      weight = scaled_sigmoid(pos) * p.tp / max_tp;
    } else if (!have_prev) {
      weight = -1.0 * p.fp;
    } else {
      // NAB divides by (width - 1); a one-row window would divide by zero there. Its
      // limit, "infinitely far past the window", is the full false-positive cost.
      double denom = prev_width - 1.0;
      double y = denom > 0 ? static_cast<double>(i - prev_right) / denom
                           : std::numeric_limits<double>::infinity();
      weight = scaled_sigmoid(y) * p.fp;
    }
    if (i >= probation) out.push_back(Row{f.score[i], weight, cur >= 0 ? window_base + cur : -1});
    if (cur >= 0 && i == cur_right) {
      have_prev = true;
      prev_right = i;
      prev_width = cur_width;
      cur = -1;
    }
  }
  return out;
}

std::vector<ThresholdScore> scores_by_threshold(const std::vector<Row>& rows,
                                                const Profile& p) {
  std::vector<const Row*> sorted;
  sorted.reserve(rows.size());
  for (const auto& r : rows) sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Row* a, const Row* b) { return a->score > b->score; });

  // Score parts: "fp" first, then each window in order of first appearance (the order
  // Python's dict keeps, so sums add up in the same order).
  double fp_part = 0;
  std::vector<int> order;
  std::vector<double> part;  // by position in order
  std::vector<int> slot;     // window id -> position in order, -1 if absent
  Counts c;
  for (const Row* r : sorted) {
    if (r->window < 0) {
      ++c.tn;
      continue;
    }
    ++c.fn;
    if (static_cast<std::size_t>(r->window) >= slot.size()) slot.resize(r->window + 1, -1);
    if (slot[r->window] < 0) {
      slot[r->window] = static_cast<int>(order.size());
      order.push_back(r->window);
      part.push_back(-p.fn);
    }
  }
  auto total = [&] {
    double s = fp_part;
    for (double v : part) s += v;
    return s;
  };

  std::vector<bool> hit(order.size(), false);
  std::vector<ThresholdScore> out;
  double threshold = 1.1;
  for (const Row* r : sorted) {
    if (r->score != threshold) {
      out.push_back(ThresholdScore{threshold, total(), c});
      threshold = r->score;
    }
    if (r->window >= 0) {
      ++c.tp;
      --c.fn;
      double& v = part[slot[r->window]];
      if (!hit[slot[r->window]]) {
        hit[slot[r->window]] = true;
        ++c.windows_hit;
      }
      v = std::max(v, r->weight);
    } else {
      ++c.fp;
      --c.tn;
      fp_part += r->weight;
    }
  }
  out.push_back(ThresholdScore{threshold, total(), c});
  return out;
}

ThresholdScore score_at(const std::vector<ThresholdScore>& sweep, double threshold) {
  const ThresholdScore* prev = nullptr;
  for (const auto& row : sweep) {
    if (row.threshold == threshold) return row;
    if (row.threshold < threshold) return prev ? *prev : row;
    prev = &row;
  }
  return sweep.back();  // threshold below every score: everything is a detection
}

namespace {

struct Prepared {
  std::vector<std::vector<Row>> rows;  // per file
  int windows = 0;
};

Result<Prepared> prepare(const std::vector<File>& files, const Profile& p, bool null_detector) {
  Prepared out;
  for (const auto& f : files) {
    auto spans = locate_windows(f);
    if (!spans) return spans.status();
    auto rows = sweep_rows(f, *spans, p, out.windows);
    if (null_detector)
      for (auto& r : rows) r.score = 0.0;
    out.rows.push_back(std::move(rows));
    out.windows += static_cast<int>(spans->size());
  }
  return out;
}

double optimise(const Prepared& prep, const Profile& p) {
  std::vector<Row> all;
  for (const auto& rows : prep.rows) all.insert(all.end(), rows.begin(), rows.end());
  auto sweep = scores_by_threshold(all, p);
  // sorted(..., key=score, reverse=True)[0]: the first entry with the highest score.
  const ThresholdScore* best = &sweep.front();
  for (const auto& s : sweep)
    if (s.score > best->score) best = &s;
  return best->threshold;
}

void score_files(const std::vector<File>& files, const Prepared& prep, const Profile& p,
                 double threshold, ProfileResult& out) {
  out.threshold = threshold;
  out.score = 0;
  out.counts = {};
  out.files.clear();
  for (std::size_t k = 0; k < files.size(); ++k) {
    auto s = score_at(scores_by_threshold(prep.rows[k], p), threshold);
    FileResult fr{files[k].name, s.score, s.counts, static_cast<int>(files[k].windows.size())};
    out.score += s.score;
    out.counts.tp += s.counts.tp;
    out.counts.tn += s.counts.tn;
    out.counts.fp += s.counts.fp;
    out.counts.fn += s.counts.fn;
    out.counts.windows_hit += s.counts.windows_hit;
    out.files.push_back(std::move(fr));
  }
}

}  // namespace

Result<ProfileResult> score_corpus(const std::vector<File>& files, const Profile& p,
                                   std::optional<double> threshold) {
  auto prep = prepare(files, p, false);
  if (!prep) return prep.status();
  auto null_prep = prepare(files, p, true);
  if (!null_prep) return null_prep.status();

  ProfileResult out;
  out.profile = p;
  score_files(files, *prep, p, threshold ? *threshold : optimise(*prep, p), out);

  ProfileResult null_result;
  score_files(files, *null_prep, p, optimise(*null_prep, p), null_result);
  out.null_score = null_result.score;
  out.perfect_score = static_cast<double>(prep->windows) * p.tp;
  double span = out.perfect_score - out.null_score;
  out.normalized = span != 0 ? 100.0 * (out.score - out.null_score) / span
                             : std::numeric_limits<double>::quiet_NaN();
  return out;
}

}  // namespace ep::eval::nab
