#include "ep/aws_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>

using namespace ep;

namespace {

aws::Env env_of(std::map<std::string, std::string> m) {
  return [m](const char* name) -> std::optional<std::string> {
    auto it = m.find(name);
    if (it == m.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

struct Dir {
  Dir() {
    char t[] = "/tmp/ep-aws-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~Dir() { std::system(("rm -rf " + path).c_str()); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path + "/" + name) << text; }
  std::string path;
};

}  // namespace

TEST(AwsIni, ReadsSectionsKeysCommentsAndNestedSettings) {
  auto ini = aws::parse_ini(
      "# comment\n; another\n[default]\nAWS_Access_Key_ID = AKID \nregion=eu-west-1\r\n\n"
      "[profile edge]\ns3 =\n  max_concurrent_requests = 4\n\taddressing_style = path\noutput = json\n",
      "config");
  ASSERT_TRUE(ini) << ini.status().message();
  EXPECT_EQ((*ini)["default"]["aws_access_key_id"], "AKID");
  EXPECT_EQ((*ini)["default"]["region"], "eu-west-1");
  EXPECT_EQ((*ini)["profile edge"]["s3.max_concurrent_requests"], "4");
  EXPECT_EQ((*ini)["profile edge"]["s3.addressing_style"], "path");
  EXPECT_EQ((*ini)["profile edge"]["output"], "json");
}

TEST(AwsIni, RejectsMalformedLinesNamingSourceAndLine) {
  auto no_section = aws::parse_ini("\nkey = value\n", "creds");
  ASSERT_FALSE(no_section);
  EXPECT_EQ(no_section.status().message(), "creds:2: key = value before any [section]");
  auto header = aws::parse_ini("[default\n", "creds");
  ASSERT_FALSE(header);
  EXPECT_EQ(header.status().message(), "creds:1: section header without ']'");
  EXPECT_FALSE(aws::parse_ini("[default]\njust words\n", "creds"));
  EXPECT_FALSE(aws::parse_ini("[]\n", "creds"));
  EXPECT_FALSE(aws::parse_ini("[default]\n = x\n", "creds"));
  EXPECT_FALSE(aws::parse_ini(std::string("[default]\nk = a\0b\n", 17), "creds"));
}

TEST(AwsIni, BoundsLineLengthSizeAndEntries) {
  EXPECT_FALSE(aws::parse_ini("[d]\nk = " + std::string(aws::kMaxIniLine, 'x') + "\n", "c"));
  EXPECT_FALSE(aws::parse_ini(std::string(aws::kMaxIniBytes + 1, '#'), "c"));
  std::string many = "[d]\n";
  for (size_t i = 0; i <= aws::kMaxIniEntries; ++i) many += "k" + std::to_string(i) + " = v\n";
  auto r = aws::parse_ini(many, "c");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("more than"), std::string::npos);
}

TEST(AwsCredentials, EnvironmentWinsOverTheFiles) {
  Dir d;
  d.write("credentials", "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = FILESECRET\n");
  d.write("config", "[default]\nregion = eu-central-1\n");
  auto c = aws::resolve_credentials(env_of({{"HOME", d.path}, {"AWS_SHARED_CREDENTIALS_FILE", d.path + "/credentials"},
                                            {"AWS_CONFIG_FILE", d.path + "/config"}, {"AWS_ACCESS_KEY_ID", "ENVKEY"},
                                            {"AWS_SECRET_ACCESS_KEY", "ENVSECRET"}, {"AWS_SESSION_TOKEN", "T"},
                                            {"AWS_REGION", "us-west-2"}}));
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->access_key, "ENVKEY");
  EXPECT_EQ(c->secret_key, "ENVSECRET");
  EXPECT_EQ(c->session_token, "T");
  EXPECT_EQ(c->region, "us-west-2");
}

TEST(AwsCredentials, ProfileFromTheFilesWithDefaultLocations) {
  Dir d;
  ::mkdir((d.path + "/.aws").c_str(), 0700);
  d.write(".aws/credentials", "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n"
                              "[edge]\naws_access_key_id = E\naws_secret_access_key = ES\naws_session_token = ET\n");
  d.write(".aws/config", "[default]\nregion = eu-west-1\n[profile edge]\nregion = ap-south-1\n");
  auto def = aws::resolve_credentials(env_of({{"HOME", d.path}}));
  ASSERT_TRUE(def) << def.status().message();
  EXPECT_EQ(def->access_key, "D");
  EXPECT_EQ(def->region, "eu-west-1");
  auto edge = aws::resolve_credentials(env_of({{"HOME", d.path}, {"AWS_PROFILE", "edge"}}));
  ASSERT_TRUE(edge) << edge.status().message();
  EXPECT_EQ(edge->access_key, "E");
  EXPECT_EQ(edge->secret_key, "ES");
  EXPECT_EQ(edge->session_token, "ET");
  EXPECT_EQ(edge->region, "ap-south-1");
  // A key only in the config file's profile section counts too.
  d.write("only-config", "[profile cfg]\naws_access_key_id = C\naws_secret_access_key = CS\n");
  auto cfg = aws::resolve_credentials(env_of({{"HOME", d.path}, {"AWS_PROFILE", "cfg"},
                                              {"AWS_CONFIG_FILE", d.path + "/only-config"}}));
  ASSERT_TRUE(cfg) << cfg.status().message();
  EXPECT_EQ(cfg->access_key, "C");
}

TEST(AwsCredentials, MissingFilesAreNoErrorButAnUnknownNamedProfileIs) {
  Dir d;
  auto none = aws::resolve_credentials(env_of({{"HOME", d.path}}));
  ASSERT_TRUE(none) << none.status().message();
  EXPECT_TRUE(none->access_key.empty());
  auto unknown = aws::resolve_credentials(env_of({{"HOME", d.path}, {"AWS_PROFILE", "ghost"}}));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.status().code(), Code::kUsage);
  EXPECT_NE(unknown.status().message().find("AWS_PROFILE ghost: no such profile"), std::string::npos);
  d.write("bad", "[default\n");
  auto bad = aws::resolve_credentials(env_of({{"HOME", d.path}, {"AWS_SHARED_CREDENTIALS_FILE", d.path + "/bad"}}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message(), d.path + "/bad:1: section header without ']'");
}
