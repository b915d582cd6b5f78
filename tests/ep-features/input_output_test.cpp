// Record parsing (errors name the field) and window serialisation (parses back as a
// docs/architecture.md §3 window record; undefined features absent).
#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <map>

#include "ep/json.h"
#include "ep/records.h"
#include "input.h"
#include "output.h"
#include "run.h"
#include "test_util.h"

namespace ep::features {
namespace {

struct Pt {
  std::string t, d, m;
  TimeNs ts;
  double v;
};
class Points final : public PointSink {
 public:
  void on_point(std::string_view t, std::string_view d, std::string_view m, TimeNs ts,
                double v) override {
    got.push_back({std::string(t), std::string(d), std::string(m), ts, v});
  }
  std::vector<Pt> got;
};

std::string parse_error(std::string_view line) {
  RecordParser p;
  Points sink;
  Status st = p.parse(line, sink);
  EXPECT_TRUE(sink.got.empty()) << line;
  return st.is_ok() ? "ok" : st.message();
}

TEST(RecordParser, PointAndBatch) {
  RecordParser p;
  Points s;
  ASSERT_TRUE(p.parse(R"({"kind":"point","tenant":"acme","device":"m1","metric":"v","ts":"2026-01-05T10:00:00+01:00","value":229.5,"unit":"V","extra":[1]})", s).is_ok());
  ASSERT_TRUE(p.parse(R"({"kind":"batch","batch_id":"b","tenant":"acme","device":"m2","points":[{"metric":"a","ts":"2026-01-05T09:00:01Z","value":1},{"metric":"b","ts":"2026-01-05T09:00:02.5Z","value":-2e3}],"raw":"{}"})", s).is_ok());
  ASSERT_EQ(s.got.size(), 3u);
  EXPECT_EQ(s.got[0].ts, test::kT0 + 9 * 3600 * test::kS);
  EXPECT_EQ(s.got[0].v, 229.5);
  EXPECT_EQ(s.got[2].d, "m2");
  EXPECT_EQ(s.got[2].m, "b");
  EXPECT_EQ(s.got[2].ts, test::kT0 + 9 * 3600 * test::kS + 2500 * kNsPerMs);
  EXPECT_EQ(s.got[2].v, -2000);
}

TEST(RecordParser, ErrorsNameTheField) {
  EXPECT_EQ(parse_error("not json"), "invalid JSON at byte 1: Invalid value.");
  EXPECT_EQ(parse_error("[1,2]"), "record is not a JSON object");
  EXPECT_EQ(parse_error(R"({"tenant":"t"})"), "kind: required");
  EXPECT_EQ(parse_error(R"({"kind":"window","tenant":"t"})"),
            "kind: expected \"point\" or \"batch\", got \"window\"");
  EXPECT_EQ(parse_error(R"({"kind":"point","tenant":"t","device":"d","ts":"2026-01-05T10:00:00Z","value":1})"),
            "metric: required");
  EXPECT_EQ(parse_error(R"({"kind":"point","tenant":"","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1})"),
            "tenant: empty");
  EXPECT_EQ(parse_error(R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"yesterday","value":1})"),
            "ts: not an RFC 3339 timestamp");
  EXPECT_EQ(parse_error(R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":"1"})"),
            "value: not a finite number");
  EXPECT_EQ(parse_error(R"({"kind":"batch","tenant":"t","device":"d","points":{}})"),
            "points: required array");
  // One bad point rejects the whole batch: nothing of it reaches the sink.
  EXPECT_EQ(parse_error(R"({"kind":"batch","tenant":"t","device":"d","points":[{"metric":"a","ts":"2026-01-05T10:00:00Z","value":1},{"metric":"a","ts":"2026-13-05T10:00:00Z","value":1}]})"),
            "points[1].ts: not an RFC 3339 timestamp");
  EXPECT_EQ(parse_error(R"({"kind":"batch","tenant":"t","device":"d","points":[7]})"),
            "points[0]: not an object");
}

TEST(RecordParser, ReusesItsArenaAcrossLongAndShortLines) {
  RecordParser p;
  Points s;
  std::string big = R"({"kind":"batch","tenant":"t","device":"d","points":[)";
  for (int i = 0; i < 5000; ++i)
    big += std::string(i ? "," : "") + R"({"metric":"m","ts":"2026-01-05T10:00:00Z","value":)" +
           std::to_string(i) + "}";
  big += "]}";
  ASSERT_TRUE(p.parse(big, s).is_ok());
  ASSERT_TRUE(p.parse(R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1})", s).is_ok());
  EXPECT_EQ(s.got.size(), 5001u);
  EXPECT_EQ(s.got[4999].v, 4999);
}

// The string scanner reads eight bytes at a time: a quote, backslash or control byte
// at any offset of an 8-byte block, and strings ending exactly at a block boundary,
// must be found (or handed to the DOM path) as a byte-by-byte scan would.
TEST(RecordParser, FastPathFindsSpecialBytesAtEveryOffset) {
  const std::string head = R"({"kind":"point","tenant":"t","device":")";
  const std::string tail = R"(","metric":"m","ts":"2026-01-05T10:00:00Z","value":1})";
  struct Case {
    std::string insert;  // placed inside the device name
    bool fast;           // the fast path takes it
    bool valid;          // the DOM accepts it
    std::string device;  // the device the DOM reads (when valid)
  };
  int checked = 0;
  for (size_t len = 0; len <= 20; ++len) {
    for (size_t at = 0; at <= len; ++at) {
      std::string base(len, 'x');
      for (size_t k = 0; k < len; ++k) base[k] = static_cast<char>('a' + k % 26);
      std::string pre = base.substr(0, at), post = base.substr(at);
      std::vector<Case> cases = {
          {"", len > 0, len > 0, pre + post},
          {"\\\"", false, true, pre + "\"" + post},
          {"\\\\", false, true, pre + "\\" + post},
          {"\\n", false, true, pre + "\n" + post},
          {std::string(1, '\x01'), false, false, ""},
          {std::string(1, '\x1f'), false, false, ""},
          {" ", true, true, pre + " " + post},
          {"\x7f", true, true, pre + "\x7f" + post},
          {"\xc3\xa9", true, true, pre + "\xc3\xa9" + post},  // é
          {"!#", true, true, pre + "!#" + post},  // 0x21 and 0x23 around the quote's 0x22
      };
      for (const Case& c : cases) {
        std::string line = head + pre + c.insert + post + tail;
        SCOPED_TRACE(::testing::PrintToString(line));
        FlatPoint fp;
        bool fast = parse_flat_point(line, fp);
        EXPECT_EQ(fast, c.fast);
        if (fast) {
          EXPECT_EQ(fp.device, c.device);
        }
        RecordParser dom(false);
        Points got;
        Status st = dom.parse(line, got);
        EXPECT_EQ(st.is_ok(), c.valid) << st.message();
        if (st.is_ok()) {
          ASSERT_EQ(got.got.size(), 1u);
          EXPECT_EQ(got.got[0].d, c.device);
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 231 * 10);
}

// The timestamp memo: a repeated "ts" is not parsed again, and never stands in for a
// different text, a text that failed to parse, or a line that is otherwise invalid.
TEST(RecordParser, TimestampMemoOnlyReusesTheSameText) {
  auto line = [](std::string_view ts, std::string_view value = "1") {
    return std::string(R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":")") +
           std::string(ts) + R"(","value":)" + std::string(value) + "}";
  };
  TsMemo memo;
  FlatPoint fp;
  ASSERT_TRUE(parse_flat_point(line("2026-01-05T10:00:00Z"), fp, &memo));
  const TimeNs t10 = test::kT0 + 10 * 3600 * test::kS;
  EXPECT_EQ(fp.ts, t10);
  EXPECT_EQ(std::string_view(memo.text, memo.len), "2026-01-05T10:00:00Z");
  ASSERT_TRUE(parse_flat_point(line("2026-01-05T10:00:00Z", "2"), fp, &memo));
  EXPECT_EQ(fp.ts, t10);
  EXPECT_EQ(fp.value, 2);
  // Same instant written differently: parsed, and becomes the memo.
  ASSERT_TRUE(parse_flat_point(line("2026-01-05T11:00:00+01:00"), fp, &memo));
  EXPECT_EQ(fp.ts, t10);
  ASSERT_TRUE(parse_flat_point(line("2026-01-05T10:00:01Z"), fp, &memo));
  EXPECT_EQ(fp.ts, t10 + test::kS);
  // Invalid texts never match nor replace the memo; a memo hit with a bad value fails.
  EXPECT_FALSE(parse_flat_point(line("2026-01-05T10:00:01Z "), fp, &memo));
  EXPECT_FALSE(parse_flat_point(line("2026-01-05T10:00:01"), fp, &memo));
  EXPECT_FALSE(parse_flat_point(line("2026-13-05T10:00:01Z"), fp, &memo));
  EXPECT_EQ(std::string_view(memo.text, memo.len), "2026-01-05T10:00:01Z");
  EXPECT_FALSE(parse_flat_point(line("2026-01-05T10:00:01Z", "1e999"), fp, &memo));
  // Longer than the memo holds: parsed every time, memo unchanged.
  ASSERT_TRUE(parse_flat_point(line("2026-01-05T10:00:02.123456789+00:00"), fp, &memo));
  EXPECT_EQ(fp.ts, t10 + 2 * test::kS + 123456789);
  ASSERT_TRUE(parse_flat_point(line("2026-01-05T10:00:01Z"), fp, &memo));
  EXPECT_EQ(fp.ts, t10 + test::kS);

  // Through RecordParser: the DOM path (a batch) and the fast path share a stream.
  RecordParser p;
  Points s;
  ASSERT_TRUE(p.parse(line("2026-01-05T10:00:00Z"), s).is_ok());
  ASSERT_TRUE(p.parse(R"({"kind":"batch","tenant":"t","device":"d","points":[{"metric":"m","ts":"2026-01-05T10:00:05Z","value":1}]})", s).is_ok());
  ASSERT_TRUE(p.parse(line("2026-01-05T10:00:00Z"), s).is_ok());
  ASSERT_TRUE(p.parse(line("2026-01-05T10:00:03Z"), s).is_ok());
  ASSERT_EQ(s.got.size(), 4u);
  EXPECT_EQ(s.got[0].ts, t10);
  EXPECT_EQ(s.got[1].ts, t10 + 5 * test::kS);
  EXPECT_EQ(s.got[2].ts, t10);
  EXPECT_EQ(s.got[3].ts, t10 + 3 * test::kS);
}

// Points are routed to their series whatever the order of an interleaved stream: the
// "series that followed last time" shortcut must not confuse series that share a
// device, a metric or a tenant, nor survive a change of order.
TEST(RunLines, InterleavedSeriesInChangingOrderReachTheirOwnSeries) {
  const std::vector<std::array<const char*, 3>> ids = {
      {"t1", "d", "m"}, {"t2", "d", "m"}, {"t1", "d", "m2"}, {"t1", "e", "m"}, {"t1", "d2", "m"}};
  std::vector<std::vector<size_t>> orders = {{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {0, 0, 2, 1, 4, 3},
                                             {1, 2}, {3}, {0, 4, 0, 4}, {2, 3, 4, 0, 1}};
  std::string text;
  std::map<std::string, int> sent;
  std::map<std::string, double> sum;
  int sec = 0;
  for (int round = 0; round < 30; ++round) {
    for (size_t k : orders[static_cast<size_t>(round) % orders.size()]) {
      const auto& id = ids[k];
      double v = static_cast<double>(k * 100 + static_cast<size_t>(round));
      char ts[32];
      std::snprintf(ts, sizeof ts, "2026-01-05T00:%02d:%02dZ", sec / 60, sec % 60);
      text += std::string(R"({"kind":"point","tenant":")") + id[0] + R"(","device":")" + id[1] +
              R"(","metric":")" + id[2] + R"(","ts":")" + ts + R"(","value":)" +
              std::to_string(v) + "}\n";
      std::string key = std::string(id[0]) + "/" + id[1] + "/" + id[2];
      ++sent[key];
      sum[key] += v;
    }
    ++sec;
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_LT(text.size(), 60000u);  // fits the pipe buffer: written before reading
  ASSERT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fds[1]);
  LineReader reader(fds[0], "pipe");
  Options o = test::time_opts(3600 * test::kS);
  test::Collect out;
  RunSummary summary;
  ASSERT_TRUE(run_lines(o, StreamOptions{}, reader, out, summary).is_ok());
  ::close(fds[0]);
  EXPECT_EQ(summary.rejected, 0u);
  ASSERT_EQ(out.got.size(), ids.size());  // one hour-long window per series
  for (const auto& w : out.got) {
    SCOPED_TRACE(w.series);
    EXPECT_EQ(w.n, sent[w.series]);
    EXPECT_DOUBLE_EQ(w[kMean] * static_cast<double>(w.n), sum[w.series]);
  }
}

TEST(WindowJson, ParsesBackAsAWindowRecord) {
  SeriesId id{"acme", "meter \"1\"", "v", {}};
  JsonWriter jw;
  jw.start_object();
  jw.kv("kind", "window");
  jw.kv("tenant", id.tenant);
  jw.kv("device", id.device);
  jw.kv("metric", id.metric);
  jw.end_object();
  id.json_prefix = std::string(jw.view().substr(0, jw.view().size() - 1));
  WindowOut w;
  w.series = &id;
  w.start = test::kT0;
  w.end = test::kT0 + 300 * test::kS;
  w.n = 3;
  w.expected = 300;
  w.features.set(kMean, 0.1);
  w.features.set(kStuck, 1);
  w.features.set(kStd, std::nan(""));  // undefined: must not appear
  w.features.set(kSlope, -1.5e-9);
  std::string line;
  append_window_json(line, w);
  EXPECT_EQ(line,
            R"({"kind":"window","tenant":"acme","device":"meter \"1\"","metric":"v","start":"2026-01-05T00:00:00.000Z","end":"2026-01-05T00:05:00.000Z","n":3,"expected":300,"features":{"mean":0.1,"slope":-1.5e-09,"stuck":true}})");
  rapidjson::Document doc;
  ASSERT_TRUE(parse_json(line, doc).is_ok());
  Window back;
  ASSERT_TRUE(parse_record(doc, back).is_ok());
  EXPECT_EQ(back.device, "meter \"1\"");
  EXPECT_EQ(back.n, 3);
  EXPECT_EQ(back.expected, 300);
  EXPECT_EQ(*back.feature("mean"), 0.1);
  EXPECT_EQ(*back.feature("stuck"), 1);
  EXPECT_EQ(back.feature("std"), nullptr);

  w.expected = -1;  // unknown interval: field omitted
  line.clear();
  append_window_json(line, w);
  EXPECT_EQ(line.find("expected"), std::string::npos);
}

TEST(Options, ParsesWindowsAndRejectsMisuse) {
  auto w = parse_extent("32pts");
  ASSERT_TRUE(w.is_ok());
  EXPECT_TRUE(w->count);
  EXPECT_EQ(w->points, 32);
  auto d = parse_extent("5m");
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(d->duration, 300 * test::kS);
  EXPECT_FALSE(parse_extent("0pts").is_ok());
  EXPECT_FALSE(parse_extent("abc").is_ok());
  EXPECT_FALSE(parse_extent("-5s").is_ok());
  Options o;
  o.window = *w;
  o.hop = *d;
  EXPECT_EQ(o.finalize().code(), Code::kUsage);  // count window, time hop
  Options t;
  EXPECT_TRUE(t.finalize().is_ok());
  EXPECT_EQ(t.hop, t.window);  // tumbling by default
}

}  // namespace
}  // namespace ep::features

namespace ep::features {
namespace {

// The flat fast path must agree with the RapidJSON path: whatever it accepts, the DOM
// accepts with the same point; whatever the DOM rejects, it rejects.
TEST(RecordParser, FastPathAgreesWithTheDomPath) {
  const std::string ok_tail = R"("ts":"2026-01-05T10:00:00.5+01:00","value":)";
  std::vector<std::string> lines = {
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1})",
      R"(  { "kind" : "point" , "tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value": -0.5e+3 }  )",
      R"({"value":229.5,"ts":"2026-01-05T10:00:00Z","metric":"m","device":"d","tenant":"t","kind":"point","unit":"V","ok":true,"n":null})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1,"extra":{"a":1}})",
      R"({"kind":"point","tenant":"t\u0041","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1,"kind":"batch"})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":01})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1.})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":.5})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":+1})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1e})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1e999})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":NaN})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":"1"})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1}x)",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1,})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z" "value":1})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1)",
      R"({"kind":"point","tenant":"","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"bad","value":1})",
      R"({"kind":"point","tenant":"t","device":"d","ts":"2026-01-05T10:00:00Z","value":1})",
      R"({"kind":"Point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":tru})",
      "{\"kind\":\"point\",\"tenant\":\"t\x01\",\"device\":\"d\",\"metric\":\"m\",\"ts\":\"2026-01-05T10:00:00Z\",\"value\":1}",
      R"({"kind":"point","tenant":"tenant-é","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1})",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":1}{})",
      R"({})",
      R"()",
      R"({"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05T10:00:00Z","value":-})",
  };
  int fast_accepted = 0;
  for (const auto& line : lines) {
    FlatPoint fp;
    bool fast = parse_flat_point(line, fp);
    RecordParser dom(false);
    Points got;
    Status st = dom.parse(line, got);
    SCOPED_TRACE(line);
    if (fast) {
      ++fast_accepted;
      ASSERT_TRUE(st.is_ok()) << st.message();
      ASSERT_EQ(got.got.size(), 1u);
      EXPECT_EQ(got.got[0].t, fp.tenant);
      EXPECT_EQ(got.got[0].d, fp.device);
      EXPECT_EQ(got.got[0].m, fp.metric);
      EXPECT_EQ(got.got[0].ts, fp.ts);
      EXPECT_EQ(got.got[0].v, fp.value);
    }
    if (!st.is_ok()) {
      EXPECT_FALSE(fast);
    }
  }
  EXPECT_EQ(fast_accepted, 5);  // the first three, the duplicate kind, the UTF-8 tenant
}

}  // namespace
}  // namespace ep::features
