// Archive format 2 (common/src/segment_log.cpp, archive_segment.cpp) through ep::Archive
// on real files: round trip, immutability, group commit from many threads, torn tails cut
// at every offset, a byte flipped at every position of active and sealed segments.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "ep/archive.h"
#include "ep/fsutil.h"
#include "ep/segment_log.h"
#include "test_util.h"

namespace ep {
namespace {

namespace sfs = std::filesystem;
const TimeNs kDay5 = *parse_rfc3339("2026-01-05T10:00:00.123Z");
const TimeNs kDay6 = *parse_rfc3339("2026-01-06T08:00:00Z");

std::string line_of(const std::string& id, int n = 0) {
  return R"({"kind":"batch","batch_id":")" + id + R"(","tenant":"acme","n":)" + std::to_string(n) +
         R"(,"raw":"x\"y"})";
}

// What a scan saw: good objects (id -> bytes, in order) and problems.
struct Seen {
  std::vector<std::pair<std::string, std::string>> objects;
  std::vector<std::string> problems;
  std::vector<std::string> problem_ids;
};

class SegmentArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open(ArchiveOptions o = {}) {
    archive_.reset();
    o.create_format = 2;
    opts_ = o;
    auto a = Archive::open("file://" + root(), o);
    ASSERT_TRUE(a) << a.status().message();
    archive_ = std::move(a).value();
  }
  std::string root() const { return dir_.path() + "/arch"; }
  std::string day_dir() const { return root() + "/acme/2026/01/05"; }
  void put_ok(const std::string& id, TimeNs t = kDay5, const std::string& tenant = "acme") {
    auto r = archive_->put({tenant, id, t, line_of(id)});
    ASSERT_TRUE(r) << r.status().message();
  }
  Seen scan(const ArchiveFilter& f = {}) {
    Seen s;
    Status st = archive_->scan(f, [&](const ArchiveObject& o, std::string_view bytes, const Status& p) {
      if (p.is_ok()) {
        s.objects.emplace_back(o.batch_id, std::string(bytes));
      } else {
        s.problems.push_back(o.uri + ": " + p.message());
        s.problem_ids.push_back(o.batch_id);
      }
      return true;
    });
    EXPECT_TRUE(st) << st.message();
    return s;
  }
  // Segment files of the acme day with the extension.
  std::vector<std::string> files(const std::string& ext) {
    std::vector<std::string> out;
    for (auto& e : sfs::directory_iterator(day_dir()))
      if (e.path().extension() == ext) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  test::TempDir dir_;
  ArchiveOptions opts_;
  std::unique_ptr<Archive> archive_;
};

TEST_F(SegmentArchiveTest, RoundTripAppendsToOneActiveSegmentPerTenantAndDay) {
  for (int i = 0; i < 50; ++i) put_ok("b" + std::to_string(100 + i));
  put_ok("c1", kDay6);
  put_ok("t1", kDay5, "other");
  EXPECT_EQ(*fs::read_file(root() + "/FORMAT"), "edgepulse-archive 2\n");
  EXPECT_EQ(archive_->format(), 2);
  EXPECT_EQ(files(".wal").size(), 1u);
  EXPECT_EQ(test::count_files(root(), ".json"), 0);
  Seen s = scan({"acme"});
  ASSERT_EQ(s.objects.size(), 51u);
  EXPECT_TRUE(s.problems.empty());
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(s.objects[static_cast<size_t>(i)].first, "b" + std::to_string(100 + i));
    EXPECT_EQ(s.objects[static_cast<size_t>(i)].second, line_of("b" + std::to_string(100 + i)) + "\n");
  }
  EXPECT_EQ(s.objects[50].first, "c1");
  // get by the day locator, and list agrees with scan.
  auto got = archive_->get(archive_->locate("acme", "b120", kDay5));
  ASSERT_TRUE(got) << got.status().message();
  EXPECT_EQ(*got, line_of("b120") + "\n");
  EXPECT_EQ(archive_->get(archive_->locate("acme", "nope", kDay5)).status().code(), Code::kNotFound);
  size_t listed = 0;
  ASSERT_TRUE(archive_->list({}, [&](const ArchiveObject&) { return ++listed, true; }));
  EXPECT_EQ(listed, 52u);
}

TEST_F(SegmentArchiveTest, ImmutableAcrossReopen) {
  put_ok("b1");
  ASSERT_TRUE(archive_->put({"acme", "b1", kDay5, line_of("b1") + "\n"})) << "identical re-put is a no-op";
  auto diff = archive_->put({"acme", "b1", kDay5, line_of("b1", 2)});
  ASSERT_FALSE(diff);
  EXPECT_EQ(diff.status().code(), Code::kConflict);
  open();  // a new process: the ids come back from the segment
  ASSERT_TRUE(archive_->put({"acme", "b1", kDay5, line_of("b1")}));
  EXPECT_EQ(archive_->put({"acme", "b1", kDay5, line_of("b1", 3)}).status().code(), Code::kConflict);
  ASSERT_TRUE(archive_->seal());
  open();  // and from a sealed segment's index
  ASSERT_TRUE(archive_->put({"acme", "b1", kDay5, line_of("b1")}));
  EXPECT_EQ(archive_->put({"acme", "b1", kDay5, line_of("b1", 4)}).status().code(), Code::kConflict);
  EXPECT_EQ(scan().objects.size(), 1u);
}

TEST_F(SegmentArchiveTest, ConcurrentGroupsAreAllStoredOnce) {
  constexpr int kThreads = 8, kGroups = 40, kPer = 5;
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int g = 0; g < kGroups; ++g) {
        std::vector<std::string> ids, lines;
        for (int k = 0; k < kPer; ++k) ids.push_back("t" + std::to_string(t) + "g" + std::to_string(g) + "k" + std::to_string(k));
        // Every thread also puts one batch of thread 0's, identical: stored once.
        ids.push_back("t0g0k0");
        for (auto& id : ids) lines.push_back(line_of(id));
        std::vector<ArchivePut> puts;
        for (size_t k = 0; k < ids.size(); ++k) puts.push_back({"acme", ids[k], kDay5, lines[k]});
        std::vector<Result<std::string>> out;
        if (!archive_->put_many(puts, out)) failures++;
        for (auto& r : out)
          if (!r && failures++ == 0) ADD_FAILURE() << r.status().message();
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  Seen s = scan();
  EXPECT_EQ(s.objects.size(), static_cast<size_t>(kThreads * kGroups * kPer));
  std::set<std::string> ids;
  for (auto& [id, bytes] : s.objects) EXPECT_TRUE(ids.insert(id).second) << id << " stored twice";
  EXPECT_EQ(files(".wal").size(), 1u);
}

TEST_F(SegmentArchiveTest, RollsBySizeAndSealsWithIndex) {
  ArchiveOptions o;
  o.segment_bytes = 4096;
  o.chunk_bytes = 1024;
  open(o);
  for (int i = 0; i < 200; ++i) put_ok("b" + std::to_string(1000 + i));
  ASSERT_TRUE(archive_->seal());
  auto sealed = files(".seg");
  EXPECT_GE(sealed.size(), 5u);
  EXPECT_TRUE(files(".wal").size() <= 1u);
  std::uint64_t indexed = 0;
  for (auto& f : sealed) {
    auto idx = seglog::read_index(f);
    ASSERT_TRUE(idx) << f << ": " << idx.status().message();
    indexed += idx->size();
  }
  EXPECT_EQ(indexed, 200u);
  Seen s = scan();
  ASSERT_EQ(s.objects.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(s.objects[static_cast<size_t>(i)].second, line_of("b" + std::to_string(1000 + i)) + "\n");
  EXPECT_TRUE(s.problems.empty());
  // Appending goes on after sealing.
  put_ok("later");
  EXPECT_EQ(scan().objects.size(), 201u);
}

TEST_F(SegmentArchiveTest, RollsByAgeInTheBackground) {
  ArchiveOptions o;
  o.segment_age = 50 * 1'000'000;  // 50 ms
  open(o);
  put_ok("b1");
  // Bounded poll: the sealer thread looks at least every segment age.
  for (int i = 0; i < 400 && files(".seg").empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(files(".seg").size(), 1u);
  Seen s = scan();
  ASSERT_EQ(s.objects.size(), 1u);
}

// An active segment is extended with zeros ahead of its records by the background
// preallocator, never over a record: after many appends every record reads back, the
// file holds at least one preallocation of zeros after them, and a new writer can take
// the segment over as soon as the first is gone (the lock is not held by a pending
// extension).
TEST(SegmentActive, PreallocatesInTheBackgroundAheadOfTheRecords) {
  test::TempDir dir;
  std::string path = dir.path() + "/seg-00000000000000000001-t.wal";
  const std::uint64_t prealloc = 64 << 10;
  auto a = seglog::Active::create(path, 1, prealloc);
  ASSERT_TRUE(a) << a.status().message();
  std::string rec;
  std::uint64_t end = 0;
  for (int i = 0; i < 300; ++i) {
    rec.clear();
    std::string id = "b" + std::to_string(i);
    std::string line = line_of(id, i) + std::string(static_cast<size_t>(i % 7) * 300, 'x');
    seglog::encode_batch(rec, {"acme", id, kDay5, line});
    ASSERT_TRUE((*a)->append(rec, end));
  }
  ASSERT_TRUE((*a)->sync_to(end));
  (*a)->wait_preallocated();
  EXPECT_EQ((*a)->size(), end);
  EXPECT_GE((*a)->allocated(), end + prealloc);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), (*a)->allocated());
  auto data = fs::read_file(path);
  ASSERT_TRUE(data);
  EXPECT_EQ(data->find_first_not_of('\0', end), std::string::npos) << "only zeros after the records";
  int good = 0, bad = 0;
  seglog::scan_bytes(*data, seglog::Visitor{[&](const seglog::Found& f) {
                                              EXPECT_EQ(f.batch.batch_id, "b" + std::to_string(good));
                                              return ++good, true;
                                            },
                                            [&](const seglog::Problem&) { return ++bad, true; }});
  EXPECT_EQ(good, 300);
  EXPECT_EQ(bad, 0);
  // Appends queue a new extension; the segment goes away with it pending.
  ASSERT_TRUE((*a)->append(rec, end));
  a->reset();
  seglog::Recovery r;
  auto b = seglog::Active::adopt(path, 1, r, nullptr, prealloc);
  ASSERT_TRUE(b) << b.status().message();
  EXPECT_TRUE(*b) << "the segment is still locked after its writer went away";
}

// The end of the records in an active segment (the file goes on with preallocated zeros).
size_t records_end(const std::string& wal) { return fs::read_file(wal)->find_last_not_of('\0') + 1; }

// The active segment cut at every offset inside its last record — truncated there, or
// with the rest of the record zero as in a preallocated file: reopening keeps every
// complete record, moves the torn bytes aside, and appending continues after them.
TEST_F(SegmentArchiveTest, TornTailAtEveryOffsetIsCutAndReported) {
  ArchiveOptions o;
  o.preallocate_bytes = 4096;  // hundreds of reopenings: keep the files small
  open(o);
  put_ok("b1");
  put_ok("b2");
  std::string wal = files(".wal").at(0);
  size_t before = records_end(wal);
  put_ok("b3");
  auto full = *fs::read_file(wal);
  size_t end = records_end(wal);
  archive_.reset();  // "crash": nothing sealed, the lock released
  ASSERT_GT(end, before);
  for (size_t cut = before; cut < end; ++cut) {
    for (bool zeroed : {false, true}) {
      SCOPED_TRACE("cut at " + std::to_string(cut) + (zeroed ? ", zeroed" : ", truncated"));
      sfs::remove_all(day_dir() + "/");
      sfs::create_directories(day_dir());
      std::string damaged = full.substr(0, cut);
      if (zeroed) damaged.resize(end + 4096, '\0');  // the rest of the record and some preallocation
      ASSERT_TRUE(fs::write_file_atomic(wal, damaged));
      std::string torn_bytes = full.substr(before, cut - before);
      // Moved aside: the torn record's bytes up to its last non-zero one.
      if (cut > before) torn_bytes.erase(torn_bytes.find_last_not_of('\0') + 1);
      open(o);
      // Before any writer recovers it, a reader sees the two complete records and a torn tail.
      Seen pre = scan();
      ASSERT_EQ(pre.objects.size(), 2u);
      ASSERT_EQ(pre.problems.size(), cut > before ? 1u : 0u);
      if (cut > before) {
        EXPECT_NE(pre.problems[0].find("torn tail"), std::string::npos) << pre.problems[0];
      }
      put_ok("b4");  // the writer adopts the segment: recovery
      Seen s = scan();
      ASSERT_EQ(s.objects.size(), 3u);
      EXPECT_EQ(s.objects[0].first, "b1");
      EXPECT_EQ(s.objects[1].first, "b2");
      EXPECT_EQ(s.objects[2].first, "b4");
      EXPECT_TRUE(s.problems.empty()) << s.problems[0];
      EXPECT_EQ(files(".wal").size(), 1u) << "appending continued in the same segment";
      std::string torn = day_dir() + "/.torn-" + sfs::path(wal).filename().string() + "-" + std::to_string(before);
      if (cut > before) {
        auto moved = fs::read_file(torn);
        ASSERT_TRUE(moved) << "torn bytes not moved aside";
        EXPECT_EQ(*moved, torn_bytes);
      } else {
        EXPECT_FALSE(sfs::exists(torn));
      }
      archive_.reset();
    }
  }
}

// Every byte of an active segment flipped in turn: scan never passes on an altered
// record, reports a problem, and the records around it still come through.
TEST_F(SegmentArchiveTest, FlippedByteAnywhereInActiveSegmentIsCaught) {
  put_ok("b1");
  put_ok("b2");
  put_ok("b3");
  std::string wal = files(".wal").at(0);
  archive_.reset();
  auto good = *fs::read_file(wal);
  good.resize(records_end(wal));  // every byte of the records (not the zeros after them)
  std::map<std::string, std::string> originals{{"b1", line_of("b1") + "\n"}, {"b2", line_of("b2") + "\n"},
                                              {"b3", line_of("b3") + "\n"}};
  for (size_t pos = 0; pos < good.size(); ++pos) {
    SCOPED_TRACE("byte " + std::to_string(pos));
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x20);
    ASSERT_TRUE(fs::write_file_atomic(wal, bad));
    open();
    Seen s = scan();
    EXPECT_FALSE(s.problems.empty()) << "flip not reported";
    if (pos >= seglog::kActiveMagic.size()) {
      EXPECT_LT(s.objects.size(), 3u) << "the damaged record was passed on";
    }
    for (auto& [id, bytes] : s.objects) {
      ASSERT_TRUE(originals.count(id)) << "an altered batch id came through: " << id;
      EXPECT_EQ(bytes, originals[id]);
    }
    archive_.reset();
  }
}

TEST_F(SegmentArchiveTest, FlippedByteAnywhereInSealedSegmentIsCaught) {
  ArchiveOptions o;
  o.chunk_bytes = 200;  // several chunks
  open(o);
  std::map<std::string, std::string> originals;
  for (int i = 0; i < 6; ++i) {
    std::string id = "b" + std::to_string(i);
    put_ok(id);
    originals[id] = line_of(id) + "\n";
  }
  ASSERT_TRUE(archive_->seal());
  std::string seg = files(".seg").at(0);
  archive_.reset();
  for (auto& w : files(".wal")) sfs::remove(w);  // the empty new active
  auto good = *fs::read_file(seg);
  for (size_t pos = 0; pos < good.size(); ++pos) {
    SCOPED_TRACE("byte " + std::to_string(pos) + " of " + std::to_string(good.size()));
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
    ASSERT_TRUE(fs::write_file_atomic(seg, bad));
    open(o);
    Seen s = scan();
    EXPECT_FALSE(s.problems.empty()) << "flip not reported";
    for (auto& [id, bytes] : s.objects) {
      ASSERT_TRUE(originals.count(id)) << "an altered batch id came through: " << id;
      EXPECT_EQ(bytes, originals[id]);
    }
    archive_.reset();
  }
}

}  // namespace
}  // namespace ep
