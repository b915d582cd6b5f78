// The real collectd daemon (Debian's collectd-core) sending to /collectd with write_http
// Format "JSON" and basic auth, the key as the password. Its csv plugin records what it
// dispatched; every one of those values arrives exactly once per (series, ts). A wrong
// password is answered 401 and collectd logs it.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "harness.h"

namespace ep::ingest::test {
namespace {

namespace fs = std::filesystem;
constexpr const char* kCollectd = "/usr/sbin/collectd";

std::string ms_rfc3339(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  char buf[40];
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

// (metric, ts) -> values seen (more than one = a duplicate).
using Seen = std::map<std::pair<std::string, std::string>, std::vector<double>>;

class CollectdIngest : public KeyedTest {
 protected:
  // collectd could not load a plugin (e.g. write_http's libyajl2 missing): no use waiting.
  bool plugin_failed() {
    return read_text(dir_ + "/collectd.log").find("failed with status") != std::string::npos;
  }
  std::string config(unsigned short port, const std::string& password) {
    return "Interval 1\nHostname \"edge-collectd\"\nFQDNLookup false\nBaseDir \"" + dir_ + "\"\nPIDFile \"" + dir_ +
           "/collectd.pid\"\nTypesDB \"/usr/share/collectd/types.db\"\n"
           "LoadPlugin logfile\n<Plugin logfile>\n  LogLevel info\n  File \"" + dir_ + "/collectd.log\"\n</Plugin>\n"
           "LoadPlugin load\nLoadPlugin memory\nLoadPlugin csv\n<Plugin csv>\n  DataDir \"" + dir_ +
           "/csv\"\n  StoreRates false\n</Plugin>\n"
           "<LoadPlugin write_http>\n  FlushInterval 1\n</LoadPlugin>\n"
           "<Plugin write_http>\n  <Node \"edgepulse\">\n    URL \"http://127.0.0.1:" + std::to_string(port) +
           "/collectd\"\n    Format \"JSON\"\n    User \"collectd\"\n    Password \"" + password +
           "\"\n    LogHttpError true\n    StoreRates false\n  </Node>\n</Plugin>\n";
  }

  // What collectd's csv plugin wrote: load.load.<ds> and memory.memory{type_instance="…"}.
  Seen dispatched() {
    Seen out;
    for (const auto& e : fs::recursive_directory_iterator(dir_ + "/csv")) {
      if (!e.is_regular_file()) continue;
      std::string name = e.path().filename();
      std::string plugin = e.path().parent_path().filename();
      std::ifstream in(e.path());
      std::string header, line;
      std::getline(in, header);
      std::vector<std::string> cols;
      std::stringstream hs(header);
      for (std::string c; std::getline(hs, c, ',');) cols.push_back(c);
      while (std::getline(in, line)) {
        std::stringstream ls(line);
        std::string f;
        std::getline(ls, f, ',');
        auto ms = static_cast<std::int64_t>(std::llround(std::stod(f) * 1000));
        for (size_t i = 1; std::getline(ls, f, ','); ++i) {
          std::string metric;
          if (plugin == "load") {
            metric = "load.load." + cols.at(i);
          } else if (plugin == "memory") {
            std::string ti = name.substr(7, name.size() - 7 - 11);  // memory-<ti>-YYYY-MM-DD
            metric = "memory.memory{type_instance=\"" + ti + "\"}";
          } else {
            continue;
          }
          out[{metric, ms_rfc3339(ms)}].push_back(std::stod(f));
        }
      }
    }
    return out;
  }
};

Seen arrived(const std::vector<std::string>& records) {
  Seen out;
  for (const auto& line : records) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (!d.IsObject() || !d.HasMember("kind")) continue;
    EXPECT_STREQ(d["device"].GetString(), "edge-collectd");
    EXPECT_STREQ(d["source"].GetString(), "collectd");
    for (const auto& p : d["points"].GetArray()) {
      std::string metric = p["metric"].GetString();
      if (metric.rfind("load.", 0) != 0 && metric.rfind("memory.", 0) != 0) continue;
      out[{metric, p["ts"].GetString()}].push_back(p["value"].GetDouble());
    }
  }
  return out;
}

TEST_F(CollectdIngest, EveryDispatchedValueArrivesOncePerSeriesAndTs) {
  if (!fs::exists(kCollectd)) GTEST_FAIL() << kCollectd << " missing: install collectd-core";
  Server s(dir_, {"--keys", keys_path_, "--threads", "2"});
  write_text(dir_ + "/collectd.conf", config(s.port(), key_.key));
  Process c({kCollectd, "-f", "-C", dir_ + "/collectd.conf"}, dir_);
  // At least three rounds of load values have been stored.
  ASSERT_TRUE(wait_until(
      [&] {
        size_t n = 0;
        for (const auto& [k, v] : arrived(lines_of(s.process().out()))) n += k.first == "load.load.shortterm";
        return n >= 3 || plugin_failed();
      },
      std::chrono::seconds(60)))
      << read_text(dir_ + "/collectd.log");
  ASSERT_FALSE(plugin_failed()) << read_text(dir_ + "/collectd.log");
  c.signal(SIGTERM);
  ASSERT_EQ(c.wait(), 0) << read_text(dir_ + "/collectd.log");
  s.process().signal(SIGTERM);
  ASSERT_EQ(s.process().wait(), 0) << s.process().err();
  Seen want = dispatched();
  Seen got = arrived(lines_of(s.process().out()));
  ASSERT_GE(want.size(), 9u);  // three rounds of load's three data sources at least
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [key, values] : want) {
    auto it = got.find(key);
    ASSERT_NE(it, got.end()) << key.first << " at " << key.second << " was dispatched but did not arrive";
    ASSERT_EQ(it->second.size(), 1u) << key.first << " at " << key.second << " arrived more than once";
    EXPECT_NEAR(it->second[0], values.at(0), 1e-6 * std::max(1.0, std::fabs(values[0]))) << key.first;
  }
}

TEST_F(CollectdIngest, AWrongPasswordIs401AndCollectdLogsIt) {
  if (!fs::exists(kCollectd)) GTEST_FAIL() << kCollectd << " missing: install collectd-core";
  Server s(dir_, {"--keys", keys_path_, "--threads", "2"});
  write_text(dir_ + "/collectd.conf", config(s.port(), "ep_not_the_key_000000000000"));
  Process c({kCollectd, "-f", "-C", dir_ + "/collectd.conf"}, dir_);
  EXPECT_TRUE(wait_until(
      [&] { return read_text(dir_ + "/collectd.log").find("HTTP Error code: 401") != std::string::npos || plugin_failed(); },
      std::chrono::seconds(60)))
      << read_text(dir_ + "/collectd.log");
  EXPECT_NE(read_text(dir_ + "/collectd.log").find("HTTP Error code: 401"), std::string::npos)
      << read_text(dir_ + "/collectd.log");
  c.signal(SIGTERM);
  c.wait();
  s.process().signal(SIGTERM);
  ASSERT_EQ(s.process().wait(), 0);
  EXPECT_TRUE(arrived(lines_of(s.process().out())).empty());
}

}  // namespace
}  // namespace ep::ingest::test
