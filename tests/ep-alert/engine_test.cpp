#include "engine.h"

#include <gtest/gtest.h>

#include "fixtures.h"

using namespace ep;
using namespace ep::alert;
using namespace ep::alert::testing;

namespace {

RuleSet rules(const std::string& rule_body, const std::string& extra = "") {
  auto r = parse_rules(std::string("[[webhooks]]\nname = \"ops\"\nurl = \"https://h.example/x\"\n"
                                   "secrets = [\"") + kSecret + "\"]\n[[rules]]\nname = \"r\"\n"
                                   "webhooks = [\"ops\"]\n" + rule_body + "\n" + extra,
                       "rules.toml");
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return std::move(r).value();
}

// Runs a pattern ('A' anomalous, '.' normal) and describes the events, one per window
// that caused one: "3:detected", "5:resolved", "7:detected(cooldown)".
std::vector<std::string> run(Engine& engine, const std::string& pattern, int offset = 0,
                             const std::string& device = "meter-001") {
  std::vector<std::string> out;
  std::vector<Event> events;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == ' ') continue;
    int w = offset + static_cast<int>(i);
    Score s = make_score(w, pattern[i] == 'A', -1, "", device);
    events.clear();
    engine.evaluate(s, events);
    for (const auto& e : events) {
      std::string d = std::to_string(w) + ":" +
                      (e.type == EventType::kDetected ? "detected" : "resolved");
      if (!e.suppressed.empty()) d += "(" + e.suppressed.substr(0, e.suppressed.find(':')) + ")";
      out.push_back(d);
    }
  }
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST(Engine, FiresAfterNConsecutiveAnomalousWindows) {
  RuleSet rs = rules("consecutive = 3");
  State st;
  Engine e(rs, st);
  // Two anomalous windows, a normal one (count resets), then three in a row.
  EXPECT_EQ(run(e, "AA.AAAAA"), V({"5:detected"}));
}

TEST(Engine, ResolveOnlyWhenAskedAndNotified) {
  RuleSet with = rules("resolve = true");
  State st;
  Engine e(with, st);
  EXPECT_EQ(run(e, "AA..A."), V({"0:detected", "2:resolved", "4:detected", "5:resolved"}));
  RuleSet without = rules("");
  State st2;
  Engine e2(without, st2);
  EXPECT_EQ(run(e2, "AA..A."), V({"0:detected", "4:detected"}));
}

TEST(Engine, CooldownSuppressesRefiringAndItsResolve) {
  RuleSet rs = rules("resolve = true\ncooldown = \"20m\"");  // 4 windows of 5 minutes
  State st;
  Engine e(rs, st);
  // Fires at 0 (notified), re-fires at 2 (10 min later: cooldown), at 5 (25 min: notified).
  EXPECT_EQ(run(e, "A.A.." "A."),
            V({"0:detected", "1:resolved", "2:detected(cooldown)", "5:detected", "6:resolved"}));
}

TEST(Engine, SilenceSuppressesButRecords) {
  RuleSet rs = rules("resolve = true",
                     "[[silences]]\nname = \"maint\"\ntenant = \"acme\"\ndevice = \"meter-001\"\n"
                     "end = \"2026-01-05T10:15:00Z\"\n");
  State st;
  Engine e(rs, st);
  // Windows 0..2 end at or before 10:15 -> window 0 detection is silenced (not notified,
  // so no resolve); window 4 fires after the silence ended.
  EXPECT_EQ(run(e, "A..." "A."), V({"0:detected(silenced)", "4:detected", "5:resolved"}));
  // Another device is not silenced.
  State st2;
  Engine e2(rs, st2);
  EXPECT_EQ(run(e2, "A.", 0, "meter-002"), V({"0:detected", "1:resolved"}));
}

TEST(Engine, FlappingSeriesIsHeldFiringUntilQuiet) {
  // Third firing within an hour -> the next resolve is held until 30 minutes (6 windows)
  // of normal windows.
  RuleSet rs = rules("resolve = true\nflap_threshold = 3\nflap_window = \"30m\"");
  State st;
  Engine e(rs, st);
  // Held at 5; the anomalous windows 6 and 8 restart the quiet period; 9..15 are
  // normal, and end(15) - end(9) = 30 minutes -> resolved at 15.
  EXPECT_EQ(run(e, "A.A.A.A.A......." "A."),
            V({"0:detected", "1:resolved", "2:detected", "3:resolved", "4:detected",
               "5:resolved(flapping)", "15:resolved", "16:detected", "17:resolved"}));
}

TEST(Engine, ReplayedWindowsChangeNothing) {
  RuleSet rs = rules("resolve = true\nconsecutive = 2");
  State st;
  Engine e(rs, st);
  EXPECT_EQ(run(e, "AAA..AA"), V({"1:detected", "3:resolved", "6:detected"}));
  EXPECT_EQ(run(e, "AAA..AA"), V());  // same stream again
  EXPECT_EQ(e.stats().replayed, 7u);
  EXPECT_EQ(run(e, ".", 7), V({"7:resolved"}));  // the stream goes on
}

TEST(Engine, StateSurvivesSerialisation) {
  RuleSet rs = rules("resolve = true\nconsecutive = 2\nflap_threshold = 2\nflap_window = \"1h\"");
  State st;
  Engine e(rs, st);
  EXPECT_EQ(run(e, "AA.AA"), V({"1:detected", "2:resolved", "4:detected"}));
  std::string text = serialize_state(st, 0);
  std::string path = ::testing::TempDir() + "ep_alert_engine_state.json";
  ASSERT_TRUE(save_state(path, st, 0).is_ok());
  auto loaded = load_state(path);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  EXPECT_EQ(serialize_state(*loaded, 0), text);
  Engine e2(rs, *loaded);
  EXPECT_EQ(run(e2, "AA.AA"), V());  // replay after restart
  EXPECT_EQ(run(e2, ".", 5), V({"5:resolved(flapping)"}));
}

TEST(Engine, CorruptStateIsAnErrorNotAReset) {
  std::string path = ::testing::TempDir() + "ep_alert_corrupt_state.json";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("{\"version\":1,\"series\":[{\"rule\":\"r\"}],\"deliveries\":[]}", f);
  std::fclose(f);
  auto s = load_state(path);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().message(), path + ": series[0].tenant: string required");
  EXPECT_TRUE(load_state(path + ".missing").is_ok());
}

TEST(Engine, LabelsAndMinScoreSelectWindows) {
  RuleSet rs = rules("labels = [\"drop\"]\nmin_score = 0.8");
  State st;
  Engine e(rs, st);
  std::vector<Event> ev;
  e.evaluate(make_score(0, true, 0.95, "spike"), ev);
  e.evaluate(make_score(1, true, 0.7, "drop"), ev);
  EXPECT_TRUE(ev.empty());
  Score drop = make_score(2, true, 0.85, "drop");  // events point at their score
  e.evaluate(drop, ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].score->label, "drop");
}

TEST(Engine, AlertIdIsStablePerRuleSeriesAndWindowEnd) {
  std::string a = make_alert_id("r", "acme", "m1", "voltage", window_end(3));
  EXPECT_EQ(a, make_alert_id("r", "acme", "m1", "voltage", window_end(3)));
  EXPECT_NE(a, make_alert_id("r", "acme", "m1", "voltage", window_end(4)));
  EXPECT_NE(a, make_alert_id("r2", "acme", "m1", "voltage", window_end(3)));
  EXPECT_NE(a, make_alert_id("r", "acme", "m1", "current", window_end(3)));
  // Field boundaries matter: ("ab","c") differs from ("a","bc").
  EXPECT_NE(make_alert_id("r", "ab", "c", "m", 0), make_alert_id("r", "a", "bc", "m", 0));
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '8');  // UUID version 8
}
