// ep-load without Postgres: record parsing and grouping.
#include <gtest/gtest.h>

#include "reader.h"

namespace {

using ep::load::Group;
using ep::load::parse_line;

TEST(LoadParse, BatchBecomesEntryWithPoints) {
  Group g;
  auto s = parse_line(
      R"({"kind":"batch","batch_id":"0190a0b0-0000-7000-8000-000000000001","tenant":"acme","device":"m1",)"
      R"("source":"http","received_at":"2026-01-05T10:00:00Z","sha256":"ab","points":[)"
      R"({"metric":"v","ts":"2026-01-05T09:59:59Z","value":1.5,"unit":"V"},{"metric":"i","ts":"2026-01-05T09:59:59Z","value":2}]})",
      "stdin", 7, g);
  ASSERT_TRUE(s.is_ok()) << s.message();
  ASSERT_EQ(g.entries.size(), 1u);
  EXPECT_TRUE(g.entries[0].is_batch);
  EXPECT_EQ(g.entries[0].count, 2u);
  EXPECT_EQ(g.entries[0].line, 7);
  ASSERT_EQ(g.points.size(), 2u);
  EXPECT_EQ(g.points[0].unit, "V");
  EXPECT_EQ(g.points[1].metric, "i");
}

TEST(LoadParse, PointRecord) {
  Group g;
  auto s = parse_line(R"({"kind":"point","tenant":"acme","device":"m1","metric":"v","ts":"2026-01-05T09:59:59Z","value":3})",
                      "f", 1, g);
  ASSERT_TRUE(s.is_ok()) << s.message();
  EXPECT_FALSE(g.entries[0].is_batch);
  EXPECT_EQ(g.points[0].value, 3);
}

TEST(LoadParse, ErrorsNameTheField) {
  struct Case {
    const char* line;
    const char* error;
  } cases[] = {
      {R"({"kind":"window","tenant":"a"})", "kind: 'window' is not loaded by ep-load (expected \"batch\" or \"point\")"},
      {R"({"tenant":"a"})", "kind: missing (expected \"batch\" or \"point\")"},
      {R"({"kind":"batch","batch_id":"nope","tenant":"a","device":"d","source":"s","received_at":"2026-01-05T10:00:00Z","sha256":"","points":[]})",
       "batch_id: not a UUID"},
      {R"({"kind":"batch","batch_id":"0190a0b0-0000-7000-8000-000000000001","tenant":"a b","device":"d","source":"s","received_at":"2026-01-05T10:00:00Z","sha256":"","points":[]})",
       "tenant: not a valid tenant name ([A-Za-z0-9._:-]{1,128}, not starting with '.')"},
      {R"({"kind":"point","tenant":"a/b/../c","device":"d","metric":"m","ts":"2026-01-05T09:59:59Z","value":3})",
       "tenant: not a valid tenant name ([A-Za-z0-9._:-]{1,128}, not starting with '.')"},
      {R"({"kind":"point","tenant":".hidden","device":"d","metric":"m","ts":"2026-01-05T09:59:59Z","value":3})",
       "tenant: not a valid tenant name ([A-Za-z0-9._:-]{1,128}, not starting with '.')"},
      {R"({"kind":"point","tenant":"a","device":"d","metric":"bad metric","ts":"2026-01-05T09:59:59Z","value":3})",
       "metric: not a valid name ([A-Za-z0-9._:/-], then optional labels {k=\"v\",…})"},
      {"[1,2]", "not a JSON object"},
  };
  for (const auto& c : cases) {
    Group g;
    auto s = parse_line(c.line, "stdin", 1, g);
    EXPECT_FALSE(s.is_ok()) << c.line;
    EXPECT_EQ(s.message(), c.error) << c.line;
    EXPECT_TRUE(g.entries.empty());
  }
}

TEST(GroupQueue, BoundedAndClosable) {
  ep::load::GroupQueue q(1);
  Group g;
  g.lines = 1;
  ASSERT_TRUE(q.push(std::move(g)));
  std::thread producer([&] {
    Group h;
    h.lines = 2;
    q.push(std::move(h));  // blocks until the consumer pops
    q.finish();
  });
  Group out;
  ASSERT_TRUE(q.pop(out));
  EXPECT_EQ(out.lines, 1u);
  ASSERT_TRUE(q.pop(out));
  EXPECT_EQ(out.lines, 2u);
  producer.join();
  EXPECT_FALSE(q.pop(out));
  ep::load::GroupQueue closed(1);
  closed.close();
  EXPECT_FALSE(closed.push(Group()));
}

}  // namespace
