// ep-eval as a process: exit codes, rejects with line numbers, NAB inputs, man page.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace {

struct Run {
  int code = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string dir() {
  static std::string d = [] {
    std::string t = ::testing::TempDir() + "ep_eval_cli_XXXXXX";
    return std::string(::mkdtemp(t.data()));
  }();
  return d;
}

Run run(const std::string& args, const std::string& stdin_text = "") {
  std::string in = dir() + "/stdin", out = dir() + "/stdout", err = dir() + "/stderr";
  spit(in, stdin_text);
  std::string cmd = std::string(EP_EVAL_BIN) + " " + args + " <" + in + " >" + out + " 2>" + err;
  int st = std::system(cmd.c_str());
  return Run{WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(out), slurp(err)};
}

const char* kTruth =
    R"({"kind":"truth","tenant":"demo","device":"d1","metric":"temp","start":"2026-01-05T10:10:00Z","end":"2026-01-05T10:20:00Z","type":"spike"})"
    "\n";

std::string score_line(const std::string& start, const std::string& end, bool anomaly,
                       double s = 0.9) {
  return R"({"kind":"score","tenant":"demo","device":"d1","metric":"temp","start":")" + start +
         R"(","end":")" + end + R"(","score":)" + std::to_string(s) +
         R"(,"anomaly":)" + (anomaly ? "true" : "false") + R"(,"label":"spike"})" + "\n";
}

}  // namespace

TEST(EpEvalCli, ReportsPrecisionRecallAndDelay) {
  spit(dir() + "/truth.ndjson", kTruth);
  auto r = run("--truth " + dir() + "/truth.ndjson",
               score_line("2026-01-05T10:10:00Z", "2026-01-05T10:15:00Z", true) +
                   score_line("2026-01-05T10:15:00Z", "2026-01-05T10:20:00Z", false));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("2 score records, 1 flagged windows, 1 detection events"),
            std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(overall\s+1\s+1\s+1\.000\s+1\s+0\s+1\.000\s+1\.000\s+5\.0m\s+5\.0m)")))
      << r.out;
}

TEST(EpEvalCli, BadLinesAreReportedWithLineNumberAndExit65) {
  spit(dir() + "/truth.ndjson", kTruth);
  spit(dir() + "/scores.ndjson",
       score_line("2026-01-05T10:10:00Z", "2026-01-05T10:15:00Z", true) + "{not json\n" +
           score_line("2026-01-05T10:15:00Z", "2026-01-05T10:20:00Z", false, 1.5) +
           R"({"kind":"window","tenant":"demo","device":"d1","metric":"temp"})" + "\n");
  auto r = run("--json --truth " + dir() + "/truth.ndjson " + dir() + "/scores.ndjson");
  EXPECT_EQ(r.code, 65);
  EXPECT_NE(r.err.find("ep-eval: " + dir() + "/scores.ndjson:2: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("scores.ndjson:3: score: not in [0,1]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 input lines rejected"), std::string::npos) << r.err;
  // The valid record was still evaluated, the window record ignored.
  EXPECT_NE(r.out.find("\"score_records\":1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"caught\":1"), std::string::npos) << r.out;
}

TEST(EpEvalCli, StrictStopsAtTheFirstBadLine) {
  spit(dir() + "/truth.ndjson", kTruth);
  auto r = run("--strict --truth " + dir() + "/truth.ndjson", "nope\n");
  EXPECT_EQ(r.code, 65);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("stdin:1: "), std::string::npos) << r.err;
}

TEST(EpEvalCli, BadTruthLineIsRejectedToo) {
  spit(dir() + "/truth2.ndjson", std::string(kTruth) + R"({"kind":"truth","tenant":"demo"})" + "\n");
  auto r = run("--truth " + dir() + "/truth2.ndjson", "");
  EXPECT_EQ(r.code, 65);
  EXPECT_NE(r.err.find("truth2.ndjson:2: device"), std::string::npos) << r.err;
}

TEST(EpEvalCli, UsageErrorsExit64) {
  EXPECT_EQ(run("").code, 64);
  EXPECT_EQ(run("--nab").code, 64);
  EXPECT_EQ(run("--nab --nab-windows x.json").code, 64);  // rows come from --nab-data
  EXPECT_EQ(run("--bogus").code, 64);
  EXPECT_EQ(run("--truth t --merge-gap soon").code, 64);
  auto h = run("--help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("ep-eval --truth"), std::string::npos);
}

TEST(EpEvalCli, MissingTruthFileIsAnIoError) {
  auto r = run("--truth " + dir() + "/does-not-exist", "");
  EXPECT_EQ(r.code, 74) << r.err;
}

TEST(EpEvalCli, NabFromScoreRecordsAndFromResultsDirectory) {
  // One 100-row file, window rows 50..59, detector fires at row 50 only.
  std::string d = dir() + "/nab";
  std::system(("mkdir -p " + d + "/data/cat " + d + "/res/det/cat").c_str());
  std::string data = "timestamp,value\n", res = "timestamp,value,anomaly_score,label\n", recs;
  char ts[32];
  for (int i = 0; i < 100; ++i) {
    std::snprintf(ts, sizeof ts, "2015-01-01 %02d:%02d:00", i / 60, i % 60);
    data += std::string(ts) + "," + std::to_string(i) + "\n";
    res += std::string(ts) + "," + std::to_string(i) + "," + (i == 50 ? "1" : "0") + ",0\n";
    std::string iso = std::string(ts);
    iso[10] = 'T';
    if (i >= 3)  // a window detector says nothing about the first rows
      recs += R"({"kind":"score","tenant":"nab","device":"cat","metric":"f","start":")" + iso +
              R"(Z","end":")" + iso + R"(Z","score":)" + (i == 50 ? "1" : "0") +
              R"(,"anomaly":false})" + "\n";
  }
  spit(d + "/data/cat/f.csv", data);
  spit(d + "/res/det/cat/det_f.csv", res);
  spit(d + "/windows.json",
       R"({"cat/f.csv": [["2015-01-01 00:50:00.000000", "2015-01-01 00:59:00.000000"]]})");
  auto a = run("--nab --json --nab-windows " + d + "/windows.json --nab-data " + d, recs);
  EXPECT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.out.find(R"("profile":"standard","threshold":1.0,"score":1.0,"null":-1.0,"perfect":1.0,"normalized":100.0)"),
            std::string::npos) << a.out;
  EXPECT_NE(a.err.find("3 rows without a score record scored 0"), std::string::npos) << a.err;
  auto b = run("--nab --nab-windows " + d + "/windows.json --nab-data " + d + " --nab-results " +
               d + "/res/det --nab-profile reward_low_FN_rate");
  EXPECT_EQ(b.code, 0) << b.err;
  EXPECT_TRUE(std::regex_search(b.out, std::regex(R"(reward_low_FN_rate\s+1\.000000\s+1\.000\s+-2\.000\s+1\.000\s+100\.0\s+1/1\s)")))
      << b.out;
  EXPECT_EQ(b.out.find("standard"), std::string::npos);
  auto c = run("--nab --nab-windows " + d + "/windows.json --nab-data " + d + " --nab-profile nope");
  EXPECT_EQ(c.code, 64);
  // A bad score line is reported with its number; the rest is still scored.
  auto e = run("--nab --json --nab-profile standard --nab-windows " + d + "/windows.json --nab-data " + d,
               recs + "{\"kind\":\"score\"}\n");
  EXPECT_EQ(e.code, 65);
  EXPECT_NE(e.err.find("stdin:98: tenant"), std::string::npos) << e.err;
  EXPECT_NE(e.out.find("\"normalized\":100.0"), std::string::npos) << e.out;
}

TEST(EpEvalCli, ManPageDocumentsEveryOption) {
  auto h = run("--help");
  std::string man = slurp(EP_EVAL_MAN);
  ASSERT_FALSE(man.empty());
  std::set<std::string> opts;
  std::regex re(R"(--[a-z][a-z-]+)");
  for (auto it = std::sregex_iterator(h.out.begin(), h.out.end(), re); it != std::sregex_iterator(); ++it)
    opts.insert(it->str());
  for (const auto& o : opts) {
    std::string roff = o;
    std::string escaped;
    for (char c : roff) escaped += c == '-' ? std::string("\\-") : std::string(1, c);
    EXPECT_TRUE(man.find(escaped) != std::string::npos || man.find(o) != std::string::npos)
        << o << " missing from man/ep-eval.1";
  }
}
