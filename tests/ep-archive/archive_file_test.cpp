// The file:// archive backend through the ep::Archive interface (common/src/archive_file.cpp).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "ep/archive.h"
#include "ep/crypto.h"
#include "ep/fsutil.h"
#include "test_util.h"

namespace ep {
namespace {

class FileArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = Archive::open("file://" + dir_.path() + "/arch");
    ASSERT_TRUE(a) << a.status().message();
    archive_ = std::move(a).value();
  }
  std::string root() const { return dir_.path() + "/arch"; }
  std::vector<ArchiveObject> list_all(const ArchiveFilter& f = {}) {
    std::vector<ArchiveObject> out;
    Status s = archive_->list(f, [&](const ArchiveObject& o) {
      out.push_back(o);
      return true;
    });
    EXPECT_TRUE(s) << s.message();
    return out;
  }
  test::TempDir dir_;
  std::unique_ptr<Archive> archive_;
};

const TimeNs kDay5 = *parse_rfc3339("2026-01-05T10:00:00.123Z");
const TimeNs kDay6 = *parse_rfc3339("2026-01-06T00:00:00Z");

TEST_F(FileArchiveTest, RoundTripKeepsBytesAndUsesDayLayout) {
  std::string bytes = R"({"kind":"batch","batch_id":"b1","raw":"x\u0000\"y"})";
  auto uri = archive_->put({"acme", "b1", kDay5, bytes});
  ASSERT_TRUE(uri) << uri.status().message();
  EXPECT_EQ(*uri, "file://" + root() + "/acme/2026/01/05/b1.json");
  auto objs = list_all();
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(objs[0].key, "acme/2026/01/05/b1.json");
  EXPECT_EQ(objs[0].uri, *uri);
  EXPECT_EQ(objs[0].tenant, "acme");
  EXPECT_EQ(objs[0].batch_id, "b1");
  EXPECT_EQ(objs[0].received_at, *parse_rfc3339("2026-01-05T00:00:00Z"));
  EXPECT_EQ(objs[0].size, bytes.size() + 1);
  auto got = archive_->get(objs[0]);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, bytes + "\n");
  EXPECT_EQ(*fs::read_file(root() + "/FORMAT"), "edgepulse-archive 1\n");
  EXPECT_EQ(archive_->locate("acme", "b1", kDay5).uri, *uri);
}

TEST_F(FileArchiveTest, IdenticalSecondPutIsANoOp) {
  ASSERT_TRUE(archive_->put({"acme", "b1", kDay5, "{\"a\":1}"}));
  auto again = archive_->put({"acme", "b1", kDay5, "{\"a\":1}\n"});
  ASSERT_TRUE(again) << again.status().message();
  EXPECT_EQ(list_all().size(), 1u);
}

TEST_F(FileArchiveTest, OverwriteWithDifferentBytesIsRefused) {
  ASSERT_TRUE(archive_->put({"acme", "b1", kDay5, "{\"a\":1}"}));
  auto again = archive_->put({"acme", "b1", kDay5, "{\"a\":2}"});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.status().code(), Code::kConflict);
  EXPECT_NE(again.status().message().find("immutable"), std::string::npos);
  EXPECT_EQ(*fs::read_file(root() + "/acme/2026/01/05/b1.json"), "{\"a\":1}\n");
  EXPECT_EQ(test::count_files(root(), ".tmp-"), 0) << "temp file left behind";
}

TEST_F(FileArchiveTest, InvalidNamesAreRejectedPerPut) {
  std::vector<ArchivePut> puts = {
      {"../etc", "b1", kDay5, "{}"},     {"a/b", "b2", kDay5, "{}"},
      {"acme", "../../x", kDay5, "{}"},  {".hidden", "b3", kDay5, "{}"},
      {"acme", "ok1", kDay5, "{}"},      {"acme", "b4", kDay5, ""},
  };
  std::vector<Result<std::string>> out;
  ASSERT_TRUE(archive_->put_many(puts, out));
  ASSERT_EQ(out.size(), puts.size());
  for (size_t i = 0; i < puts.size(); ++i) {
    if (puts[i].batch_id == "ok1") {
      EXPECT_TRUE(out[i]) << out[i].status().message();
    } else {
      ASSERT_FALSE(out[i]) << i;
      EXPECT_EQ(out[i].status().code(), Code::kData) << out[i].status().message();
    }
  }
  EXPECT_NE(out[0].status().message().find("tenant:"), std::string::npos);
  EXPECT_NE(out[2].status().message().find("batch_id:"), std::string::npos);
  EXPECT_EQ(list_all().size(), 1u);
}

// Found by tests/fuzz/fuzz_archive_object.cpp: a batch received in 2262 was stored
// under a key that list() cannot parse, so it could never be replayed or pruned.
TEST_F(FileArchiveTest, ReceivedAfter2261IsRejected) {
  TimeNs last_day = *parse_rfc3339("2261-12-31T23:59:59Z");
  TimeNs too_late = *parse_rfc3339("2262-01-01T00:00:00Z");
  auto ok = archive_->put({"acme", "b1", last_day, "{}"});
  EXPECT_TRUE(ok) << ok.status().message();
  auto late = archive_->put({"acme", "b2", too_late, "{}"});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.status().code(), Code::kData);
  EXPECT_NE(late.status().message().find("received_at: after 2261"), std::string::npos)
      << late.status().message();
  EXPECT_EQ(list_all().size(), 1u);
}

TEST_F(FileArchiveTest, GroupReportsEachPutSeparately) {
  ASSERT_TRUE(archive_->put({"acme", "old", kDay5, "{\"v\":1}"}));
  std::vector<ArchivePut> puts = {
      {"acme", "n1", kDay5, "{\"n\":1}"},
      {"acme", "old", kDay5, "{\"v\":2}"},   // conflict
      {"beta", "n2", kDay6, "{\"n\":2}"},
      {"acme", "n1", kDay5, "{\"n\":1}"},    // duplicate inside the group: no-op
      {"acme", "n3", kDay5, "{\"n\":3}"},
      {"acme", "n3", kDay5, "{\"n\":4}"},    // duplicate inside the group, different
  };
  std::vector<Result<std::string>> out;
  ASSERT_TRUE(archive_->put_many(puts, out));
  EXPECT_TRUE(out[0]);
  EXPECT_EQ(out[1].status().code(), Code::kConflict);
  EXPECT_TRUE(out[2]);
  EXPECT_TRUE(out[3]);
  EXPECT_EQ(*out[3], *out[0]);
  EXPECT_TRUE(out[4]);
  EXPECT_EQ(out[5].status().code(), Code::kConflict);
  EXPECT_EQ(list_all().size(), 4u);
  EXPECT_EQ(test::count_files(root(), ".tmp-"), 0);
}

TEST_F(FileArchiveTest, ListFiltersByTenantAndDayInKeyOrder) {
  ASSERT_TRUE(archive_->put({"b", "id2", kDay6, "{}"}));
  ASSERT_TRUE(archive_->put({"a", "id1", kDay5, "{}"}));
  ASSERT_TRUE(archive_->put({"a-b", "id3", kDay5, "{}"}));
  ASSERT_TRUE(archive_->put({"a", "id0", kDay6, "{}"}));
  auto all = list_all();
  std::vector<std::string> keys;
  for (auto& o : all) keys.push_back(o.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a-b/2026/01/05/id3.json", "a/2026/01/05/id1.json",
                                            "a/2026/01/06/id0.json", "b/2026/01/06/id2.json"}));
  ArchiveFilter f;
  f.tenant = "a";
  EXPECT_EQ(list_all(f).size(), 2u);
  f.from = *parse_rfc3339("2026-01-06T12:00:00Z");  // any time on day 6 selects the day
  auto day6 = list_all(f);
  ASSERT_EQ(day6.size(), 1u);
  EXPECT_EQ(day6[0].batch_id, "id0");
  ArchiveFilter g;
  g.to = *parse_rfc3339("2026-01-05T23:59:59Z");
  EXPECT_EQ(list_all(g).size(), 2u);
  // Stop early.
  int seen = 0;
  ASSERT_TRUE(archive_->list({}, [&](const ArchiveObject&) { return ++seen < 2; }));
  EXPECT_EQ(seen, 2);
}

TEST_F(FileArchiveTest, ListSkipsForeignFiles) {
  ASSERT_TRUE(archive_->put({"acme", "b1", kDay5, "{}"}));
  ASSERT_TRUE(fs::write_file_atomic(root() + "/acme/2026/01/05/notes.txt", "x"));
  ASSERT_TRUE(fs::write_file_atomic(root() + "/acme/2026/01/05/.tmp-b2-abc", "x"));
  ASSERT_TRUE(fs::write_file_atomic(root() + "/README", "x"));
  ASSERT_TRUE(fs::make_dirs(root() + "/acme/junk/01/05"));
  EXPECT_EQ(list_all().size(), 1u);
}

TEST_F(FileArchiveTest, RemoveDeletesObjectAndEmptyDirectories) {
  ASSERT_TRUE(archive_->put({"acme", "b1", kDay5, "{}"}));
  ASSERT_TRUE(archive_->put({"acme", "b2", kDay6, "{}"}));
  auto objs = list_all();
  ASSERT_EQ(objs.size(), 2u);
  ASSERT_TRUE(archive_->remove(objs[0]));
  EXPECT_FALSE(std::filesystem::exists(root() + "/acme/2026/01/05"));
  EXPECT_TRUE(std::filesystem::exists(root() + "/acme/2026/01"));
  auto gone = archive_->get(objs[0]);
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
  EXPECT_EQ(archive_->remove(objs[0]).code(), Code::kNotFound);
  ASSERT_TRUE(archive_->remove(objs[1]));
  EXPECT_FALSE(std::filesystem::exists(root() + "/acme"));
  EXPECT_TRUE(std::filesystem::exists(root() + "/FORMAT"));
  // A pruned day directory is recreated by the next put.
  ASSERT_TRUE(archive_->put({"acme", "b3", kDay5, "{}"}));
}

TEST_F(FileArchiveTest, ConcurrentPutManyFromSeveralThreads) {
  constexpr int kThreads = 4, kGroups = 40, kPerGroup = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int g = 0; g < kGroups; ++g) {
        std::vector<std::string> bodies;
        std::vector<ArchivePut> puts;
        for (int i = 0; i < kPerGroup; ++i) {
          // Every thread also writes the shared ids "s<g>-<i>" with identical bytes:
          // concurrent identical writes must all succeed, exactly one object each.
          bool shared = i % 2 == 0;
          std::string id = shared ? "s" + std::to_string(g) + "-" + std::to_string(i)
                                  : "t" + std::to_string(t) + "-" + std::to_string(g) + "-" +
                                        std::to_string(i);
          bodies.push_back("{\"id\":\"" + id + "\"}");
        }
        for (int i = 0; i < kPerGroup; ++i) {
          std::string id = bodies[i].substr(7, bodies[i].size() - 9);
          puts.push_back({t % 2 ? "acme" : "beta", id, i % 3 ? kDay5 : kDay6, bodies[i]});
          if (i % 2 == 0) puts.back().tenant = "shared";
        }
        std::vector<Result<std::string>> out;
        if (!archive_->put_many(puts, out)) failures++;
        for (auto& r : out)
          if (!r) {
            failures++;
            ADD_FAILURE() << r.status().message();
          }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto objs = list_all();
  const size_t shared = kGroups * kPerGroup / 2;
  const size_t own = kThreads * kGroups * kPerGroup / 2;
  EXPECT_EQ(objs.size(), shared + own);
  for (auto& o : objs) {
    auto body = archive_->get(o);
    ASSERT_TRUE(body);
    EXPECT_EQ(*body, "{\"id\":\"" + o.batch_id + "\"}\n");
  }
  EXPECT_EQ(test::count_files(root(), ".tmp-"), 0);
}

TEST_F(FileArchiveTest, UnwritableDirectoryFailsEveryPutOfTheGroupWithIoError) {
  if (::geteuid() == 0) {
    // root ignores permissions; use a file where the tenant directory should be.
    ASSERT_TRUE(fs::write_file_atomic(root() + "/acme", "not a directory"));
  } else {
    ASSERT_EQ(::chmod(root().c_str(), 0555), 0);
  }
  std::vector<ArchivePut> puts = {{"acme", "b1", kDay5, "{}"}, {"acme", "b2", kDay5, "{}"}};
  std::vector<Result<std::string>> out;
  ASSERT_TRUE(archive_->put_many(puts, out));
  for (auto& r : out) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status().code(), Code::kIo) << r.status().message();
  }
  ::chmod(root().c_str(), 0755);
}

TEST(FileArchiveOpen, ReadersDoNotCreateAMissingArchive) {
  test::TempDir dir;
  ArchiveOptions ro;
  ro.create = false;
  auto a = Archive::open("file://" + dir.path() + "/nope", ro);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.status().code(), Code::kIo);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/nope"));
}

TEST(FileArchiveOpen, BadUrisAreUsageErrors) {
  EXPECT_EQ(Archive::open("file://relative/path").status().code(), Code::kUsage);
  EXPECT_EQ(Archive::open("ftp://x/y").status().code(), Code::kUsage);
  EXPECT_EQ(Archive::open("s3:///prefix").status().code(), Code::kUsage);
}

TEST(FileArchiveOpen, UnknownFormatVersionIsRefused) {
  test::TempDir dir;
  ASSERT_TRUE(fs::make_dirs(dir.path() + "/a"));
  ASSERT_TRUE(fs::write_file_atomic(dir.path() + "/a/FORMAT", "edgepulse-archive 9\n"));
  auto a = Archive::open("file://" + dir.path() + "/a");
  ASSERT_FALSE(a);
  EXPECT_NE(a.status().message().find("unsupported archive format"), std::string::npos);
}

}  // namespace
}  // namespace ep
