// Process-level tests of the ep-train binary.
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

std::string dir_for(const std::string& name) { return eptest::fresh_dir("ep_train_cli", name); }

Proc run(const std::string& args, const std::string& stdin_text, const std::string& dir) {
  return eptest::run_tool(EP_TRAIN_BIN, args, stdin_text, dir);
}

std::string windows(const std::string& device, int n) {
  std::ostringstream s;
  for (int i = 0; i < n; ++i) {
    double m = 230 + (i * 7919 % 100) / 100.0;
    s << R"({"kind":"window","tenant":"acme","device":")" << device
      << R"(","metric":"voltage","start":"2026-01-01T)" << 10 + i / 60 << ":" << (i % 60 < 10 ? "0" : "")
      << i % 60 << R"(:00Z","end":"2026-01-01T)" << 10 + i / 60 << ":" << (i % 60 < 10 ? "0" : "") << i % 60
      << R"(:59Z","n":60,"expected":60,"features":{"mean":)" << m << R"(,"max":)" << m + 1
      << R"(,"stuck":false}})" << "\n";
  }
  return s.str();
}

}  // namespace

TEST(EpTrainCli, TrainsListsAndShowsModels) {
  std::string d = dir_for("list");
  Proc r = run("--models " + d + "/models", windows("d1", 100) + windows("d2", 100), d);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("id":"acme/d1/voltage@1")"), std::string::npos);
  EXPECT_NE(r.err.find("2 models written"), std::string::npos);
  r = run("--models " + d + "/models", windows("d1", 100), d);  // retrain d1 -> @2
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("--models " + d + "/models --list", "", d);
  ASSERT_EQ(r.code, 0) << r.err;
  std::regex id(R"re("id":"([^"]+)")re");
  std::vector<std::string> ids;
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), id), end; it != end; ++it)
    ids.push_back((*it)[1]);
  EXPECT_EQ(ids, (std::vector<std::string>{"acme/d1/voltage@1", "acme/d1/voltage@2",
                                           "acme/d2/voltage@1"}));
  r = run("--models " + d + "/models --show acme/d1/voltage", "", d);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(R"({"format":"edgepulse-model","format_version":1,"checksum":"sha256:)", 0), 0u);
  EXPECT_NE(r.out.find(R"("version":2)"), std::string::npos);
  r = run("--models " + d + "/models --show acme/d1/voltage@1", "", d);
  EXPECT_NE(r.out.find(R"("version":1)"), std::string::npos);
  r = run("--models " + d + "/models --show acme/zz/voltage", "", d);
  EXPECT_EQ(r.code, 65);
  EXPECT_EQ(r.err, "ep-train: acme/zz/voltage: no model\n");
}

TEST(EpTrainCli, ModelsDirFromEnvironment) {
  std::string d = dir_for("env");
  Proc r = run("", windows("d1", 40), d);
  EXPECT_EQ(r.code, 64);
  std::string cmd = "MODEL_ARTEFACT_STORE=" + d + "/m " + std::string(EP_TRAIN_BIN) + " <" + d +
                    "/stdin >/dev/null 2>&1";
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0);
  EXPECT_TRUE(std::filesystem::exists(d + "/m/acme/d1/voltage/1.json"));
}

TEST(EpTrainCli, BadLinesReportedWithLineNumberAndExit65) {
  std::string d = dir_for("bad");
  std::string in = windows("d1", 40);
  in.insert(in.find('\n') + 1, "{\"kind\":\"window\",\"tenant\":\"acme\"}\n");
  in += "garbage\n";
  Proc r = run("--models " + d + "/models", in, d);
  EXPECT_EQ(r.code, 65);
  EXPECT_NE(r.err.find("ep-train: stdin:2: device: required"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ep-train: stdin:42: invalid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 rejected; 1 models written"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(d + "/models/acme/d1/voltage/1.json"));
}

TEST(EpTrainCli, RejectsAreReportedInInputOrderWithParserThreads) {
  // Bad lines in different chunks of the threaded reader: messages in line order, and
  // the same models as with one thread.
  std::string d = dir_for("reject_order");
  std::string in;
  std::vector<int> bad_lines;
  for (int block = 0; block < 6; ++block) {
    in += windows("d" + std::to_string(block), 700);  // valid times up to 700 windows
    in += "{broken\n";
    bad_lines.push_back((block + 1) * 701);
  }
  Proc r1 = run("--threads 1 --models " + d + "/m1", in, d);
  Proc r3 = run("--threads 3 --models " + d + "/m3", in, d);
  ASSERT_EQ(r3.code, 65) << r3.err;
  EXPECT_EQ(r1.err, r3.err);
  std::size_t pos = 0;
  for (int line : bad_lines) {
    std::size_t at = r3.err.find("ep-train: stdin:" + std::to_string(line) + ": invalid JSON", pos);
    ASSERT_NE(at, std::string::npos) << "line " << line << " in\n" << r3.err;
    pos = at;
  }
  EXPECT_NE(r3.err.find("ep-train: read 4206 lines: 4200 windows used, 0 outside the training "
                        "range, 6 rejected; 6 models written"),
            std::string::npos)
      << r3.err;
  for (int block = 0; block < 6; ++block) {
    std::string rel = "/acme/d" + std::to_string(block) + "/voltage/1.json";
    auto a = ep::fs::read_file(d + "/m1" + rel), b = ep::fs::read_file(d + "/m3" + rel);
    ASSERT_TRUE(a.is_ok() && b.is_ok()) << rel;
    // created_at (and so the checksum) differ between runs; everything else is identical.
    auto strip = [](std::string s) {
      s = std::regex_replace(s, std::regex(R"re("created_at":"[^"]*")re"), "");
      return std::regex_replace(s, std::regex(R"re("checksum":"[^"]*")re"), "");
    };
    EXPECT_EQ(strip(*a), strip(*b)) << rel;
  }
}

TEST(EpTrainCli, TooFewWindowsIsNotAnErrorButSaysSo) {
  std::string d = dir_for("few");
  Proc r = run("--models " + d + "/models --min-windows 50", windows("d1", 10), d);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("acme/d1/voltage: no model: only 10 windows (need 50)"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(EpTrainCli, HelpOptionsAreAllInTheManPage) {
  std::string d = dir_for("man");
  Proc r = run("--help", "", d);
  ASSERT_EQ(r.code, 0);
  auto man = ep::fs::read_file(EP_TRAIN_MAN);
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
