// ep-archive as a process: write, replay, verify, ls, prune on file:// and s3:// archives.
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>

#include <signal.h>

#include <gtest/gtest.h>

#include "ep/crypto.h"
#include "ep/fsutil.h"
#include "ep/json.h"
#include "ep/records.h"
#include "s3rver.h"
#include "test_util.h"

namespace ep {
namespace {

const std::string kBin = EP_ARCHIVE_BIN;

// A batch record as ep-ingest emits it, plus an unknown field that must survive.
std::string batch_line(const std::string& tenant, const std::string& device, const std::string& id,
                       const std::string& received, const std::string& raw) {
  Batch b;
  b.batch_id = id;
  b.tenant = tenant;
  b.device = device;
  b.source = "http";
  b.received_at = *parse_rfc3339(received);
  b.sha256 = crypto::sha256_hex(raw);
  b.points.push_back({"temp", b.received_at, 21.5, "C"});
  b.raw = raw;
  std::string line = to_ndjson(b);
  line.insert(line.size() - 1, ",\"x_extra\":{\"keep\":[1,2]}");
  return line;
}

std::string raw_body(int i) {
  // Bytes that a careless re-encoding would change: escapes, UTF-8, control chars, spacing.
  return "{ \"device_external_id\" : \"d" + std::to_string(i) +
         "\",\"metrics\":[{\"name\":\"temp\",\"ts\":\"2026-01-05T10:00:00+01:00\",\"value\":2.50e1,"
         "\"unit\":\"\xC2\xB0" "C\",\"note\":\"tab\\there \\\"q\\\" \\u00e9\x01\"}]}  ";
}

// Format 1 archives (one file per batch, written with --format 1); EpArchiveCli2 below
// covers format 2, the default.
class EpArchiveCli : public ::testing::Test {
 protected:
  std::string uri() const { return "file://" + dir_.path() + "/arch"; }
  test::RunResult ep(std::vector<std::string> args, const std::string& in = {},
                     std::vector<std::string> env = {}) {
    args.insert(args.begin(), kBin);
    if (!format_.empty()) args.insert(args.end(), {"--format", format_});
    return test::run(args, in, env);
  }
  // Writes n batches across two tenants and two days; returns the input lines.
  std::vector<std::string> seed(int n) {
    std::vector<std::string> lines;
    std::string in;
    for (int i = 0; i < n; ++i) {
      char id[64];
      std::snprintf(id, sizeof id, "0190a000-0000-7000-8000-%012d", i);
      lines.push_back(batch_line(i % 3 ? "acme" : "beta", "dev" + std::to_string(i % 4), id,
                                 i < n / 2 ? "2026-01-05T10:00:00.000Z" : "2026-01-06T09:30:00.250Z",
                                 raw_body(i)));
      in += lines.back() + "\n";
    }
    auto r = ep({"--archive", uri()}, in);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    written_ = r.out;
    return lines;
  }
  // Two batches on days in 2020 and one from an hour ago.
  static std::string old_and_recent_days() {
    std::string in;
    in += batch_line("acme", "d", "0190a000-0000-7000-8000-000000000001", "2020-01-05T10:00:00Z", "{}") + "\n";
    in += batch_line("acme", "d", "0190a000-0000-7000-8000-000000000002", "2020-01-06T10:00:00Z", "{}") + "\n";
    std::string recent = format_rfc3339(now_ns() - 3600 * kNsPerSec);
    in += batch_line("acme", "d", "0190a000-0000-7000-8000-000000000003", recent, "{}") + "\n";
    return in;
  }
  test::TempDir dir_;
  std::string written_;
  std::string format_ = "1";
};

TEST_F(EpArchiveCli, WritePassesBatchesOnWithArchiveUriInsteadOfRaw) {
  auto lines = seed(6);
  auto out = test::lines_of(written_);
  ASSERT_EQ(out.size(), 6u);
  for (size_t i = 0; i < out.size(); ++i) {
    rapidjson::Document d;
    ASSERT_TRUE(parse_json(out[i], d));
    EXPECT_FALSE(d.HasMember("raw"));
    std::string a = d["archive"].GetString();
    EXPECT_TRUE(a.starts_with(uri() + "/")) << a;
    EXPECT_TRUE(std::filesystem::exists(a.substr(7))) << a;
    EXPECT_TRUE(d.HasMember("x_extra")) << "unknown fields are kept";
    // Field order kept: "archive" sits where "raw" was, before the unknown field.
    EXPECT_LT(out[i].find("\"archive\""), out[i].find("\"x_extra\""));
  }
}

TEST_F(EpArchiveCli, ReplayEmitsOriginalRecordsWithIdenticalRawBytes) {
  auto lines = seed(10);
  auto r = ep({"replay", "--archive", uri()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = test::lines_of(r.out);
  ASSERT_EQ(out.size(), 10u);
  std::map<std::string, std::string> original;  // batch_id -> line
  for (auto& l : lines) {
    rapidjson::Document d;
    ASSERT_TRUE(parse_json(l, d));
    original[d["batch_id"].GetString()] = l;
  }
  std::string last_key;
  for (auto& l : out) {
    rapidjson::Document got, want;
    ASSERT_TRUE(parse_json(l, got));
    std::string id = got["batch_id"].GetString();
    ASSERT_TRUE(parse_json(original[id], want));
    EXPECT_STREQ(got["source"].GetString(), "replay");
    std::string raw(got["raw"].GetString(), got["raw"].GetStringLength());
    EXPECT_EQ(raw, std::string(want["raw"].GetString(), want["raw"].GetStringLength()));
    EXPECT_EQ(crypto::sha256_hex(raw), got["sha256"].GetString());
    EXPECT_TRUE(got.HasMember("x_extra"));
    // Received order per tenant: (tenant, day, batch_id) ascending.
    std::string key = std::string(got["tenant"].GetString()) + "/" + got["received_at"].GetString() + "/" + id;
    EXPECT_LT(last_key, key);
    last_key = key;
  }
}

TEST_F(EpArchiveCli, ReplayFilters) {
  seed(12);
  auto count = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"replay", "--archive", uri()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = ep(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return test::lines_of(r.out).size();
  };
  EXPECT_EQ(count({"--tenant", "beta"}), 4u);
  EXPECT_EQ(count({"--tenant", "acme", "--device", "dev1"}), 2u);  // i = 1, 5
  EXPECT_EQ(count({"--from", "2026-01-06"}), 6u);
  EXPECT_EQ(count({"--to", "2026-01-05"}), 6u);  // a date-only --to includes the day
  EXPECT_EQ(count({"--from", "2026-01-06T09:30:00.250Z", "--to", "2026-01-06T09:30:00.250Z"}), 6u);
  EXPECT_EQ(count({"--from", "2026-01-06T09:30:00.251Z"}), 0u);
  auto bad = ep({"replay", "--archive", uri(), "--from", "yesterday"});
  EXPECT_EQ(bad.exit_code, 64);
  EXPECT_NE(bad.err.find("--from yesterday"), std::string::npos) << bad.err;
}

TEST_F(EpArchiveCli, VerifyCatchesAFlippedByte) {
  seed(4);
  auto ok = ep({"verify", "--archive", uri()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "");
  EXPECT_NE(ok.err.find("4 ok, 0 corrupt, 0 missing"), std::string::npos) << ok.err;
  // Flip one byte inside "raw" of one object.
  std::string victim;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/arch"))
    if (e.path().extension() == ".json") victim = e.path().string();
  std::string bytes = *fs::read_file(victim);
  size_t at = bytes.find("device_external_id");
  ASSERT_NE(at, std::string::npos);
  bytes[at] ^= 0x01;
  { std::ofstream(victim, std::ios::binary | std::ios::trunc) << bytes; }
  auto bad = ep({"verify", "--archive", uri()});
  EXPECT_EQ(bad.exit_code, 65);
  auto out = test::lines_of(bad.out);
  ASSERT_EQ(out.size(), 1u) << bad.out;
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(out[0], d));
  EXPECT_STREQ(d["status"].GetString(), "corrupt");
  EXPECT_EQ(std::string(d["uri"].GetString()), "file://" + victim);
  EXPECT_STREQ(d["reason"].GetString(), "sha256: does not match raw");
  // Replay refuses to emit the damaged batch, replays the rest, and exits 65.
  auto rep = ep({"replay", "--archive", uri()});
  EXPECT_EQ(rep.exit_code, 65);
  EXPECT_EQ(test::lines_of(rep.out).size(), 3u);
  EXPECT_NE(rep.err.find("corrupt, not replayed: sha256: does not match raw"), std::string::npos) << rep.err;
}

TEST_F(EpArchiveCli, VerifyReportsTruncatedAndMisplacedObjects) {
  seed(3);
  std::vector<std::string> files;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/arch"))
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::filesystem::resize_file(files[0], 40);
  // An object copied under another batch id: its content disagrees with its key.
  std::filesystem::copy_file(files[1], files[1].substr(0, files[1].rfind('/')) + "/0190a000-0000-7000-8000-999999999999.json");
  auto r = ep({"verify", "--archive", uri()});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.out.find("truncated"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("batch_id: \\\"0190a000-0000-7000-8000-000000000"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("2 ok, 2 corrupt"), std::string::npos) << r.err;
}

TEST_F(EpArchiveCli, VerifyExpectCatchesAMissingObject) {
  seed(5);
  std::string expect = dir_.path() + "/acked.ndjson";
  ASSERT_TRUE(fs::write_file_atomic(expect, written_));
  auto ok = ep({"verify", "--archive", uri(), "--expect", expect});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  auto out = test::lines_of(written_);
  rapidjson::Document d;
  ASSERT_TRUE(parse_json(out[2], d));
  std::string gone = std::string(d["archive"].GetString()).substr(7);
  ASSERT_TRUE(std::filesystem::remove(gone));
  auto bad = ep({"verify", "--archive", uri(), "--expect", expect});
  EXPECT_EQ(bad.exit_code, 65);
  EXPECT_NE(bad.out.find("\"status\":\"missing\""), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find(d["batch_id"].GetString()), std::string::npos);
  EXPECT_NE(bad.err.find("4 ok, 0 corrupt, 1 missing"), std::string::npos) << bad.err;
}

TEST_F(EpArchiveCli, OverwriteWithDifferentContentIsRefused) {
  std::string id = "0190a000-0000-7000-8000-000000000001";
  std::string first = batch_line("acme", "d", id, "2026-01-05T10:00:00Z", "{\"a\":1}") + "\n";
  ASSERT_EQ(ep({"--archive", uri()}, first).exit_code, 0);
  auto same = ep({"write", "--archive", uri()}, first);
  EXPECT_EQ(same.exit_code, 0) << same.err;  // a retry of the same batch is a no-op
  EXPECT_EQ(test::lines_of(same.out).size(), 1u);
  std::string other = batch_line("acme", "d", id, "2026-01-05T11:00:00Z", "{\"a\":2}") + "\n";
  auto r = ep({"--archive", uri()}, first + other);
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_EQ(test::lines_of(r.out).size(), 1u) << "the refused batch is not passed on";
  EXPECT_NE(r.err.find("ep-archive: stdin:2: file://"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("immutable"), std::string::npos) << r.err;
}

TEST_F(EpArchiveCli, BadLinesAreReportedWithLineNumbersAndTheRunGoesOn) {
  std::string good = batch_line("acme", "d", "0190a000-0000-7000-8000-000000000001", "2026-01-05T10:00:00Z", "{}");
  std::string tampered = batch_line("acme", "d", "0190a000-0000-7000-8000-000000000002", "2026-01-05T10:00:00Z", "{}");
  tampered.replace(tampered.find("\"raw\":\"{}\""), 10, "\"raw\":\"{ }\"");
  std::string in = "not json\n" + tampered + "\n{\"kind\":\"batch\",\"batch_id\":\"x\"}\n" +
                   "{\"kind\":\"point\",\"tenant\":\"acme\"}\n" + good + "\n";
  auto r = ep({"--archive", uri()}, in);
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("ep-archive: stdin:1: invalid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ep-archive: stdin:2: sha256: does not match raw"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ep-archive: stdin:3: raw: required"), std::string::npos) << r.err;
  auto out = test::lines_of(r.out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], "{\"kind\":\"point\",\"tenant\":\"acme\"}");  // other records pass through
  EXPECT_NE(out[1].find("\"archive\":"), std::string::npos);
  auto strict = ep({"--archive", uri(), "--strict"}, in);
  EXPECT_EQ(strict.exit_code, 65);
  EXPECT_EQ(strict.out, "");
}

TEST_F(EpArchiveCli, LsCountsObjectsPerTenantAndDay) {
  seed(12);
  auto r = ep({"ls", "--archive", uri()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = test::lines_of(r.out);
  ASSERT_EQ(out.size(), 4u) << r.out;
  EXPECT_TRUE(out[0].starts_with("{\"kind\":\"archive_day\",\"tenant\":\"acme\",\"day\":\"2026-01-05\",\"objects\":4,"))
      << out[0];
  EXPECT_TRUE(out[3].starts_with("{\"kind\":\"archive_day\",\"tenant\":\"beta\",\"day\":\"2026-01-06\",\"objects\":2,"))
      << out[3];
  auto objs = ep({"ls", "--archive", uri(), "--objects", "--tenant", "beta"});
  EXPECT_EQ(test::lines_of(objs.out).size(), 4u);
  EXPECT_NE(r.err.find("12 objects"), std::string::npos);
}

TEST_F(EpArchiveCli, PruneRemovesWholeDaysOlderThanTheCutoff) {
  std::string in = old_and_recent_days();
  ASSERT_EQ(ep({"--archive", uri()}, in).exit_code, 0);
  // A leftover temp file of an interrupted write, two hours old.
  std::string tmp = dir_.path() + "/arch/acme/2020/01/05/.tmp-x-abc";
  ASSERT_TRUE(fs::write_file_atomic(tmp, "partial"));
  std::filesystem::last_write_time(tmp, std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
  auto dry = ep({"prune", "--archive", uri(), "--older-than", "30d", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(test::lines_of(dry.out).size(), 2u);
  auto r = ep({"prune", "--archive", uri(), "--older-than", "30d"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::lines_of(r.out).size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/arch/acme/2020"));
  auto left = ep({"replay", "--archive", uri()});
  EXPECT_EQ(test::lines_of(left.out).size(), 1u);
  EXPECT_EQ(ep({"prune", "--archive", uri()}).exit_code, 64) << "--older-than is required";
}

TEST_F(EpArchiveCli, UsageErrors) {
  auto help = ep({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Example:"), std::string::npos);
  EXPECT_EQ(ep({}).exit_code, 64);  // no --archive
  auto typo = ep({"verfy", "--archive", uri()});
  EXPECT_EQ(typo.exit_code, 64);
  EXPECT_NE(typo.err.find("did you mean 'verify'"), std::string::npos) << typo.err;
  auto missing = ep({"replay", "--archive", uri() + "/nope"});
  EXPECT_EQ(missing.exit_code, 74);
  EXPECT_NE(missing.err.find("no such archive"), std::string::npos) << missing.err;
  EXPECT_EQ(ep({"ls", "--archive", "ftp://x"}).exit_code, 64);
}

TEST_F(EpArchiveCli, BrokenPipeEndsQuietly) {
  seed(50);
  auto r = test::run({"/bin/sh", "-c", kBin + " replay --archive " + uri() + " | head -1 >/dev/null"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err.find("Broken pipe"), std::string::npos) << r.err;
}

// Format 2 (segment log), what ep-archive write creates by default.
class EpArchiveCli2 : public EpArchiveCli {
 protected:
  EpArchiveCli2() { format_.clear(); }
  std::vector<std::string> files_with(const std::string& ext) {
    std::vector<std::string> out;
    for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/arch"))
      if (e.path().extension() == ext) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(EpArchiveCli2, WriteAppendsToSegmentsAndReplaysIdenticalRaw) {
  auto lines = seed(30);
  EXPECT_EQ(*fs::read_file(dir_.path() + "/arch/FORMAT"), "edgepulse-archive 2\n");
  EXPECT_EQ(files_with(".json").size(), 0u);
  EXPECT_EQ(files_with(".wal").size(), 4u) << "one active segment per tenant and day";
  auto out = test::lines_of(written_);
  ASSERT_EQ(out.size(), 30u);
  rapidjson::Document w;
  ASSERT_TRUE(parse_json(out[0], w));
  EXPECT_EQ(std::string(w["archive"].GetString()), uri() + "/beta/2026/01/05#0190a000-0000-7000-8000-000000000000");
  auto r = ep({"replay", "--archive", uri()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rep = test::lines_of(r.out);
  ASSERT_EQ(rep.size(), 30u);
  std::map<std::string, std::string> raw_of;
  for (auto& l : lines) {
    rapidjson::Document d;
    ASSERT_TRUE(parse_json(l, d));
    raw_of[d["batch_id"].GetString()] = std::string(d["raw"].GetString(), d["raw"].GetStringLength());
  }
  for (auto& l : rep) {
    rapidjson::Document d;
    ASSERT_TRUE(parse_json(l, d));
    EXPECT_STREQ(d["source"].GetString(), "replay");
    EXPECT_EQ(std::string(d["raw"].GetString(), d["raw"].GetStringLength()), raw_of[d["batch_id"].GetString()]);
    EXPECT_TRUE(d.HasMember("x_extra"));
  }
  auto one = ep({"replay", "--archive", uri(), "--batch-id", "0190a000-0000-7000-8000-000000000007"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(test::lines_of(one.out).size(), 1u);
  EXPECT_NE(one.out.find("0190a000-0000-7000-8000-000000000007"), std::string::npos);
  auto ls = ep({"ls", "--archive", uri()});
  EXPECT_NE(ls.err.find("30 objects"), std::string::npos) << ls.err;
  ASSERT_TRUE(fs::write_file_atomic(dir_.path() + "/acked", written_));
  auto ok = ep({"verify", "--archive", uri(), "--expect", dir_.path() + "/acked"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err << ok.out;
  EXPECT_NE(ok.err.find("30 ok, 0 corrupt, 0 missing"), std::string::npos) << ok.err;
}

TEST_F(EpArchiveCli2, GetPrintsTheStoredRecord) {
  auto lines = seed(6);
  auto r = ep({"get", "--archive", uri(), "0190a000-0000-7000-8000-000000000004"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, lines[4] + "\n");
  auto none = ep({"get", "--archive", uri(), "0190a000-0000-7000-8000-000000000099"});
  EXPECT_EQ(none.exit_code, 65);
  EXPECT_NE(none.err.find("not in"), std::string::npos) << none.err;
}

// A byte changed in a stored record — points, device, anything, not only raw — is caught.
TEST_F(EpArchiveCli2, VerifyAndReplayCatchAChangeOutsideRaw) {
  seed(4);
  std::string victim;
  for (auto& f : files_with(".wal"))
    if (fs::read_file(f)->find("\"device\":\"dev1\"") != std::string::npos) victim = f;
  ASSERT_FALSE(victim.empty());
  std::string bytes = *fs::read_file(victim);
  size_t at = bytes.find("\"device\":\"dev1\"");
  bytes[at + 13] = '7';  // dev1 -> dev7: the sha256 of raw still matches
  ASSERT_TRUE(fs::write_file_atomic(victim, bytes));
  auto bad = ep({"verify", "--archive", uri()});
  EXPECT_EQ(bad.exit_code, 65) << bad.err;
  auto out = test::lines_of(bad.out);
  ASSERT_EQ(out.size(), 1u) << bad.out;
  EXPECT_NE(out[0].find("\"status\":\"corrupt\""), std::string::npos) << out[0];
  EXPECT_NE(out[0].find("checksum"), std::string::npos) << out[0];
  auto rep = ep({"replay", "--archive", uri()});
  EXPECT_EQ(rep.exit_code, 65);
  EXPECT_EQ(test::lines_of(rep.out).size(), 3u);
  EXPECT_EQ(rep.out.find("dev7"), std::string::npos) << "the altered record was replayed";
  EXPECT_NE(rep.err.find("corrupt, not replayed"), std::string::npos) << rep.err;
}

TEST_F(EpArchiveCli2, PruneRemovesSegmentsOfOldDays) {
  std::string in = old_and_recent_days();
  ASSERT_EQ(ep({"--archive", uri()}, in).exit_code, 0);
  auto dry = ep({"prune", "--archive", uri(), "--older-than", "30d", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(test::lines_of(dry.out).size(), 2u) << dry.out;
  auto r = ep({"prune", "--archive", uri(), "--older-than", "30d"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/arch/acme/2020"));
  auto left = ep({"replay", "--archive", uri()});
  EXPECT_EQ(test::lines_of(left.out).size(), 1u);
}

TEST_F(EpArchiveCli2, CompactRewritesFormat1AndReplaysIdentically) {
  format_ = "1";
  seed(40);
  format_.clear();
  std::string into = "file://" + dir_.path() + "/v2";
  auto c = ep({"compact", "--archive", uri(), "--into", into});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("\"batches\":40"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("\"replay_identical\":true"), std::string::npos) << c.out;
  EXPECT_EQ(*fs::read_file(dir_.path() + "/v2/FORMAT"), "edgepulse-archive 2\n");
  auto a = ep({"replay", "--archive", uri()});
  auto b = ep({"replay", "--archive", into});
  ASSERT_EQ(a.exit_code, 0);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(test::lines_of(b.out).size(), 40u);
  EXPECT_EQ(a.out, b.out) << "replay differs after compact";
  auto vb = ep({"verify", "--archive", into});
  EXPECT_EQ(vb.exit_code, 0) << vb.err;
  auto again = ep({"compact", "--archive", uri(), "--into", into});
  EXPECT_EQ(again.exit_code, 64) << "the target must be empty";
}

TEST(EpArchiveMan, EveryHelpOptionIsInTheManPage) {
  std::string man = *fs::read_file(std::string(EP_SOURCE_DIR) + "/man/ep-archive.1");
  int n = 0;
  auto missing = test::options_missing_from_man(test::run({kBin, "--help"}).out, man, &n);
  EXPECT_TRUE(missing.empty()) << "not in man/ep-archive.1: " << ::testing::PrintToString(missing);
  EXPECT_GT(n, 10);
  for (const char* sub : {"write", "replay", "verify", "ls", "prune", "\\-\\-device", "\\-\\-expect",
                          "\\-\\-objects", "\\-\\-older\\-than", "\\-\\-dry\\-run"})
    EXPECT_NE(man.find(sub), std::string::npos) << sub;
}

// ep-archive against a real S3-compatible server, and 20 batches of two tenants on two
// days (2026-01-05 and 2026-01-07) to write.
class EpArchiveS3 : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server.ok()) << server.error();
    for (int i = 0; i < 20; ++i) {
      char id[64];
      std::snprintf(id, sizeof id, "0190a000-0000-7000-8000-%012d", i);
      raws.push_back(raw_body(i));
      in += batch_line(i % 2 ? "acme" : "beta", "d", id, i < 10 ? "2026-01-05T10:00:00Z" : "2026-01-07T10:00:00Z",
                       raws.back()) + "\n";
    }
  }
  test::RunResult ep(std::vector<std::string> args, const std::string& input = {}) const {
    args.insert(args.begin(), kBin);
    args.push_back("--s3-endpoint");
    args.push_back(server.endpoint());
    return test::run(args, input, env);
  }
  // replay of acme from 2026-01-06: its 5 batches of 2026-01-07, raw bytes as written.
  void expect_acme_replay(const std::string& uri) const {
    auto rep = ep({"replay", "--archive", uri, "--tenant", "acme", "--from", "2026-01-06"});
    ASSERT_EQ(rep.exit_code, 0) << rep.err;
    auto rl = test::lines_of(rep.out);
    ASSERT_EQ(rl.size(), 5u);
    for (auto& l : rl) {
      rapidjson::Document d;
      ASSERT_TRUE(parse_json(l, d));
      std::string raw(d["raw"].GetString(), d["raw"].GetStringLength());
      int i = std::stoi(std::string(d["batch_id"].GetString()).substr(24));
      EXPECT_EQ(raw, raws[i]);
      EXPECT_STREQ(d["source"].GetString(), "replay");
    }
  }
  test::S3rver server;
  std::vector<std::string> env = {"AWS_ACCESS_KEY_ID=S3RVER", "AWS_SECRET_ACCESS_KEY=S3RVER",
                                  "AWS_REGION=us-east-1"};
  std::string in;
  std::vector<std::string> raws;
};

// The same commands against a real S3-compatible server.
TEST_F(EpArchiveS3, WriteLsReplayVerify) {
  std::string uri = std::string("s3://") + test::S3rver::kBucket + "/archive";
  auto w = ep({"--archive", uri, "--group", "8"}, in);
  ASSERT_EQ(w.exit_code, 0) << w.err;
  auto out = test::lines_of(w.out);
  ASSERT_EQ(out.size(), 20u);
  EXPECT_NE(out[0].find("\"archive\":\"" + uri + "/beta/2026/01/05/"), std::string::npos) << out[0];
  auto ls = ep({"ls", "--archive", uri});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(test::lines_of(ls.out).size(), 4u) << ls.out;
  expect_acme_replay(uri);
  test::TempDir dir;
  ASSERT_TRUE(fs::write_file_atomic(dir.path() + "/acked", w.out));
  auto v = ep({"verify", "--archive", uri});
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
  EXPECT_NE(v.err.find("20 ok"), std::string::npos) << v.err;
  auto ve = ep({"verify", "--archive", uri, "--expect", dir.path() + "/acked"});
  EXPECT_EQ(ve.exit_code, 0) << ve.err << ve.out;
  // Overwrite refused on S3 too.
  std::string clash = batch_line("beta", "d", "0190a000-0000-7000-8000-000000000000", "2026-01-05T10:00:00Z", "{}") + "\n";
  auto c = ep({"--archive", uri}, clash);
  EXPECT_EQ(c.exit_code, 65);
  EXPECT_NE(c.err.find("immutable"), std::string::npos) << c.err;
  // Wrong endpoint: unavailable (69).
  auto down = test::run({kBin, "ls", "--archive", uri, "--s3-endpoint", "http://127.0.0.1:1"}, {}, env);
  EXPECT_EQ(down.exit_code, 69) << down.err;
}

// Format 2 on S3: write (through a spool, uploaded before write ends), then ls, replay,
// get, verify and prune read the sealed segments in the bucket.
TEST_F(EpArchiveS3, Format2WriteThenLsReplayGetVerifyPrune) {
  test::TempDir dir;
  std::string uri = std::string("s3://") + test::S3rver::kBucket + "/v2";
  size_t puts_before = server.stored_puts();
  auto w = ep({"--archive", uri, "--format", "2", "--archive-spool", dir.path() + "/spool", "--group", "8"}, in);
  ASSERT_EQ(w.exit_code, 0) << w.err;
  ASSERT_EQ(test::lines_of(w.out).size(), 20u);
  // FORMAT and one object per tenant and day (4 segments), nothing left in the spool.
  EXPECT_EQ(server.stored_puts() - puts_before, 5u);
  EXPECT_EQ(test::run({"/usr/bin/find", dir.path() + "/spool", "-name", "*.seg"}).out, "");
  auto ls = ep({"ls", "--archive", uri});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(test::lines_of(ls.out).size(), 4u) << ls.out;
  // Batches received at different times of one day are one line of ls (one day).
  std::string more;
  for (int i = 20; i < 23; ++i) {
    char id[64];
    std::snprintf(id, sizeof id, "0190a000-0000-7000-8000-%012d", i);
    more += batch_line("gamma", "d", id, "2026-01-07T1" + std::to_string(i - 19) + ":00:00Z", raw_body(i)) + "\n";
  }
  ASSERT_EQ(ep({"--archive", uri, "--archive-spool", dir.path() + "/spool"}, more).exit_code, 0);
  auto ls2 = ep({"ls", "--archive", uri, "--tenant", "gamma"});
  ASSERT_EQ(ls2.exit_code, 0) << ls2.err;
  auto gamma_days = test::lines_of(ls2.out);
  ASSERT_EQ(gamma_days.size(), 1u) << ls2.out;
  EXPECT_NE(gamma_days[0].find(R"("day":"2026-01-07","objects":3)"), std::string::npos) << gamma_days[0];
  auto objs = ep({"ls", "--objects", "--archive", uri});
  ASSERT_EQ(objs.exit_code, 0) << objs.err;
  EXPECT_EQ(test::lines_of(objs.out).size(), 23u) << objs.out;
  expect_acme_replay(uri);
  auto get = ep({"get", "--archive", uri, "0190a000-0000-7000-8000-000000000013"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_NE(get.out.find(R"("batch_id":"0190a000-0000-7000-8000-000000000013")"), std::string::npos) << get.out;
  EXPECT_NE(ep({"get", "--archive", uri, "0190a000-0000-7000-8000-000000000099"}).exit_code, 0);
  test::TempDir acked_dir;
  ASSERT_TRUE(fs::write_file_atomic(acked_dir.path() + "/acked", w.out));
  auto v = ep({"verify", "--archive", uri, "--expect", acked_dir.path() + "/acked"});
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
  // Prune the days wholly older than a cutoff between 2026-01-06 12:00 and 2026-01-07 12:00.
  TimeNs t0 = *parse_rfc3339("2026-01-06T12:00:00Z");
  long days = static_cast<long>((SystemClock::instance().now() - t0) / (86400 * kNsPerSec));
  auto pr = ep({"prune", "--archive", uri, "--older-than", std::to_string(days) + "d"});
  ASSERT_EQ(pr.exit_code, 0) << pr.err;
  EXPECT_EQ(test::lines_of(pr.out).size(), 2u) << pr.out;  // the two segments of 2026-01-05
  auto after = ep({"replay", "--archive", uri});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(test::lines_of(after.out).size(), 13u);
  EXPECT_EQ(after.out.find(R"("received_at":"2026-01-05)"), std::string::npos) << after.out;
}

}  // namespace
}  // namespace ep

namespace ep {
namespace {

// SIGTERM in the middle of a stream: write drains its input to EOF, archives and
// passes on everything, exits 0. Synchronised on output, no sleeps.
TEST(EpArchiveSignals, SigtermDrainsTheInputToEof) {
  test::TempDir dir;
  int in[2], out[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  std::string uri = "file://" + dir.path() + "/arch";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::execl(kBin.c_str(), kBin.c_str(), "--archive", uri.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  auto send = [&](int i) {
    std::string l = batch_line("acme", "d", "0190a000-0000-7000-8000-00000000000" + std::to_string(i),
                               "2026-01-05T10:00:00Z", raw_body(i)) + "\n";
    ASSERT_EQ(::write(in[1], l.data(), l.size()), static_cast<ssize_t>(l.size()));
  };
  std::string got;
  auto read_line = [&] {
    char c;
    while (::read(out[0], &c, 1) == 1) {
      got.push_back(c);
      if (c == '\n') return;
    }
  };
  send(1);
  read_line();  // the first batch is archived and emitted: the process is running
  ASSERT_NE(got.find("\"archive\""), std::string::npos) << got;
  ::kill(pid, SIGTERM);
  send(2);
  send(3);
  ::close(in[1]);
  read_line();
  read_line();
  int st = 0;
  ::waitpid(pid, &st, 0);
  ::close(out[0]);
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << WTERMSIG(st);
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_EQ(test::lines_of(got).size(), 3u) << got;
  auto stored = test::run({kBin, "replay", "--archive", "file://" + dir.path() + "/arch"});
  EXPECT_EQ(stored.exit_code, 0) << stored.err;
  EXPECT_EQ(test::lines_of(stored.out).size(), 3u) << "every batch passed on is in the archive";
}

}  // namespace
}  // namespace ep
