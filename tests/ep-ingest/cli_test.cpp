// The command line and its documentation (docs/conventions.md 12, 17) and the shipped examples.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>

#include "harness.h"

namespace ep::ingest::test {
namespace {

TEST(IngestCli, HelpGoesToStdoutWithAnExampleAndExitsZero) {
  std::string dir = make_temp_dir();
  Process p({EP_INGEST_BIN, "--help"}, dir);
  EXPECT_EQ(p.wait(), 0);
  EXPECT_NE(p.out().find("Example:"), std::string::npos);
  EXPECT_NE(p.out().find("ep-ingest --stdin"), std::string::npos);
  Process v({EP_INGEST_BIN, "--version"}, dir);
  EXPECT_EQ(v.wait(), 0);
  EXPECT_EQ(v.out().rfind("ep-ingest (EdgePulse) ", 0), 0u);
  Process bad({EP_INGEST_BIN, "--no-such-flag"}, dir);
  EXPECT_EQ(bad.wait(), 64);
  EXPECT_TRUE(bad.out().empty());
  Process fmt({EP_INGEST_BIN, "--stdin", "--tenant", "t", "--format", "xml"}, dir);
  EXPECT_EQ(fmt.wait(), 64);
}

TEST(IngestCli, ManPageDocumentsEveryOption) {
  std::string dir = make_temp_dir();
  Process p({EP_INGEST_BIN, "--help"}, dir);
  ASSERT_EQ(p.wait(), 0);
  std::string man = read_text(EP_INGEST_MAN);
  ASSERT_FALSE(man.empty());
  // Option lines of --help: "  -h,--help ..." or "  --listen HOST:PORT ...".
  std::regex opt(R"(^\s+(?:-\w,)?(--[a-z][a-z0-9-]+))");
  std::set<std::string> opts;
  for (const auto& line : lines_of(p.out())) {
    std::smatch m;
    if (std::regex_search(line, m, opt)) opts.insert(m[1]);
  }
  EXPECT_GT(opts.size(), 20u);
  for (const auto& o : opts) {
    // roff escapes '-' as '\-'.
    std::string escaped = std::regex_replace(o, std::regex("-"), "\\-");
    EXPECT_TRUE(man.find(escaped) != std::string::npos || man.find(o) != std::string::npos)
        << o << " is not in man/ep-ingest.1";
  }
  for (const char* section : {".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH EXIT STATUS",
                              ".SH ENVIRONMENT", ".SH FILES", ".SH EXAMPLES", ".SH SEE ALSO"})
    EXPECT_NE(man.find(section), std::string::npos) << section;
}

// examples/sample-payloads: the seed payload and CSV log are accepted; each bad-*.json
// is rejected with the status its name promises (bad-<status>-<what>.json).
TEST(IngestCli, SamplePayloadsBehaveAsTheirNamesSay) {
  std::string dir = make_temp_dir();
  auto key = new_key("acme");
  write_keys(dir + "/keys.ndjson", {key});
  Server s(dir, {"--keys", dir + "/keys.ndjson", "--no-time-bounds", "--max-points", "100"});
  std::string root = std::string(EP_INGEST_EXAMPLES) + "/sample-payloads";
  int bad = 0;
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    std::string name = e.path().filename();
    if (e.path().extension() != ".json") continue;
    Client c(s.port());
    std::map<std::string, std::string> h = {{"X-API-Key", key.key}, {"Content-Type", "application/json"}};
    std::smatch m;
    std::regex bad_re(R"(bad-(\d{3})-.*\.json)");
    if (std::regex_match(name, m, bad_re)) {
      unsigned want = static_cast<unsigned>(std::stoi(m[1]));
      if (name.find("no-key") != std::string::npos) h.erase("X-API-Key");
      if (name.find("content-type") != std::string::npos) h["Content-Type"] = "text/csv";
      Reply r = c.request("POST", "/v1/ingest", read_text(e.path()), h);
      EXPECT_EQ(r.status, want) << name << ": " << r.body;
      ++bad;
    } else {
      Reply r = c.request("POST", "/v1/ingest", read_text(e.path()), h);
      EXPECT_EQ(r.status, 202u) << name << ": " << r.body;
    }
  }
  EXPECT_GE(bad, 6);
  Process csv({EP_INGEST_BIN, "--stdin", "--tenant", "acme", "--format", "csv", "--no-time-bounds",
               root + "/device-log.csv"},
              dir);
  EXPECT_EQ(csv.wait(), 0) << csv.err();
  EXPECT_FALSE(csv.out().empty());
}

}  // namespace
}  // namespace ep::ingest::test

namespace ep::ingest::test {
namespace {

// The example config is valid for ep-ingest: flags override it, the rest applies.
TEST(IngestCli, ExampleConfigIsAcceptedAndFlagsWin) {
  std::string dir = make_temp_dir();
  auto key = new_key("acme");
  write_keys(dir + "/keys.ndjson", {key});
  Server s(dir, {"--config", std::string(EP_INGEST_EXAMPLES) + "/edgepulse.toml", "--keys",
                 dir + "/keys.ndjson", "--archive", "file://" + dir + "/archive", "--max-points", "2"});
  Client c(s.port());
  EXPECT_EQ(c.post(payload("d1", 2), {{"X-API-Key", key.key}}).status, 202u);
  EXPECT_EQ(c.post(payload("d1", 3), {{"X-API-Key", key.key}}).status, 413u);
}

}  // namespace
}  // namespace ep::ingest::test
