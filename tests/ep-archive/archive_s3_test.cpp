// The s3:// archive backend against a real S3-compatible server (s3rver) on loopback,
// plus the ListObjectsV2 parser on crafted pages.
#include <atomic>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "../../common/src/archive_internal.h"
#include "ep/archive.h"
#include "ep/crypto.h"
#include "s3rver.h"

namespace ep {
namespace {

const TimeNs kDay5 = *parse_rfc3339("2026-01-05T10:00:00.123Z");
const TimeNs kDay6 = *parse_rfc3339("2026-01-06T08:00:00Z");

class S3ArchiveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new test::S3rver(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(server_->ok()) << server_->error(); }
  ArchiveOptions opts(bool create = true) const {
    ArchiveOptions o;
    o.s3_endpoint = server_->endpoint();
    o.s3_region = "us-east-1";
    o.access_key = o.secret_key = test::S3rver::kKey;
    o.create = create;
    o.s3_retries = 2;
    return o;
  }
  // A fresh prefix per test so tests do not see each other's objects.
  std::string uri() const {
    return std::string("s3://") + test::S3rver::kBucket + "/t/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  std::unique_ptr<Archive> open() {
    auto a = Archive::open(uri(), opts());
    EXPECT_TRUE(a) << a.status().message();
    return a ? std::move(a).value() : nullptr;
  }
  static std::vector<ArchiveObject> list_all(Archive& a, const ArchiveFilter& f = {}) {
    std::vector<ArchiveObject> out;
    Status s = a.list(f, [&](const ArchiveObject& o) {
      out.push_back(o);
      return true;
    });
    EXPECT_TRUE(s) << s.message();
    return out;
  }
  static test::S3rver* server_;
};
test::S3rver* S3ArchiveTest::server_ = nullptr;

TEST_F(S3ArchiveTest, PutListGetRoundTrip) {
  auto a = open();
  ASSERT_TRUE(a);
  std::string bytes = R"({"kind":"batch","raw":"a b\u00e9 \"q\""})";
  auto u = a->put({"acme:eu", "018f0000-0000-7000-8000-000000000001", kDay5, bytes});
  ASSERT_TRUE(u) << u.status().message();
  EXPECT_EQ(*u, uri() + "/acme:eu/2026/01/05/018f0000-0000-7000-8000-000000000001.json");
  auto objs = list_all(*a);
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(objs[0].uri, *u);
  EXPECT_EQ(objs[0].tenant, "acme:eu");
  EXPECT_EQ(objs[0].size, bytes.size() + 1);
  auto got = a->get(objs[0]);
  ASSERT_TRUE(got) << got.status().message();
  EXPECT_EQ(*got, bytes + "\n");
}

TEST_F(S3ArchiveTest, OverwriteRefusedIdenticalIsNoOp) {
  auto a = open();
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->put({"acme", "b1", kDay5, "{\"v\":1}"}));
  EXPECT_TRUE(a->put({"acme", "b1", kDay5, "{\"v\":1}"}));
  auto c = a->put({"acme", "b1", kDay5, "{\"v\":2}"});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.status().code(), Code::kConflict);
  auto objs = list_all(*a);
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(*a->get(objs[0]), "{\"v\":1}\n");
}

TEST_F(S3ArchiveTest, ListPaginatesAndFilters) {
  auto a = open();
  ASSERT_TRUE(a);
  // More than one ListObjectsV2 page (s3rver, like S3, returns at most 1000 keys).
  std::vector<std::string> bodies;
  std::vector<ArchivePut> puts;
  const int kN = 1105;
  bodies.reserve(kN);
  for (int i = 0; i < kN; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "id%05d", i);
    bodies.push_back(std::string("{\"i\":") + std::to_string(i) + "}");
    puts.push_back({i % 5 == 0 ? "beta" : "acme", id, i % 2 ? kDay5 : kDay6, bodies.back()});
  }
  std::vector<Result<std::string>> out;
  ASSERT_TRUE(a->put_many(puts, out));
  for (auto& r : out) ASSERT_TRUE(r) << r.status().message();
  auto all = list_all(*a);
  EXPECT_EQ(all.size(), static_cast<size_t>(kN));
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].key, all[i].key);
  ArchiveFilter f;
  f.tenant = "acme";
  f.from = *parse_rfc3339("2026-01-06T00:00:00Z");
  auto day6 = list_all(*a, f);
  size_t expect = 0;
  for (auto& p : puts) expect += p.tenant == "acme" && p.received_at == kDay6;
  EXPECT_EQ(day6.size(), expect);
  ArchiveFilter g;
  g.tenant = "acme";
  g.to = *parse_rfc3339("2026-01-05T23:00:00Z");
  EXPECT_EQ(list_all(*a, g).size(), static_cast<size_t>(kN * 4 / 5) - expect);
}

TEST_F(S3ArchiveTest, ConcurrentPutManyFromSeveralThreads) {
  auto a = open();
  ASSERT_TRUE(a);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      for (int g = 0; g < 5; ++g) {
        std::vector<std::string> ids, bodies;
        std::vector<ArchivePut> puts;
        for (int i = 0; i < 6; ++i) {
          ids.push_back("t" + std::to_string(t) + "g" + std::to_string(g) + "i" + std::to_string(i));
          bodies.push_back("{\"id\":\"" + ids.back() + "\"}");
        }
        for (int i = 0; i < 6; ++i) puts.push_back({"acme", ids[i], kDay5, bodies[i]});
        std::vector<Result<std::string>> out;
        if (!a->put_many(puts, out)) failures++;
        for (auto& r : out) failures += !r;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(list_all(*a).size(), 90u);
}

TEST_F(S3ArchiveTest, RemoveDeletesObject) {
  auto a = open();
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->put({"acme", "b1", kDay5, "{}"}));
  auto objs = list_all(*a);
  ASSERT_EQ(objs.size(), 1u);
  ASSERT_TRUE(a->remove(objs[0]));
  EXPECT_TRUE(list_all(*a).empty());
  EXPECT_EQ(a->get(objs[0]).status().code(), Code::kNotFound);
}

// Format 2: puts land in the spool; flush() seals and uploads one object per segment
// (a segment above s3_multipart_bytes in parts); the bucket then reads like a spool.
TEST_F(S3ArchiveTest, Format2UploadsSegmentsMultipartAboveTheThreshold) {
  test::TempDir spool;
  ArchiveOptions o = opts();
  o.create_format = 2;
  o.spool_dir = spool.path() + "/spool";
  o.s3_multipart_bytes = 5u << 20;
  auto a = Archive::open(uri(), o);
  ASSERT_TRUE(a) << a.status().message();
  ASSERT_EQ((*a)->format(), 2);
  // ~9 MiB of incompressible-ish records for acme (one segment: multipart), 3 small for beta.
  std::vector<std::string> bodies;
  std::vector<ArchivePut> puts;
  for (int i = 0; i < 72; ++i) {
    bodies.push_back("{\"raw\":\"" + crypto::random_base62(128 << 10) + "\"}");
    puts.push_back({"acme", "a" + std::to_string(i), kDay5, bodies.back()});
  }
  for (int i = 0; i < 3; ++i) {
    bodies.push_back("{\"i\":" + std::to_string(i) + "}");
    puts.push_back({"beta", "b" + std::to_string(i), kDay6, bodies.back()});
  }
  size_t before = server_->stored_puts();
  std::vector<Result<std::string>> out;
  ASSERT_TRUE((*a)->put_many(puts, out));
  for (auto& r : out) ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(*out[0], uri() + "/acme/2026/01/05#a0");
  ASSERT_TRUE((*a)->flush());
  auto st = (*a)->stats();
  EXPECT_EQ(st.uploaded_segments, 2u);
  EXPECT_EQ(st.pending_segments, 0u);
  // acme's segment in two parts (one more request stores the whole), beta's in one PUT.
  EXPECT_EQ(server_->stored_puts() - before, 4u);
  auto r = Archive::open(uri(), opts(/*create=*/false));
  ASSERT_TRUE(r) << r.status().message();
  std::map<std::string, std::string> got;
  ASSERT_TRUE((*r)->scan({}, [&](const ArchiveObject& obj, std::string_view bytes, const Status& p) {
    EXPECT_TRUE(p) << p.message();
    got[obj.batch_id] = std::string(bytes);
    return true;
  }));
  ASSERT_EQ(got.size(), puts.size());
  for (size_t i = 0; i < puts.size(); ++i) EXPECT_EQ(got[puts[i].batch_id], bodies[i] + "\n") << puts[i].batch_id;
  auto one = (*r)->get((*r)->locate("beta", "b1", kDay6));
  ASSERT_TRUE(one) << one.status().message();
  EXPECT_EQ(*one, bodies[73] + "\n");
  EXPECT_EQ((*r)->get((*r)->locate("beta", "nope", kDay6)).status().code(), Code::kNotFound);
  std::vector<ArchiveObject> units;
  ASSERT_TRUE((*r)->list_units({}, [&](const ArchiveObject& u) { return units.push_back(u), true; }));
  ASSERT_EQ(units.size(), 2u);
  EXPECT_TRUE(units[1].key.starts_with("beta/2026/01/06/seg-")) << units[1].key;
  ASSERT_TRUE((*r)->remove(units[1]));
  EXPECT_EQ(list_all(**r).size(), 72u);
  // Reading never needs a spool; writing through a reader is refused.
  EXPECT_FALSE((*r)->put({"beta", "b9", kDay6, "{}"}));
}

// s3rver checks the access key id but (unlike AWS and R2) not the SigV4 signature itself.
TEST_F(S3ArchiveTest, UnknownAccessKeyIsUnavailableNamingTheCredentials) {
  ArchiveOptions o = opts();
  o.access_key = "NOT-A-KEY";
  auto a = Archive::open(uri(), o);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.status().code(), Code::kUnavailable);
  EXPECT_NE(a.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos)
      << a.status().message();
}

TEST_F(S3ArchiveTest, MissingBucketAndMissingArchiveAreErrors) {
  auto nb = Archive::open("s3://no-such-bucket/x", opts());
  ASSERT_FALSE(nb);
  EXPECT_EQ(nb.status().code(), Code::kUnavailable);
  EXPECT_NE(nb.status().message().find("no such bucket"), std::string::npos) << nb.status().message();
  auto na = Archive::open(uri() + "-never-written", opts(/*create=*/false));
  ASSERT_FALSE(na);
  EXPECT_NE(na.status().message().find("no such archive"), std::string::npos) << na.status().message();
}

TEST(S3ArchiveOpen, UnreachableEndpointIsUnavailable) {
  ArchiveOptions o;
  o.s3_endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  o.access_key = o.secret_key = "x";
  o.s3_retries = 1;
  auto a = Archive::open("s3://b/p", o);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.status().code(), Code::kUnavailable) << a.status().message();
}

TEST(S3ArchiveOpen, MissingCredentialsAreAUsageError) {
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ArchiveOptions o;
  o.s3_endpoint = "http://127.0.0.1:1";
  auto a = Archive::open("s3://b/p", o);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.status().code(), Code::kUsage);
}

TEST(S3ListParser, ReadsKeysSizesAndContinuation) {
  std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>a&amp;b/2026/01/05/x.json</Key><LastModified>2026-01-05T00:00:00.000Z</LastModified><Size>12</Size></Contents>
<Contents><Key>c&#x3C;d&#60;/e</Key><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&amp;</NextContinuationToken></ListBucketResult>)";
  auto p = archive_detail::parse_list_page(xml);
  ASSERT_TRUE(p) << p.status().message();
  ASSERT_EQ(p->objects.size(), 2u);
  EXPECT_EQ(p->objects[0].first, "a&b/2026/01/05/x.json");
  EXPECT_EQ(p->objects[0].second, 12u);
  EXPECT_EQ(p->objects[1].first, "c<d</e");
  EXPECT_TRUE(p->truncated);
  EXPECT_EQ(p->next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&");
}

TEST(S3ListParser, RejectsMalformedPages) {
  EXPECT_FALSE(archive_detail::parse_list_page("<Error><Code>X</Code></Error>"));
  EXPECT_FALSE(archive_detail::parse_list_page("<ListBucketResult><Contents><Key>a</Key>"));
  EXPECT_FALSE(archive_detail::parse_list_page(
      "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>"));
  EXPECT_FALSE(archive_detail::parse_list_page(
      "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>"));
  EXPECT_FALSE(archive_detail::parse_list_page(
      "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"));
  auto empty = archive_detail::parse_list_page(
      "<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->objects.empty());
  EXPECT_FALSE(empty->truncated);
}

TEST(S3ListParser, UnescapesEntitiesOnly) {
  EXPECT_EQ(archive_detail::xml_unescape("a&amp;b&lt;&gt;&quot;&apos;&#233;&#x1F600;&bogus;&"),
            "a&b<>\"'\xC3\xA9\xF0\x9F\x98\x80&bogus;&");
}

}  // namespace
}  // namespace ep

namespace ep {
namespace {

// Found by fuzz_s3_list: impossible days and out-of-range years are not object keys.
TEST(ArchiveKey, ParsesOnlyRealDaysInRange) {
  using archive_detail::parse_key;
  auto k = parse_key("acme/2026/01/05/0190a000-0000-7000-8000-000000000001.json");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->tenant, "acme");
  EXPECT_EQ(archive_detail::day_start(k->day), *parse_rfc3339("2026-01-05T00:00:00Z"));
  EXPECT_TRUE(parse_key("acme/2024/02/29/x.json"));
  EXPECT_FALSE(parse_key("acme/2026/02/29/x.json"));
  EXPECT_FALSE(parse_key("acme/2026/04/31/x.json"));
  EXPECT_FALSE(parse_key("acme/9999/01/01/x.json"));
  EXPECT_FALSE(parse_key("acme/1969/12/31/x.json"));
  EXPECT_FALSE(parse_key("acme/2026/1/05/x.json"));
  EXPECT_FALSE(parse_key(".tmp/2026/01/05/x.json"));
  EXPECT_FALSE(parse_key("acme/2026/01/05/.tmp-x-abc"));
  EXPECT_FALSE(parse_key("acme/2026/01/05/x.json/y"));
  EXPECT_FALSE(parse_key("FORMAT"));
}

}  // namespace
}  // namespace ep
