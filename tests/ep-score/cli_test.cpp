// Process-level tests of the ep-score binary.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "ep/fsutil.h"
#include "cli_run.h"

namespace {

using eptest::Proc;

std::string dir_for(const std::string& name) { return eptest::fresh_dir("ep_score_cli", name); }

Proc run(const std::string& args, const std::string& stdin_text, const std::string& dir) {
  return eptest::run_tool(EP_SCORE_BIN, args, stdin_text, dir);
}

std::string window(int i, double max) {
  std::ostringstream s;
  s << R"({"kind":"window","tenant":"acme","device":"d","metric":"m","start":"2026-01-01T10:)"
    << (i < 10 ? "0" : "") << i << R"(:00Z","end":"2026-01-01T10:)" << (i < 10 ? "0" : "") << i
    << R"(:59Z","n":60,"expected":60,"features":{"mean":)" << 10 + (i % 3) * 0.1 << R"(,"max":)"
    << max + (i % 5) * 0.1 << "}}\n";
  return s.str();
}

std::size_t lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST(EpScoreCli, NoModelScoresEveryWindowByTheFallback) {
  std::string d = dir_for("fallback");
  std::string in;
  for (int i = 0; i < 20; ++i) in += window(i, 11);
  in += window(20, 50);
  Proc r = run("--models " + d + "/empty", in, d);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(r.out), 21u);
  EXPECT_NE(r.out.find(R"("model":"fallback","status":"warming")"), std::string::npos);
  std::string last = r.out.substr(r.out.rfind('{'));
  last = r.out.substr(r.out.rfind("{\"kind\""));
  EXPECT_NE(last.find(R"("anomaly":true,"label":"spike")"), std::string::npos) << last;
  EXPECT_NE(last.find(R"("onset":true)"), std::string::npos) << last;
  EXPECT_NE(r.err.find("21 windows scored (21 by the fallback), 1 anomalous, 0 rejected"), std::string::npos) << r.err;
}

TEST(EpScoreCli, BadLinesReportedWithLineNumberAndExit65) {
  std::string d = dir_for("bad");
  std::string in = window(0, 11) + "{\"kind\":\"window\"}\n" + window(1, 11) + "[1,2]\n" +
                   "{\"kind\":\"score\"}\n";
  Proc r = run("", in, d);
  EXPECT_EQ(r.code, 65);
  EXPECT_EQ(lines(r.out), 2u);  // every valid window is still scored
  EXPECT_NE(r.err.find("ep-score: stdin:2: tenant: required"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ep-score: stdin:4: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ep-score: stdin:5: kind: expected \"window\""), std::string::npos) << r.err;
  r = run("--strict", in, d);
  EXPECT_EQ(r.code, 65);
  EXPECT_EQ(lines(r.out), 1u);
}

TEST(EpScoreCli, MisusedOptionsAreUsageErrors) {
  std::string d = dir_for("db");
  EXPECT_EQ(run("--since-last --tenant acme", "", d).code, 64) << "--since-last needs --db";
  EXPECT_EQ(run("--db x --since-last", "", d).code, 64) << "--since-last needs --tenant";
  EXPECT_EQ(run("--tenant acme", "", d).code, 64) << "--tenant only with --since-last";
  EXPECT_EQ(run("--threshold 2", "", d).code, 64);
}

TEST(EpScoreCli, HelpOptionsAreAllInTheManPage) {
  std::string d = dir_for("man");
  Proc r = run("--help", "", d);
  ASSERT_EQ(r.code, 0);
  auto man = ep::fs::read_file(EP_SCORE_MAN);
  ASSERT_TRUE(man.is_ok()) << "man page missing";
  std::regex opt(R"((--[a-z][a-z-]+))");
  std::set<std::string> opts;
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), opt), end; it != end; ++it)
    opts.insert((*it)[1]);
  // roff escapes hyphens as "\-": compare against the page with those unescaped.
  std::string page = std::regex_replace(*man, std::regex(R"(\\-)"), "-");
  for (const auto& o : opts)
    EXPECT_NE(page.find(o), std::string::npos) << o << " is not documented in the man page";
}

namespace {

// Window i of a per-minute series: noise on 10, a spike at 150, a level shift from 220.
std::string minute_window(int i) {
  char ts[2][32];
  for (int k = 0; k < 2; ++k) {
    int m = i, s = k ? 59 : 0;
    std::snprintf(ts[k], sizeof ts[k], "2026-01-0%dT%02d:%02d:%02dZ", 1 + m / 1440, (m / 60) % 24,
                  m % 60, s);
  }
  double level = i >= 220 ? 14 : 10;
  double v = level + 0.1 * ((i * 7919) % 11) - 0.5;
  if (i == 150) v = 30;
  std::ostringstream o;
  o << R"({"kind":"window","tenant":"acme","device":"d","metric":"m","start":")" << ts[0]
    << R"(","end":")" << ts[1] << R"(","n":60,"expected":60,"features":{"mean":)" << v
    << R"(,"min":)" << v - 0.2 << R"(,"max":)" << v + 0.2 << R"(,"last":)" << v << "}}\n";
  return o.str();
}

}  // namespace

TEST(EpScoreCli, StateCarriesEverySeriesAcrossRunsExactly) {
  std::string d = dir_for("state");
  const std::string opts = "--stream --likelihood-min 20 --novelty-after 20 --rest 10 ";
  std::string all, first, second;
  for (int i = 0; i < 300; ++i) (i < 120 ? first : second) += minute_window(i);
  all = first + second;
  Proc whole = run(opts, all, d);
  ASSERT_EQ(whole.code, 0) << whole.err;
  ASSERT_NE(whole.out.find(R"("anomaly":true)"), std::string::npos);  // the spike is caught
  const std::string state = d + "/score.state";
  Proc a = run(opts + "--state " + state, first, d);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_TRUE(std::filesystem::exists(state));
  Proc b = run(opts + "--state " + state, second, d);
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(a.out + b.out, whole.out);  // two runs with --state = one run, byte for byte
  // Without the state the second run starts over: warming again, so it differs.
  Proc fresh = run(opts, second, d);
  EXPECT_NE(a.out + fresh.out, whole.out);
  EXPECT_NE(fresh.out.find(R"("status":"warming")"), std::string::npos);
}

TEST(EpScoreCli, CorruptStateIsMovedAsideReportedAndScoringGoesOn) {
  std::string d = dir_for("state_bad");
  const std::string state = d + "/score.state";
  {
    std::ofstream f(state);
    f << R"({"format":"ep-score-state","version":1,"series":[{"tenant":"acme","device":"d"}]})";
  }
  std::string in;
  for (int i = 0; i < 10; ++i) in += minute_window(i);
  Proc r = run("--stream --state " + state, in, d);
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_EQ(lines(r.out), 10u);  // every window scored
  EXPECT_NE(r.err.find("--state " + state + ": series[0].metric"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("moved to " + state + ".corrupt"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(state + ".corrupt"));
  // The run wrote a fresh, valid state: the next run is clean.
  Proc next = run("--stream --state " + state, minute_window(10), d);
  EXPECT_EQ(next.code, 0) << next.err;
}

TEST(EpScoreCli, StateFromAnotherLikelihoodWindowRestartsOnlyTheLikelihood) {
  std::string d = dir_for("state_window");
  const std::string state = d + "/score.state";
  std::string in;
  for (int i = 0; i < 40; ++i) in += minute_window(i);
  ASSERT_EQ(run("--stream --likelihood-min 20 --state " + state, in, d).code, 0);
  Proc r = run("--stream --likelihood 5 --likelihood-min 20 --state " + state, minute_window(40), d);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("likelihood of acme/d/m starts afresh"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find(R"("status":"warming")"), std::string::npos) << r.out;
}

TEST(EpScoreCli, WindowsScoredAgainDoNotChangeTheSeriesState) {
  // A cron lookback overlaps the previous run: windows already scored come again. They
  // are scored, but what follows scores exactly as if they had come once.
  std::string d = dir_for("again");
  const std::string opts = "--stream --likelihood-min 20 --novelty-after 20 --rest 10 ";
  std::string once, twice;
  for (int i = 0; i < 200; ++i) once += minute_window(i);
  for (int i = 0; i < 160; ++i) twice += minute_window(i);
  for (int i = 100; i < 200; ++i) twice += minute_window(i);  // 100..159 again
  Proc a = run(opts, once, d);
  Proc b = run(opts, twice, d);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  ASSERT_EQ(lines(b.out), 260u);
  auto last_n = [](const std::string& s, int n) {
    std::size_t at = s.size() - 1;
    for (int k = 0; k < n; ++k) at = s.rfind('\n', at - 1);
    return s.substr(at + 1);
  };
  EXPECT_EQ(last_n(b.out, 40), last_n(a.out, 40));
}

TEST(EpScoreCli, StateGivesAWindowThatComesAgainItsFirstRecord) {
  // edgepulse-job's lookbacks overlap: the next run brings the last windows again. With
  // --state they get exactly the records they got the first time, and the new windows
  // score as one run over all would.
  std::string d = dir_for("state_again");
  const std::string state = d + "/score.state";
  const std::string opts = "--stream --likelihood-min 20 --novelty-after 20 --rest 10 --state-windows 64 ";
  std::string first, second, all;
  for (int i = 0; i < 160; ++i) first += minute_window(i);
  for (int i = 100; i < 200; ++i) second += minute_window(i);
  for (int i = 0; i < 200; ++i) all += minute_window(i);
  Proc whole = run(opts, all, d);
  Proc a = run(opts + "--state " + state, first, d);
  Proc b = run(opts + "--state " + state, second, d);
  ASSERT_EQ(whole.code, 0) << whole.err;
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  auto lines_of = [](const std::string& s) {
    std::vector<std::string> v;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  };
  auto la = lines_of(a.out), lb = lines_of(b.out), lw = lines_of(whole.out);
  ASSERT_EQ(la.size(), 160u);
  ASSERT_EQ(lb.size(), 100u);
  ASSERT_EQ(lw.size(), 200u);
  for (int i = 100; i < 160; ++i) EXPECT_EQ(lb[i - 100], la[i]) << "window " << i << " again";
  for (int i = 160; i < 200; ++i) EXPECT_EQ(lb[i - 100], lw[i]) << "window " << i;
  // A window that comes again with other features (late data) is scored afresh.
  std::string changed = minute_window(150);
  changed.replace(changed.find("\"max\":"), 6, "\"max\":9");  // max 9x.x: far above
  Proc c = run(opts + "--state " + state, changed, d);
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out, la[150] + "\n");
}
