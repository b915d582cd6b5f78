#include "events.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace ep::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kNsPerDay = 86400.0 * 1e9;

TimeNs effective_end(TimeNs start, TimeNs end) { return end > start ? end : start + 1; }

bool overlaps(TimeNs a0, TimeNs a1, TimeNs b0, TimeNs b1) {
  return a0 < effective_end(b0, b1) && b0 < effective_end(a0, a1);
}

double median(std::vector<double> v) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

}  // namespace

EventEvaluator::Series& EventEvaluator::at(const SeriesKey& k) {
  auto [it, inserted] = series_.try_emplace(k);
  if (inserted) order_.push_back(k);
  return it->second;
}

void EventEvaluator::add_truth(const Truth& t) {
  at(SeriesKey{t.tenant, t.device, t.metric}).truths.push_back(t);
}

void EventEvaluator::add_score(const Score& s) {
  Series& ser = at(SeriesKey{s.tenant, s.device, s.metric});
  ++score_records_;
  if (!ser.scored) {
    ser.scored = true;
    ser.first = s.start;
    ser.last = s.end;
  } else {
    ser.first = std::min(ser.first, s.start);
    ser.last = std::max(ser.last, s.end);
  }
  bool flagged = opts_.threshold ? s.score >= *opts_.threshold : s.anomaly;
  if (!flagged) return;
  ++flagged_;
  ser.flags.push_back(Flag{s.start, s.end, s.score, s.label});
}

void finalize(LabelStats& s, double series_days) {
  s.recall = s.truths > 0 ? static_cast<double>(s.caught) / s.truths : kNaN;
  s.precision = s.events > 0 ? static_cast<double>(s.true_events) / s.events : kNaN;
  if (s.truths == 0 && s.events == 0) {
    s.f1 = kNaN;
  } else {
    double p = std::isnan(s.precision) ? 0 : s.precision;
    double r = std::isnan(s.recall) ? 0 : s.recall;
    s.f1 = p + r > 0 ? 2 * p * r / (p + r) : 0;
  }
  if (s.delays_s.empty()) {
    s.delay_mean_s = s.delay_median_s = kNaN;
  } else {
    double sum = 0;
    for (double d : s.delays_s) sum += d;
    s.delay_mean_s = sum / static_cast<double>(s.delays_s.size());
    s.delay_median_s = median(s.delays_s);
  }
  s.false_per_series_day = series_days > 0 ? s.false_events / series_days : kNaN;
  s.label_accuracy = s.caught > 0 ? static_cast<double>(s.label_correct) / s.caught : kNaN;
}

EventReport EventEvaluator::finish() const {
  EventReport rep;
  rep.score_records = score_records_;
  rep.flagged_windows = flagged_;
  std::map<std::string, LabelStats> by_label;
  auto label = [&](const std::string& name) -> LabelStats& {
    LabelStats& s = by_label[name];
    s.label = name;
    return s;
  };

  for (const SeriesKey& key : order_) {
    const Series& ser = series_.at(key);
    if (ser.scored) {
      ++rep.series;
      rep.series_days += static_cast<double>(ser.last - ser.first) / kNsPerDay;
    }
    std::vector<Flag> flags = ser.flags;
    std::sort(flags.begin(), flags.end(), [](const Flag& a, const Flag& b) {
      return a.start != b.start ? a.start < b.start : a.end < b.end;
    });

    // Detection events: maximal runs of flagged windows that overlap or touch.
    struct Event {
      TimeNs start, end;
      double best;
      std::string label;
    };
    std::vector<Event> events;
    for (const Flag& f : flags) {
      if (!events.empty() && f.start <= events.back().end + opts_.merge_gap) {
        Event& e = events.back();
        e.end = std::max(e.end, f.end);
        if (f.score > e.best) {
          e.best = f.score;
          e.label = f.label;
        }
      } else {
        events.push_back(Event{f.start, f.end, f.score, f.label});
      }
    }
    for (const Event& e : events) {
      bool hit = std::any_of(ser.truths.begin(), ser.truths.end(), [&](const Truth& t) {
        return overlaps(e.start, e.end, t.start, t.end);
      });
      for (LabelStats* s : {&rep.overall, &label(e.label)}) {
        ++s->events;
        ++(hit ? s->true_events : s->false_events);
      }
    }
    // Flags that can overlap a truth start within (truth start - longest flag, truth end):
    // two binary searches instead of a scan of every flag per truth.
    TimeNs longest = 0;
    for (const Flag& f : flags) longest = std::max(longest, effective_end(f.start, f.end) - f.start);
    auto by_start = [](const Flag& f, TimeNs t) { return f.start < t; };
    for (const Truth& t : ser.truths) {
      const Flag* first = nullptr;
      auto lo = std::lower_bound(flags.begin(), flags.end(), t.start - longest, by_start);
      auto hi = std::lower_bound(lo, flags.end(), effective_end(t.start, t.end), by_start);
      for (auto it = lo; it != hi; ++it) {
        const Flag& f = *it;
        if (overlaps(f.start, f.end, t.start, t.end) &&
            (!first || f.end < first->end || (f.end == first->end && f.start < first->start)))
          first = &f;
      }
      for (LabelStats* s : {&rep.overall, &label(t.type)}) {
        ++s->truths;
        if (!first) continue;
        ++s->caught;
        s->delays_s.push_back(static_cast<double>(first->end - t.start) / 1e9);
        if (first->label == t.type) ++s->label_correct;
      }
    }
  }
  finalize(rep.overall, rep.series_days);
  for (auto& [name, s] : by_label) {
    finalize(s, rep.series_days);
    rep.labels.push_back(std::move(s));
  }
  return rep;
}

}  // namespace ep::eval
