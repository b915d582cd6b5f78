// ep-api as a process: --help/--version, exit codes, the man page covering every
// option, and a clean SIGTERM shutdown while serving (against the fixture's Postgres).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "fixture.h"

namespace ep::api::test {
namespace {

struct Run {
  int rc;
  std::string out;
};

Run run(const std::string& args) {
  std::string cmd = std::string(EP_API_BIN) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ApiCli, HelpAndVersion) {
  auto h = run("--help");
  EXPECT_EQ(h.rc, 0);
  EXPECT_NE(h.out.find("Example:"), std::string::npos);
  auto v = run("--version");
  EXPECT_EQ(v.rc, 0);
  EXPECT_NE(v.out.find("ep-api"), std::string::npos);
  EXPECT_EQ(run("--bogus").rc, 64);
}

TEST(ApiCli, EveryHelpOptionIsInTheManPage) {
  std::string help = run("--help").out;
  std::string man = read_file(EP_API_MAN);
  ASSERT_FALSE(man.empty());
  // roff writes "-" as "\-".
  std::string plain = std::regex_replace(man, std::regex(R"(\\-)"), "-");
  std::regex opt(R"((--[a-z][a-z-]+))");
  int n = 0;
  for (auto it = std::sregex_iterator(help.begin(), help.end(), opt); it != std::sregex_iterator();
       ++it) {
    std::string o = (*it)[1];
    ++n;
    EXPECT_NE(plain.find(o), std::string::npos) << o << " is in --help but not in man/ep-api.1";
  }
  EXPECT_GT(n, 10);
}

TEST(ApiCli, ServerFlagMisuseIsUsageError) {
  auto half = run("--tls-cert /nonexistent.crt");
  EXPECT_EQ(half.rc, 64) << half.out;
  EXPECT_NE(half.out.find("--tls-cert and --tls-key go together"), std::string::npos) << half.out;
  auto soon = run("--header-timeout soon");
  EXPECT_EQ(soon.rc, 64) << soon.out;
  EXPECT_NE(soon.out.find("--header-timeout soon: not a positive duration"), std::string::npos) << soon.out;
  EXPECT_EQ(run("--max-connections-per-client -1").rc, 64);
}

TEST(ApiCli, MissingPepperIsUsageError) {
  ::unsetenv("API_KEY_HASH_SALT");
  EXPECT_EQ(run("--db dbname=x").rc, 64);
}

TEST(ApiCli, UnreachableDatabaseIs69) {
  auto r = run("--api-key-hash-salt p --db postgresql://127.0.0.1:1/nothing");
  EXPECT_EQ(r.rc, 69) << r.out;
  EXPECT_NE(r.out.find("ep-api: "), std::string::npos);
}

}  // namespace
}  // namespace ep::api::test
