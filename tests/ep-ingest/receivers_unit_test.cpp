// The pieces every protocol receiver shares: Content-Encoding decoding with its limit,
// the API key forms, series identity and the SampleSink.
#include <gtest/gtest.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <cmath>

#include "auth.h"
#include "decode.h"
#include "ep/crypto.h"
#include "ep/records.h"
#include "samples.h"

namespace ep::ingest {
namespace {

std::string deflate_with(const std::string& in, int window_bits) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
std::string gzip(const std::string& in) { return deflate_with(in, 16 + 15); }
std::string zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
  return out;
}
std::string snappy_block(const std::string& in) {
  std::string out;
  snappy::Compress(in.data(), in.size(), &out);
  return out;
}

Decoded decode(std::string_view enc, const std::string& body, std::string& out, size_t max = 1 << 20) {
  std::string_view view;
  Decoded d = decode_body(enc, body, max, out, &view);
  if (d.error == DecodeError::kNone) out.assign(view);
  return d;
}

const std::string kText = [] {
  std::string s;
  for (int i = 0; i < 2000; ++i) s += "cpu,host=a value=" + std::to_string(i) + "\n";
  return s;
}();

TEST(Decode, EveryEncodingRoundTrips) {
  for (auto [enc, body] : std::vector<std::pair<std::string, std::string>>{
           {"gzip", gzip(kText)}, {"x-gzip", gzip(kText)}, {"deflate", deflate_with(kText, 15)},
           {"deflate", deflate_with(kText, -15)}, {"zstd", zstd(kText)}, {"snappy", snappy_block(kText)},
           {"GZIP", gzip(kText)}, {"", kText}, {"identity", kText}, {"gzip, identity", gzip(kText)},
           {"gzip, zstd", zstd(gzip(kText))}}) {
    std::string out;
    Decoded d = decode(enc, body, out);
    EXPECT_EQ(d.error, DecodeError::kNone) << enc << ": " << d.message;
    EXPECT_EQ(out, kText) << enc;
  }
}

TEST(Decode, UnknownEncodingIsUnsupportedAndNamed) {
  std::string out;
  Decoded d = decode("br", kText, out);
  EXPECT_EQ(d.error, DecodeError::kUnsupported);
  EXPECT_NE(d.message.find("'br'"), std::string::npos) << d.message;
}

TEST(Decode, BombsStopAtTheLimit) {
  std::string zeros(64 << 20, '\0');
  for (auto [enc, body] : std::vector<std::pair<std::string, std::string>>{
           {"gzip", gzip(zeros)}, {"deflate", deflate_with(zeros, 15)}, {"zstd", zstd(zeros)},
           {"snappy", snappy_block(zeros)}}) {
    ASSERT_LT(body.size(), size_t{4} << 20) << enc;
    std::string out;
    Decoded d = decode(enc, body, out, 1 << 20);
    EXPECT_EQ(d.error, DecodeError::kTooLarge) << enc;
    EXPECT_LE(out.size(), (size_t{1} << 20) + 64 * 1024) << enc << ": decoded past the limit";
    EXPECT_NE(d.message.find("--max-decoded-bytes"), std::string::npos) << d.message;
  }
}

TEST(Decode, ExactlyTheLimitIsAccepted) {
  std::string body(4096, 'x');
  std::string out;
  EXPECT_EQ(decode("gzip", gzip(body), out, 4096).error, DecodeError::kNone);
  EXPECT_EQ(decode("zstd", zstd(body), out, 4096).error, DecodeError::kNone);
  EXPECT_EQ(decode("snappy", snappy_block(body), out, 4096).error, DecodeError::kNone);
  EXPECT_EQ(decode("gzip", gzip(body), out, 4095).error, DecodeError::kTooLarge);
}

TEST(Decode, CorruptAndTruncatedStreamsAreErrorsNamingTheEncoding) {
  std::string g = gzip(kText), z = zstd(kText), s = snappy_block(kText);
  for (auto [enc, body] : std::vector<std::pair<std::string, std::string>>{
           {"gzip", g.substr(0, g.size() / 2)}, {"gzip", "not gzip at all"}, {"zstd", z.substr(0, z.size() / 2)},
           {"zstd", "garbage!"}, {"snappy", s.substr(0, s.size() / 2)}, {"snappy", std::string("\xff\xff\xff\xff\xff\xff", 6)},
           {"gzip", g + "trailing"}}) {
    std::string out;
    Decoded d = decode(enc, body, out);
    EXPECT_EQ(d.error, DecodeError::kCorrupt) << enc << " " << body.size();
    EXPECT_NE(d.message.find(enc), std::string::npos) << d.message;
  }
}

TEST(PresentedKey, EveryFormAgentsSend) {
  std::string scratch;
  EXPECT_EQ(presented_key("k1", "Bearer k2", scratch), "k1");
  EXPECT_EQ(presented_key("", "Bearer k2", scratch), "k2");
  EXPECT_EQ(presented_key("", "bearer   k2 ", scratch), "k2");
  EXPECT_EQ(presented_key("", "Token k3", scratch), "k3");
  EXPECT_EQ(presented_key("", "Basic " + crypto::base64("anyone:k4"), scratch), "k4");
  EXPECT_EQ(presented_key("", "Basic " + crypto::base64("a:b:c"), scratch), "b:c");
  EXPECT_EQ(presented_key("", "Basic " + crypto::base64("nocolon"), scratch), "");
  EXPECT_EQ(presented_key("", "Basic !!!", scratch), "");
  EXPECT_EQ(presented_key("", "Digest k5", scratch), "");
  EXPECT_EQ(presented_key("", "Bearer", scratch), "");
  EXPECT_EQ(presented_key("", "", scratch), "");
}

TEST(SeriesMetric, LabelsAreSortedAndEscaped) {
  std::string m;
  Label labels[] = {{"zone", "b"}, {"path", "/a \"q\"\\\n"}, {"code", "200"}};
  append_series_metric(m, "http_requests_total", labels);
  EXPECT_EQ(m, R"(http_requests_total{code="200",path="/a \"q\"\\\n",zone="b"})");
  EXPECT_STREQ(metric_problem(m), "");
  m.clear();
  append_series_metric(m, "up", {});
  EXPECT_EQ(m, "up");
}

TEST(SeriesMetric, MetricProblemNamesEachBreak) {
  EXPECT_STREQ(metric_problem("cpu.load"), "");
  EXPECT_STREQ(metric_problem(R"(m{a="1",b="x,y=}"})"), "");
  for (const char* bad : {"", "{a=\"1\"}", "m{", "m{}", "m{a=1}", "m{a=\"1\"", R"(m{b="1",a="2"})",
                          R"(m{a="1",a="2"})", R"(m{a="1"b="2"})", R"(m{a="\q"})", "m{a=\"\x01\"}", "sp ace",
                          R"(m{a="1"}x)"}) {
    EXPECT_STRNE(metric_problem(bad), "") << bad;
  }
  EXPECT_STRNE(metric_problem(std::string(600, 'm')), "");
  EXPECT_STREQ(metric_problem(std::string(600, 'm'), 1000), "name longer than 128 characters");
}

class Sink : public ::testing::Test {
 protected:
  static constexpr TimeNs kNow = 1'800'000'000 * kNsPerSec;
  void SetUp() override { sink.reset(kNow); }
  SeriesMapping mapping;
  Limits limits;
  SampleSink sink{mapping, limits};
};

TEST_F(Sink, FirstDeviceLabelWinsAndLeavesTheMetric) {
  Label a[] = {{"instance", "i-1"}, {"job", "node"}, {"host", "h-1"}};
  sink.add("up", a, kNow, 1);
  Label b[] = {{"host", "h-1"}, {"job", "node"}};
  sink.add("up", b, kNow, 2);
  ASSERT_EQ(sink.groups().size(), 2u);
  EXPECT_EQ(sink.groups()[0].device, "i-1");
  EXPECT_EQ(sink.groups()[0].points[0].metric, R"(up{host="h-1",job="node"})");
  EXPECT_EQ(sink.groups()[1].device, "h-1");
  EXPECT_EQ(sink.groups()[1].points[0].metric, R"(up{job="node"})");
  EXPECT_EQ(sink.accepted(), 2u);
}

TEST_F(Sink, DifferentLabelSetsStayDifferentSeries) {
  Label a[] = {{"host", "h"}, {"cpu", "0"}};
  Label b[] = {{"host", "h"}, {"cpu", "1"}};
  Label c[] = {{"host", "h"}, {"core", "0"}};
  sink.add("cpu", a, kNow, 1);
  sink.add("cpu", b, kNow, 1);
  sink.add("cpu", c, kNow, 1);
  ASSERT_EQ(sink.groups().size(), 1u);
  const auto& p = sink.groups()[0].points;
  ASSERT_EQ(p.size(), 3u);
  EXPECT_NE(p[0].metric, p[1].metric);
  EXPECT_NE(p[0].metric, p[2].metric);
}

TEST_F(Sink, NoDeviceLabelIsRejectedUnlessThereIsADefault) {
  Label a[] = {{"job", "x"}};
  sink.add("up", a, kNow, 1);
  EXPECT_EQ(sink.accepted(), 0u);
  ASSERT_EQ(sink.rejected(), 1u);
  EXPECT_NE(sink.reasons()[0].find(R"(up{job="x"}: no device label)"), std::string::npos) << sink.reasons()[0];
  mapping.default_device = "fleet";
  sink.add("up", a, kNow, 1);
  ASSERT_EQ(sink.groups().size(), 1u);
  EXPECT_EQ(sink.groups()[0].device, "fleet");
}

TEST_F(Sink, BadSamplesAreDroppedWithReasonsAndTheRestKept) {
  Label ok[] = {{"host", "h"}};
  Label bad_device[] = {{"host", "h h"}};
  sink.add("m", ok, kNow, std::nan(""));
  sink.add("m", ok, kNow - 30 * 86400 * kNsPerSec, 1);
  sink.add("m", bad_device, kNow, 1);
  sink.add("bad name", ok, kNow, 1);
  sink.add("m", ok, kNow, 7);
  EXPECT_EQ(sink.accepted(), 1u);
  EXPECT_EQ(sink.rejected(), 4u);
  std::string s = sink.summary();
  EXPECT_NE(s.find("4 of 5 samples rejected"), std::string::npos) << s;
  EXPECT_NE(s.find("h/m: value: not a finite number"), std::string::npos) << s;
  EXPECT_NE(s.find("h/m: ts:"), std::string::npos) << s;
  EXPECT_NE(s.find("device: not a valid name"), std::string::npos) << s;
  EXPECT_NE(s.find("h/bad name: metric:"), std::string::npos) << s;
  EXPECT_EQ(sink.groups()[0].points[0].value, 7);
}

TEST_F(Sink, ResetForgetsTheLastRequest) {
  Label a[] = {{"host", "h"}};
  sink.add("m", a, kNow, 1);
  sink.reject("x");
  sink.reset(kNow);
  EXPECT_EQ(sink.groups().size(), 0u);
  EXPECT_EQ(sink.accepted() + sink.rejected(), 0u);
  EXPECT_EQ(sink.summary(), "");
  sink.add("m", a, kNow, 2);
  ASSERT_EQ(sink.groups().size(), 1u);
  ASSERT_EQ(sink.groups()[0].points.size(), 1u);
  EXPECT_EQ(sink.groups()[0].points[0].value, 2);
}

}  // namespace
}  // namespace ep::ingest
