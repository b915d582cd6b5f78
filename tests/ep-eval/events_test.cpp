// Event-level evaluation against hand-computed cases.
#include "events.h"

#include <gtest/gtest.h>

#include <cmath>

#include "report.h"

using namespace ep;
using namespace ep::eval;

namespace {

constexpr TimeNs kMin = 60 * kNsPerSec;
constexpr TimeNs kT0 = 1'767'607'200 * kNsPerSec;  // 2026-01-05T10:00:00Z

Truth truth(TimeNs start, TimeNs end, std::string type, std::string device = "d1") {
  return Truth{"demo", std::move(device), "temp", start, end, std::move(type)};
}

Score score(TimeNs start, TimeNs end, bool anomaly, std::string label = "spike",
            double s = 0.9, std::string device = "d1") {
  Score r;
  r.tenant = "demo";
  r.device = std::move(device);
  r.metric = "temp";
  r.start = start;
  r.end = end;
  r.score = s;
  r.anomaly = anomaly;
  r.label = anomaly ? std::move(label) : "normal";
  return r;
}

// Tumbling 5-minute windows from kT0 to kT0 + minutes, flagged where `flag` says.
void tumbling(EventEvaluator& ev, int minutes, const std::vector<int>& flagged_starts,
              std::string label = "spike") {
  for (int m = 0; m < minutes; m += 5) {
    bool f = std::find(flagged_starts.begin(), flagged_starts.end(), m) != flagged_starts.end();
    ev.add_score(score(kT0 + m * kMin, kT0 + (m + 5) * kMin, f, label, f ? 0.9 : 0.1));
  }
}

const LabelStats* find(const EventReport& r, const std::string& label) {
  for (const auto& s : r.labels)
    if (s.label == label) return &s;
  return nullptr;
}

}  // namespace

TEST(EventEval, CaughtAnomalyWithDelayFromTruthStartToWindowEnd) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0 + 10 * kMin, kT0 + 20 * kMin, "spike"));
  tumbling(ev, 60, {15});  // flagged [10:15, 10:20)
  auto r = ev.finish();
  EXPECT_EQ(r.overall.truths, 1);
  EXPECT_EQ(r.overall.caught, 1);
  EXPECT_DOUBLE_EQ(r.overall.recall, 1.0);
  EXPECT_EQ(r.overall.events, 1);
  EXPECT_DOUBLE_EQ(r.overall.precision, 1.0);
  EXPECT_DOUBLE_EQ(r.overall.f1, 1.0);
  EXPECT_DOUBLE_EQ(r.overall.delay_mean_s, 600.0);  // 10:20 - 10:10
  EXPECT_DOUBLE_EQ(r.overall.label_accuracy, 1.0);
  EXPECT_EQ(r.series, 1);
  EXPECT_NEAR(r.series_days, 1.0 / 24.0, 1e-12);
}

TEST(EventEval, AdjacentFlaggedWindowsAreOneDetectionEvent) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0 + 10 * kMin, kT0 + 30 * kMin, "drift"));
  tumbling(ev, 60, {10, 15, 20, 25}, "drift");  // four touching windows
  auto r = ev.finish();
  EXPECT_EQ(r.flagged_windows, 4);
  EXPECT_EQ(r.overall.events, 1);
  EXPECT_EQ(r.overall.false_events, 0);
  EXPECT_DOUBLE_EQ(r.overall.delay_mean_s, 300.0);  // first window ends at 10:15
}

TEST(EventEval, FalseAlarmsArePerSeriesDay) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0 + 10 * kMin, kT0 + 15 * kMin, "spike"));
  // 24 hours of 5-minute windows; one hit and two separate false alarms.
  for (int m = 0; m < 24 * 60; m += 5) {
    bool f = m == 10 || m == 300 || m == 310;
    ev.add_score(score(kT0 + m * kMin, kT0 + (m + 5) * kMin, f));
  }
  auto r = ev.finish();
  EXPECT_EQ(r.overall.events, 3);
  EXPECT_EQ(r.overall.false_events, 2);
  EXPECT_NEAR(r.overall.precision, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(r.overall.f1, 2 * (1.0 / 3.0) / (1.0 / 3.0 + 1.0), 1e-12);
  EXPECT_NEAR(r.series_days, 1.0, 1e-12);
  EXPECT_NEAR(r.overall.false_per_series_day, 2.0, 1e-12);
}

TEST(EventEval, WindowEndingAtTruthStartDoesNotOverlap) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0 + 10 * kMin, kT0 + 20 * kMin, "spike"));
  tumbling(ev, 30, {5});  // [10:05, 10:10) ends exactly when the truth starts
  auto r = ev.finish();
  EXPECT_EQ(r.overall.caught, 0);
  EXPECT_EQ(r.overall.false_events, 1);
  EXPECT_DOUBLE_EQ(r.overall.recall, 0.0);
  EXPECT_TRUE(std::isnan(r.overall.delay_mean_s));
}

TEST(EventEval, InstantTruthInsideAWindowIsCaught) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0 + 12 * kMin, kT0 + 12 * kMin, "spike"));
  tumbling(ev, 30, {10});
  auto r = ev.finish();
  EXPECT_EQ(r.overall.caught, 1);
  EXPECT_DOUBLE_EQ(r.overall.delay_mean_s, 180.0);  // 10:15 - 10:12
}

TEST(EventEval, OtherSeriesDoNotCatchATruth) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0 + 10 * kMin, kT0 + 20 * kMin, "spike", "d1"));
  ev.add_score(score(kT0 + 10 * kMin, kT0 + 15 * kMin, true, "spike", 0.9, "d2"));
  auto r = ev.finish();
  EXPECT_EQ(r.overall.caught, 0);
  EXPECT_EQ(r.overall.false_events, 1);
}

TEST(EventEval, PerLabelRecallDelayAndLabelAccuracy) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0 + 10 * kMin, kT0 + 20 * kMin, "spike"));
  ev.add_truth(truth(kT0 + 40 * kMin, kT0 + 50 * kMin, "drop"));
  ev.add_truth(truth(kT0 + 70 * kMin, kT0 + 80 * kMin, "stuck"));
  ev.add_score(score(kT0 + 10 * kMin, kT0 + 15 * kMin, true, "spike"));
  ev.add_score(score(kT0 + 45 * kMin, kT0 + 50 * kMin, true, "spike"));  // wrong label
  ev.add_score(score(kT0 + 90 * kMin, kT0 + 95 * kMin, false));
  auto r = ev.finish();
  EXPECT_EQ(r.overall.truths, 3);
  EXPECT_EQ(r.overall.caught, 2);
  EXPECT_NEAR(r.overall.recall, 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.overall.label_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(r.overall.delay_mean_s, 450.0);    // (300 + 600) / 2
  EXPECT_DOUBLE_EQ(r.overall.delay_median_s, 450.0);  // even count: mean of the middle two
  const LabelStats* spike = find(r, "spike");
  const LabelStats* drop = find(r, "drop");
  const LabelStats* stuck = find(r, "stuck");
  ASSERT_TRUE(spike && drop && stuck);
  EXPECT_EQ(spike->events, 2);  // both events carry "spike"
  EXPECT_DOUBLE_EQ(spike->precision, 1.0);
  EXPECT_DOUBLE_EQ(spike->label_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(drop->recall, 1.0);
  EXPECT_DOUBLE_EQ(drop->label_accuracy, 0.0);
  EXPECT_TRUE(std::isnan(drop->precision));  // no event is labelled drop
  EXPECT_DOUBLE_EQ(stuck->recall, 0.0);
  EXPECT_DOUBLE_EQ(stuck->f1, 0.0);
}

TEST(EventEval, ThresholdReplacesTheAnomalyFlag) {
  EventEvaluator ev(EventOptions{0.5, 0});
  ev.add_truth(truth(kT0 + 10 * kMin, kT0 + 20 * kMin, "spike"));
  ev.add_score(score(kT0 + 10 * kMin, kT0 + 15 * kMin, false, "normal", 0.6));
  ev.add_score(score(kT0 + 30 * kMin, kT0 + 35 * kMin, true, "spike", 0.4));
  auto r = ev.finish();
  EXPECT_EQ(r.overall.caught, 1);
  EXPECT_EQ(r.overall.events, 1);
  EXPECT_EQ(r.overall.false_events, 0);
}

TEST(EventEval, MergeGapJoinsNearbyWindows) {
  EventEvaluator strict;
  EventEvaluator loose(EventOptions{std::nullopt, 10 * kMin});
  for (EventEvaluator* ev : {&strict, &loose}) {
    ev->add_score(score(kT0, kT0 + 5 * kMin, true));
    ev->add_score(score(kT0 + 10 * kMin, kT0 + 15 * kMin, true));
  }
  EXPECT_EQ(strict.finish().overall.events, 2);
  EXPECT_EQ(loose.finish().overall.events, 1);
}

TEST(EventEval, SlidingWindowsOverlapIntoOneEvent) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0 + 10 * kMin, kT0 + 11 * kMin, "spike"));
  for (int m = 0; m < 30; ++m)  // 8-minute windows every minute
    ev.add_score(score(kT0 + m * kMin, kT0 + (m + 8) * kMin, m >= 3 && m <= 10));
  auto r = ev.finish();
  EXPECT_EQ(r.overall.events, 1);
  EXPECT_EQ(r.overall.caught, 1);
  EXPECT_DOUBLE_EQ(r.overall.delay_mean_s, 60.0);  // window [10:03, 10:11) ends first
}

TEST(EventEval, EmptyInputIsUndefinedNotZero) {
  EventEvaluator ev;
  auto r = ev.finish();
  EXPECT_EQ(r.overall.truths, 0);
  EXPECT_TRUE(std::isnan(r.overall.precision));
  EXPECT_TRUE(std::isnan(r.overall.recall));
  EXPECT_TRUE(std::isnan(r.overall.f1));
  EXPECT_TRUE(std::isnan(r.overall.false_per_series_day));
  std::string json = render_events_json(r);
  EXPECT_NE(json.find("\"precision\":null"), std::string::npos) << json;
  std::string text = render_events_text(r);
  EXPECT_NE(text.find("overall"), std::string::npos);
}

TEST(EventEval, TruthsWithoutAnyScoresAreMissed) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0, kT0 + kMin, "spike"));
  auto r = ev.finish();
  EXPECT_EQ(r.series, 0);
  EXPECT_DOUBLE_EQ(r.overall.recall, 0.0);
  EXPECT_DOUBLE_EQ(r.overall.f1, 0.0);
}

TEST(EventEval, LongWindowStartingWellBeforeTheTruthStillCatchesIt) {
  EventEvaluator ev;
  ev.add_truth(truth(kT0 + 50 * kMin, kT0 + 51 * kMin, "drift"));
  ev.add_score(score(kT0, kT0 + 100 * kMin, true, "drift"));                 // long, early
  ev.add_score(score(kT0 + 40 * kMin, kT0 + 45 * kMin, true, "spike"));      // short, before
  ev.add_score(score(kT0 + 200 * kMin, kT0 + 205 * kMin, true, "spike"));    // far after
  auto r = ev.finish();
  EXPECT_EQ(r.overall.caught, 1);
  EXPECT_DOUBLE_EQ(r.overall.delay_mean_s, 50 * 60.0);  // 100 min end - 50 min start
  EXPECT_DOUBLE_EQ(r.overall.label_accuracy, 1.0);
  EXPECT_EQ(r.overall.events, 2);  // the short window merges into the long one
}
