#include "ep/cli.h"
#include "ep/config.h"
#include "ep/status.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

using namespace ep;

TEST(Status, ExitCodesFollowSysexits) {
  EXPECT_EQ(Status::usage("x").exit_code(), 64);
  EXPECT_EQ(Status::data("x").exit_code(), 65);
  EXPECT_EQ(Status::unavailable("x").exit_code(), 69);
  EXPECT_EQ(Status::io("x").exit_code(), 74);
  EXPECT_EQ(Status::temporary("x").exit_code(), 75);
  EXPECT_EQ(Status::data("bad").with_context("stdin:3").message(), "stdin:3: bad");
}

TEST(Cli, PrecedenceFlagOverEnvOverConfigOverDefault) {
  std::string path = ::testing::TempDir() + "/ep_cli_test.toml";
  {
    std::ofstream f(path);
    f << "window = \"10m\"\nthreads = 3\nlateness = \"1m\"\n[demo]\nwindow = \"20m\"\n";
  }
  std::string window = "300s", lateness = "0s", hop = "default";
  int threads = 1;
  Cli cli("ep-demo", "demo", "reads nothing", "ep-demo");
  cli.app().add_option("--window", window);
  cli.app().add_option("--threads", threads)->envname("EP_TEST_THREADS");
  cli.app().add_option("--lateness", lateness);
  cli.app().add_option("--hop", hop);
  ::setenv("EP_TEST_THREADS", "7", 1);
  const char* argv[] = {"ep-demo", "--config", path.c_str(), "--lateness", "2m"};
  auto rc = cli.parse(5, argv);
  ::unsetenv("EP_TEST_THREADS");
  ASSERT_FALSE(rc.has_value());
  EXPECT_EQ(window, "20m");     // tool table wins over top level
  EXPECT_EQ(threads, 7);        // env over config
  EXPECT_EQ(lateness, "2m");    // flag over config
  EXPECT_EQ(hop, "default");    // default when nothing else
}

TEST(Cli, MisuseIsExit64AndHelpIsExit0) {
  Cli a("ep-demo", "demo", "io", "ep-demo");
  const char* bad[] = {"ep-demo", "--no-such-flag"};
  EXPECT_EQ(a.parse(2, bad), 64);
  Cli b("ep-demo", "demo", "io", "ep-demo");
  const char* help[] = {"ep-demo", "--help"};
  testing::internal::CaptureStdout();
  EXPECT_EQ(b.parse(2, help), 0);
  auto out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("Example:"), std::string::npos);
  EXPECT_NE(out.find("--log-format"), std::string::npos);
}

TEST(Config, BadTomlNamesFileAndLine) {
  auto c = Config::parse("a = 1\nb = = 2\n", "x.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.status().code(), Code::kUsage);
  EXPECT_EQ(c.status().message().rfind("x.toml:2:", 0), 0u) << c.status().message();
}

// toml++ 3.3.0 treats some non-ASCII code points where whitespace may appear as
// unreachable (undefined behaviour); ep/toml.h makes them a parse error naming the
// character. One code point from each affected range, plus U+3000 (real whitespace
// to toml++, so it fails later, at the key).
TEST(Config, NonAsciiWhereWhitespaceMayBeIsAParseError) {
  for (const char* text : {"\xCF\x9A", "a = 1\n\xC2\xA4 = 2\n", "\xE3\x80\x81", "a\xE3\x80\x80= 1\n"}) {
    auto c = Config::parse(text, "x.toml");
    ASSERT_FALSE(c) << text;
    EXPECT_EQ(c.status().code(), Code::kUsage);
    EXPECT_EQ(c.status().message().rfind("x.toml:", 0), 0u) << c.status().message();
  }
  auto ok = Config::parse("name = \"\xCF\x9A \xC3\xA9\"\n", "x.toml");  // inside a string: fine
  EXPECT_TRUE(ok) << ok.status().message();
}
