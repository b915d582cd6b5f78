// ep-ingest --stdin: golden cases as data (stdin-cases/<case>/{args,stdin,expout,experr,
// exit[,rejects]}, regenerate with EP_UPDATE_GOLDEN=1), plus streaming behaviour.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <filesystem>
#include <regex>

#include "ep/archive.h"
#include "harness.h"

namespace ep::ingest::test {
namespace {

namespace fs = std::filesystem;

// batch_id and received_at change every run; everything else is compared verbatim.
std::string normalise(std::string s) {
  static const std::regex id(R"("batch_id":"[0-9a-f-]{36}")");
  static const std::regex at(R"("received_at":"[0-9T:.Z-]{24}")");
  s = std::regex_replace(s, id, R"("batch_id":"<id>")");
  return std::regex_replace(s, at, R"("received_at":"<now>")");
}

std::vector<std::string> case_names() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(EP_INGEST_CASES)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

class StdinGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(StdinGolden, MatchesExpectedOutput) {
  std::string cdir = std::string(EP_INGEST_CASES) + "/" + GetParam();
  std::string dir = make_temp_dir();
  std::vector<std::string> args = {EP_INGEST_BIN};
  for (auto a : lines_of(read_text(cdir + "/args"))) {
    if (auto p = a.find("{dir}"); p != std::string::npos) a.replace(p, 5, dir);
    args.push_back(a);
  }
  Process p(args, dir, {}, cdir + "/stdin");
  auto rc = p.wait();
  ASSERT_TRUE(rc.has_value());
  std::string out = normalise(p.out()), err = p.err();
  std::string rejects = fs::exists(dir + "/rejects.ndjson") ? read_text(dir + "/rejects.ndjson") : "";
  if (std::getenv("EP_UPDATE_GOLDEN")) {
    write_text(cdir + "/expout", out);
    write_text(cdir + "/experr", err);
    write_text(cdir + "/exit", std::to_string(*rc) + "\n");
    if (!rejects.empty()) write_text(cdir + "/rejects", rejects);
    return;
  }
  EXPECT_EQ(*rc, std::stoi(read_text(cdir + "/exit")));
  EXPECT_EQ(out, read_text(cdir + "/expout"));
  EXPECT_EQ(err, read_text(cdir + "/experr"));
  if (fs::exists(cdir + "/rejects")) {
    EXPECT_EQ(rejects, read_text(cdir + "/rejects"));
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, StdinGolden, ::testing::ValuesIn(case_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

std::string line_for(const std::string& device, double v) {
  return R"({"device_external_id":")" + device + R"(","metrics":[{"name":"t","ts":")" + now_rfc3339() +
         R"(","value":)" + std::to_string(v) + "}]}\n";
}

void write_all(int fd, const std::string& s) { ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size())); }

TEST(IngestStdin, EachLineIsEmittedAsItArrives) {
  std::string dir = make_temp_dir();
  Process p({EP_INGEST_BIN, "--stdin", "--tenant", "acme"}, dir, {}, "", /*stdin_pipe=*/true);
  write_all(p.stdin_fd(), line_for("d1", 1));
  // The input stays open: the batch must come out before more input or EOF.
  EXPECT_TRUE(wait_until([&] { return lines_of(p.out()).size() == 1; })) << p.err();
  write_all(p.stdin_fd(), line_for("d2", 2));
  EXPECT_TRUE(wait_until([&] { return lines_of(p.out()).size() == 2; })) << p.err();
  p.close_stdin();
  EXPECT_EQ(p.wait(), 0);
}

TEST(IngestStdin, CsvBatchIsEmittedWhenTheInputGoesIdle) {
  std::string dir = make_temp_dir();
  Process p({EP_INGEST_BIN, "--stdin", "--tenant", "acme", "--format", "csv"}, dir, {}, "", true);
  std::string ts = now_rfc3339();
  write_all(p.stdin_fd(), "d1,t," + ts + ",1\nd1,t," + ts + ",2\nd2,t," + ts + ",3\n");
  ASSERT_TRUE(wait_until([&] { return lines_of(p.out()).size() == 2; })) << p.err();
  auto lines = lines_of(p.out());
  rapidjson::Document d;
  d.Parse(lines[0].c_str());
  EXPECT_STREQ(d["device"].GetString(), "d1");
  EXPECT_EQ(d["points"].Size(), 2u);
  EXPECT_EQ(std::string(d["raw"].GetString()), "d1,t," + ts + ",1\nd1,t," + ts + ",2\n");
  p.close_stdin();
  EXPECT_EQ(p.wait(), 0);
  EXPECT_EQ(lines_of(p.out()).size(), 2u);
}

TEST(IngestStdin, CsvBatchesAreBoundedInSize) {
  std::string dir = make_temp_dir();
  std::string in, ts = now_rfc3339();
  for (int i = 0; i < 2500; ++i) in += "d1,t," + ts + "," + std::to_string(i) + "\n";
  write_text(dir + "/in.csv", in);
  Process p({EP_INGEST_BIN, "--stdin", "--tenant", "acme", "--format", "csv", dir + "/in.csv"}, dir);
  EXPECT_EQ(p.wait(), 0) << p.err();
  std::vector<unsigned> sizes;
  for (const auto& l : lines_of(p.out())) {
    rapidjson::Document d;
    d.Parse(l.c_str());
    sizes.push_back(d["points"].Size());
  }
  EXPECT_EQ(sizes, (std::vector<unsigned>{1000, 1000, 500}));
}

TEST(IngestStdin, ArchivesEveryBatchBeforeEmittingIt) {
  std::string dir = make_temp_dir();
  std::string in;
  for (int i = 0; i < 300; ++i) in += line_for("d" + std::to_string(i % 7), i);
  write_text(dir + "/in.ndjson", in);
  std::string uri = "file://" + dir + "/archive";
  Process p({EP_INGEST_BIN, "--stdin", "--tenant", "acme", "--archive", uri}, dir, {}, dir + "/in.ndjson");
  ASSERT_EQ(p.wait(), 0) << p.err();
  ArchiveOptions ro;
  ro.create = false;
  auto archive = Archive::open(uri, ro);
  ASSERT_TRUE(archive.is_ok());
  std::set<std::string> stored;
  ASSERT_TRUE((*archive)->list({}, [&](const ArchiveObject& o) {
    stored.insert(o.batch_id);
    return true;
  }).is_ok());
  auto lines = lines_of(p.out());
  ASSERT_EQ(lines.size(), 300u);
  for (const auto& l : lines) {
    rapidjson::Document d;
    d.Parse(l.c_str());
    EXPECT_TRUE(stored.count(d["batch_id"].GetString())) << l;
  }
}

TEST(IngestStdin, BrokenPipeEndsQuietly) {
  std::string dir = make_temp_dir();
  std::string in;
  for (int i = 0; i < 20000; ++i) in += line_for("d1", i);
  write_text(dir + "/in.ndjson", in);
  Process p({"/bin/bash", "-c",
             std::string(EP_INGEST_BIN) + " --stdin --tenant acme " + dir +
                 "/in.ndjson | head -n 1 >/dev/null; echo \"${PIPESTATUS[0]}\""},
            dir);
  ASSERT_EQ(p.wait(), 0);
  EXPECT_EQ(p.out(), "0\n");
  EXPECT_EQ(p.err().find("error"), std::string::npos) << p.err();
}

TEST(IngestStdin, MissingTenantIsAUsageError) {
  std::string dir = make_temp_dir();
  Process p({EP_INGEST_BIN, "--stdin"}, dir);
  EXPECT_EQ(p.wait(), 64);
  EXPECT_NE(p.err().find("--stdin needs --tenant T"), std::string::npos) << p.err();
}

TEST(IngestStdin, UnreadableInputFileIsAnIoError) {
  std::string dir = make_temp_dir();
  Process p({EP_INGEST_BIN, "--stdin", "--tenant", "acme", dir + "/missing.ndjson"}, dir);
  EXPECT_EQ(p.wait(), 74);
  EXPECT_NE(p.err().find("missing.ndjson: No such file or directory"), std::string::npos) << p.err();
}

}  // namespace
}  // namespace ep::ingest::test
