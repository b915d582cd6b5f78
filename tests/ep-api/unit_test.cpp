// ep-api core pieces without a database: LTTB, query parsing, cursors, routing of assets.
#include <gtest/gtest.h>

#include <cmath>

#include "api.h"
#include "lttb.h"
#include "routes.h"

namespace ep::api {
namespace {

std::vector<XY> sine(size_t n) {
  std::vector<XY> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = {static_cast<std::int64_t>(i) * kNsPerSec, std::sin(i / 50.0)};
  return v;
}

TEST(Lttb, KeepsEndsAndReturnsThreshold) {
  auto pts = sine(10000);
  auto idx = lttb(pts, 500);
  ASSERT_EQ(idx.size(), 500u);
  EXPECT_EQ(idx.front(), 0u);
  EXPECT_EQ(idx.back(), 9999u);
  for (size_t i = 1; i < idx.size(); ++i) EXPECT_LT(idx[i - 1], idx[i]);
}

TEST(Lttb, FewerPointsThanThresholdAreAllKept) {
  auto pts = sine(10);
  EXPECT_EQ(lttb(pts, 100).size(), 10u);
  EXPECT_TRUE(lttb({}, 100).empty());
}

TEST(Lttb, ASingleSpikeSurvives) {
  auto pts = sine(100000);
  pts[54321].v = 50;
  auto idx = lttb(pts, 200);
  EXPECT_NE(std::find(idx.begin(), idx.end(), 54321u), idx.end());
}

TEST(Lttb, FlaggedWindowExtremesAreKept) {
  // A dip of a single point inside a flagged window on a noisy line: LTTB alone may
  // drop it in favour of bigger swings elsewhere; the flagged window keeps it.
  std::vector<XY> pts(20000);
  for (size_t i = 0; i < pts.size(); ++i)
    pts[i] = {static_cast<std::int64_t>(i) * kNsPerSec, (i % 2 ? 10.0 : -10.0)};
  pts[7001].v = -11;
  std::vector<std::pair<std::int64_t, std::int64_t>> keep = {{7000 * kNsPerSec, 7010 * kNsPerSec}};
  auto idx = downsample_keeping(pts, 100, keep);
  EXPECT_NE(std::find(idx.begin(), idx.end(), 7001u), idx.end());
  EXPECT_LE(idx.size(), 102u);
  for (size_t i = 1; i < idx.size(); ++i) EXPECT_LT(idx[i - 1], idx[i]);
}

TEST(Query, DecodesAndRejectsBadEscapes) {
  auto q = parse_query("/v1/x?a=1&b=x%20y+z&c=&d");
  ASSERT_TRUE(q.is_ok());
  EXPECT_EQ((*q)["a"], "1");
  EXPECT_EQ((*q)["b"], "x y z");
  EXPECT_EQ((*q)["c"], "");
  EXPECT_EQ(q->count("d"), 1u);
  auto bad = parse_query("/v1/x?from=%zz");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().message(), "from: malformed percent-encoding");
  EXPECT_FALSE(parse_query("/v1/x?a=%2").is_ok());
}

TEST(Cursor, RoundTripsAndRejectsGarbage) {
  std::string c = encode_cursor({"2026-01-01", "a/b+c", ""});
  EXPECT_EQ(c.find_first_of("+/="), std::string::npos);
  auto f = decode_cursor(c, 3);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ((*f)[1], "a/b+c");
  EXPECT_EQ((*f)[2], "");
  EXPECT_FALSE(decode_cursor(c, 2).is_ok());
  EXPECT_FALSE(decode_cursor("!!!", 1).is_ok());
}

TEST(Errors, StatusMapsToHttp) {
  EXPECT_EQ(status_response(Status::not_found("x")).status, 404);
  EXPECT_EQ(status_response(Status::usage("x")).status, 400);
  EXPECT_EQ(status_response(Status::conflict("x")).status, 409);
  EXPECT_EQ(status_response(Status::unavailable("x")).status, 503);
  auto r = status_response(Status::software("secret detail"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("secret detail"), std::string::npos);
  EXPECT_EQ(error_response(400, "invalid_request", "a \"b\"").body,
            R"({"error":"invalid_request","details":"a \"b\""})");
}

TEST(Assets, DashboardAndOpenApiAreEmbedded) {
  for (const char* p : {"/index.html", "/app.js", "/style.css", "/v1/openapi.json"}) {
    const Asset* a = find_asset(p);
    ASSERT_NE(a, nullptr) << p;
    EXPECT_FALSE(a->body.empty()) << p;
  }
  EXPECT_EQ(find_asset("/../etc/passwd"), nullptr);
}

}  // namespace
}  // namespace ep::api
