// Hostile input against every tool that reads records on stdin, each run as its real
// binary: JSON nested far past kMaxJsonDepth (well-formed at depth 100, unterminated at
// 20,000 and 200,000 levels, and `{"a":` 50,000 times) between two valid lines. Each
// must be one numbered reject naming the nesting limit, exit 65, and both valid lines
// processed: no crash, nothing lost on either side.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "ep/crypto.h"
#include "ep/fsutil.h"
#include "ep/json.h"
#include "hostile_input.h"
#include "pg_fixture.h"

namespace {

using eptest::RunResult;
using eptest::hostile::HostileLine;
using eptest::hostile::hostile_lines;

std::string temp_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/hostile_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

void spit(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// One tool: how to run it (in a fresh directory), two valid input lines, and what their
// processing leaves behind (stdout, or files in the directory).
struct Tool {
  std::string name;
  std::function<std::vector<std::string>(const std::string& dir)> argv;
  std::string before, after;
  std::function<void(const RunResult&, const std::string& dir)> check_valid_lines_processed;
  // The reject of a line whose root is not an object, when the tool refuses that before
  // looking deeper ("" = the nesting error like every other line).
  std::string non_object_reason;
};

const std::string kWindowA =
    R"({"kind":"window","tenant":"acme","device":"d","metric":"m","start":"2026-01-01T10:00:00Z","end":"2026-01-01T10:01:00Z","n":60,"expected":60,"features":{"mean":10,"max":11}})";
const std::string kWindowB =
    R"({"kind":"window","tenant":"acme","device":"d","metric":"m","start":"2026-01-01T10:01:00Z","end":"2026-01-01T10:02:00Z","n":60,"expected":60,"features":{"mean":12,"max":13}})";
std::string score(const std::string& device) {
  return R"({"kind":"score","tenant":"acme","device":")" + device +
         R"(","metric":"m","start":"2026-01-01T10:00:00.000Z","end":"2026-01-01T10:01:00.000Z","score":0.9,"anomaly":true,"label":"spike"})";
}
std::string point(const std::string& device, const std::string& ts, double v) {
  return R"({"kind":"point","tenant":"acme","device":")" + device + R"(","metric":"m","ts":")" + ts +
         R"(","value":)" + std::to_string(v) + "}";
}
// A batch as ep-ingest writes it: raw is the body, sha256 its digest.
std::string batch(int i) {
  std::string raw = R"({"device_external_id":"dev-)" + std::to_string(i) +
                    R"(","metrics":[{"name":"m","ts":"2026-01-05T10:00:00Z","value":1.5}]})";
  ep::JsonWriter w;
  w.start_object();
  w.kv("kind", "batch");
  w.kv("batch_id", "0190a0b0-0000-7000-8000-00000000000" + std::to_string(i));
  w.kv("tenant", "acme");
  w.kv("device", "dev-" + std::to_string(i));
  w.kv("source", "test");
  w.kv("received_at", "2026-01-05T10:00:00Z");
  w.kv("sha256", ep::crypto::sha256_hex(raw));
  w.key("points");
  w.raw(R"([{"metric":"m","ts":"2026-01-05T10:00:00Z","value":1.5}])");
  w.kv("raw", raw);
  w.end_object();
  return w.take();
}
std::string ingest_payload(const std::string& device) {
  return R"({"device_external_id":")" + device +
         R"(","metrics":[{"name":"voltage","ts":"2026-01-05T10:00:00Z","value":229.5}]})";
}

// The check for a tool whose valid lines make `n` records of `kind` on stdout, one of
// them holding `detail` (so the line after the hostile one was processed too).
std::function<void(const RunResult&, const std::string&)> stdout_has(const std::string& kind, int n,
                                                                     const std::string& detail) {
  return [=](const RunResult& r, const std::string&) {
    EXPECT_EQ(count_of(r.out, R"("kind":")" + kind + "\""), n) << r.out;
    EXPECT_NE(r.out.find(detail), std::string::npos) << r.out;
  };
}

std::vector<Tool> tools() {
  std::vector<Tool> t;
  t.push_back({"ep-features", [](const std::string&) { return std::vector<std::string>{EP_FEATURES_BIN}; },
               point("d", "2026-01-05T10:00:00Z", 1), point("d", "2026-01-05T10:06:00Z", 2),
               stdout_has("window", 2, R"("start":"2026-01-05T10:05:00.000Z")"),
               ""});
  t.push_back({"ep-score",
               [](const std::string& dir) {
                 std::filesystem::create_directories(dir + "/models");
                 return std::vector<std::string>{EP_SCORE_BIN, "--models", dir + "/models"};
               },
               kWindowA, kWindowB,
               stdout_has("score", 2, R"("start":"2026-01-01T10:01:00.000Z")"),
               ""});
  t.push_back({"ep-alert",
               [](const std::string& dir) {
                 unsigned char key[32];
                 ep::crypto::random_bytes(key, sizeof key);
                 std::string secret = "whsec_" + ep::crypto::base64({reinterpret_cast<char*>(key), sizeof key});
                 spit(dir + "/rules.toml", "[[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/hook\"\n"
                                           "secrets = [\"" + secret + "\"]\n\n[[rules]]\nname = \"r\"\n"
                                           "webhooks = [\"ops\"]\nconsecutive = 1\n");
                 return std::vector<std::string>{EP_ALERT_BIN, "--rules", dir + "/rules.toml", "--dry-run"};
               },
               score("d1"), score("d2"),
               stdout_has("alert", 2, R"("device":"d2")"),
               ""});
  t.push_back({"ep-archive",
               [](const std::string& dir) {
                 return std::vector<std::string>{EP_ARCHIVE_BIN, "write", "--archive", "file://" + dir + "/archive"};
               },
               batch(1), batch(2),
               [](const RunResult& r, const std::string& dir) {
                 EXPECT_EQ(count_of(r.out, R"("kind":"batch")"), 2) << r.out;
                 // What the archive holds, whatever its format: replay it.
                 std::string replayed = dir + "/replayed.ndjson";
                 std::string cmd = std::string(EP_ARCHIVE_BIN) + " replay --archive file://" + dir +
                                   "/archive >" + replayed;
                 ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
                 std::ifstream in(replayed);
                 std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
                 EXPECT_EQ(count_of(text, R"("kind":"batch")"), 2) << "both valid batches archived: " << text;
               },
               ""});
  t.push_back({"ep-train",
               [](const std::string& dir) {
                 return std::vector<std::string>{EP_TRAIN_BIN, "--models", dir + "/models", "--min-windows", "2"};
               },
               kWindowA, kWindowB,
               stdout_has("model", 1, R"("windows":2)"),
               ""});
  t.push_back({"ep-eval",
               [](const std::string& dir) {
                 spit(dir + "/truth.ndjson",
                      R"({"kind":"truth","tenant":"acme","device":"d1","metric":"m","start":"2026-01-01T10:00:00Z","end":"2026-01-01T10:01:00Z","type":"spike"})"
                      "\n");
                 return std::vector<std::string>{EP_EVAL_BIN, "--json", "--truth", dir + "/truth.ndjson"};
               },
               score("d1"), score("d2"),
               [](const RunResult& r, const std::string&) {
                 EXPECT_NE(r.out.find(R"("score_records":2)"), std::string::npos) << r.out;
               },
               ""});
  t.push_back({"ep-ingest",
               [](const std::string&) {
                 return std::vector<std::string>{EP_INGEST_BIN, "--stdin", "--tenant", "acme", "--no-time-bounds"};
               },
               ingest_payload("meter-1"), ingest_payload("meter-2"),
               stdout_has("batch", 2, R"("device":"meter-2")"),
               "payload: not a JSON object"});
  t.push_back({"ep-plot",
               [](const std::string& dir) {
                 return std::vector<std::string>{EP_PLOT_BIN, "-o", dir + "/plot.svg"};
               },
               point("d", "2026-01-05T10:00:00Z", 1), point("d", "2026-01-05T10:06:00Z", 2),
               [](const RunResult&, const std::string& dir) {
                 auto svg = ep::fs::read_file(dir + "/plot.svg");
                 ASSERT_TRUE(svg.is_ok());
                 EXPECT_NE(svg->find("acme/d/m"), std::string::npos) << *svg;
                 EXPECT_NE(svg->find(R"(class="values" data-points="2")"), std::string::npos) << *svg;
               },
               ""});
  return t;
}

// The one reject: the tool's name, stdin line 2, the nesting limit (or the tool's own
// reason for a non-object root).
void expect_one_reject(const Tool& t, const HostileLine& line, const RunResult& r) {
  const std::string limit = "nesting deeper than " + std::to_string(ep::kMaxJsonDepth) + " levels";
  std::string reason = "invalid JSON at byte [0-9]+: " + limit;
  if (!line.root_is_object && !t.non_object_reason.empty()) reason = t.non_object_reason;
  EXPECT_TRUE(std::regex_search(r.err, std::regex(t.name + ": stdin:2: " + reason + "\n"))) << r.err;
  std::regex numbered("stdin:[0-9]+:");
  EXPECT_EQ(std::distance(std::sregex_iterator(r.err.begin(), r.err.end(), numbered), std::sregex_iterator()), 1)
      << "exactly one line rejected: " << r.err;
}

class HostileStdin : public ::testing::TestWithParam<HostileLine> {};

TEST_P(HostileStdin, EveryToolRejectsTheLineAndKeepsItsNeighbours) {
  for (const Tool& t : tools()) {
    SCOPED_TRACE(t.name);
    std::string dir = temp_dir(t.name + "_" + GetParam().name);
    RunResult r = eptest::run(t.argv(dir), t.before + "\n" + GetParam().text + "\n" + t.after + "\n");
    EXPECT_EQ(r.status, 65) << r.err;
    expect_one_reject(t, GetParam(), r);
    t.check_valid_lines_processed(r, dir);
  }
}

INSTANTIATE_TEST_SUITE_P(Depths, HostileStdin, ::testing::ValuesIn(hostile_lines()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
