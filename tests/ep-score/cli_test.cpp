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
