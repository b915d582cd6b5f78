// The text format parsers (text_formats.h): Influx line protocol, Prometheus text,
// logfmt, syslog and CSV with a header; every class of bad input, and valid lines kept
// around bad ones.
#include "text_formats.h"

#include <gtest/gtest.h>

#include <map>

#include "ep/time.h"

namespace ep::ingest {
namespace {

constexpr TimeNs kNow = 1767225600LL * kNsPerSec;  // 2026-01-01T00:00:00Z

class TextFormats : public ::testing::Test {
 protected:
  TextFormats() { limits_.time_bounds = false; }
  void SetUp() override { sink_.reset(kNow); }
  // "device/metric" -> value, and the ts of each.
  std::map<std::string, double> values() const {
    std::map<std::string, double> out;
    for (const auto& g : sink_.groups())
      for (const auto& p : g.points) out[std::string(g.device) + "/" + std::string(p.metric)] = p.value;
    return out;
  }
  std::map<std::string, TimeNs> times() const {
    std::map<std::string, TimeNs> out;
    for (const auto& g : sink_.groups())
      for (const auto& p : g.points) out[std::string(g.device) + "/" + std::string(p.metric)] = p.ts;
    return out;
  }
  Limits limits_;
  SeriesMapping mapping_;
  SampleSink sink_{mapping_, limits_};
};

// ---- Influx line protocol

TEST_F(TextFormats, InfluxFieldsBecomeMeasurementFieldWithTagsAsLabelsAndHostAsDevice) {
  ASSERT_TRUE(parse_influx_line("cpu,host=h1,cpu=cpu0 idle=93.5,user=2i,n=7u 1767225600000000000", 1, sink_));
  auto v = values();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v["h1/cpu_idle{cpu=\"cpu0\"}"], 93.5);
  EXPECT_EQ(v["h1/cpu_user{cpu=\"cpu0\"}"], 2);
  EXPECT_EQ(v["h1/cpu_n{cpu=\"cpu0\"}"], 7);
  EXPECT_EQ(times()["h1/cpu_idle{cpu=\"cpu0\"}"], kNow);
}

TEST_F(TextFormats, InfluxEscapesInMeasurementTagsAndFieldKeys) {
  ASSERT_TRUE(parse_influx_line(R"(my\ meas,host=h1,pa\ th=a\,b\=c\ d fi\=eld=1 1)", 1, sink_));
  auto v = values();
  ASSERT_EQ(v.size(), 1u) << sink_.summary();
  // Characters a metric name may not hold become '_' (Telegraf's Prometheus convention).
  EXPECT_EQ(v.begin()->first, "h1/my_meas_fi_eld{pa_th=\"a,b=c d\"}");
}

TEST_F(TextFormats, InfluxStringAndBooleanFieldsAreSkipped) {
  ASSERT_TRUE(parse_influx_line(R"(m,host=h s="a \"q\" b, c=1",b=true,B=F,x=1.5)", 1, sink_));
  auto v = values();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v["h/m_x"], 1.5);
}

TEST_F(TextFormats, InfluxMissingTimestampIsReceiveTimeAndPrecisionScales) {
  ASSERT_TRUE(parse_influx_line("a,host=h v=1", 1, sink_));
  ASSERT_TRUE(parse_influx_line("b,host=h v=1 1767225600", kNsPerSec, sink_));
  ASSERT_TRUE(parse_influx_line("c,host=h v=1 1767225600123", 1000000, sink_));
  ASSERT_TRUE(parse_influx_line("d,host=h v=1 1767225600123456", 1000, sink_));
  auto t = times();
  EXPECT_EQ(t["h/a_v"], kNow);
  EXPECT_EQ(t["h/b_v"], kNow);
  EXPECT_EQ(t["h/c_v"], kNow + 123000000);
  EXPECT_EQ(t["h/d_v"], kNow + 123456000);
}

TEST_F(TextFormats, InfluxCommentsAndBlankLinesAddNothing) {
  EXPECT_TRUE(parse_influx_line("# a comment", 1, sink_));
  EXPECT_TRUE(parse_influx_line("   ", 1, sink_));
  EXPECT_TRUE(parse_influx_line("", 1, sink_));
  EXPECT_EQ(sink_.accepted() + sink_.rejected(), 0u);
}

TEST_F(TextFormats, InfluxBadLinesNameTheColumnAndAddNothing) {
  struct Case {
    const char* line;
    const char* want;
  } cases[] = {
      {"m,host=h", "column 9: missing fields"},
      {"m,host=h ", "column 10: missing fields"},
      {"m,host v=1", "column 7: missing tag value"},
      {"m,=x v=1", "column 3: missing tag key"},
      {"m,host= v=1", "column 8: missing tag value"},
      {"m v", "column 4: missing field value"},
      {"m v=", "column 5: missing field value"},
      {"m =1", "column 3: missing field key"},
      {R"(m s="abc)", "column 5: unterminated string field value"},
      {R"(m s="abc\")", "column 5: unterminated string field value"},
      {"m v=1x", "column 5: invalid field value"},
      {"m v=12.5i", "column 5: invalid integer"},
      {"m v=-1u", "column 5: invalid unsigned"},
      {"m v=nan", "column 5: invalid field value"},
      {"m v=1 12a", "column 7: invalid timestamp"},
      {"m v=1 99999999999999999999", "column 7: invalid timestamp"},
      {"m v=1 1 2", "column 9: text after the timestamp"},
      {"m v=1;w=2", "column 5: invalid field value"},
  };
  for (const auto& c : cases) {
    Status s = parse_influx_line(c.line, 1, sink_);
    ASSERT_FALSE(s) << c.line;
    EXPECT_NE(s.message().find("influx line protocol: "), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(c.want), std::string::npos) << c.line << " -> " << s.message();
  }
  EXPECT_EQ(sink_.accepted(), 0u);
}

TEST_F(TextFormats, InfluxTimestampOverflowingThePrecisionIsRejected) {
  Status s = parse_influx_line("m,host=h v=1 9223372036854775", kNsPerSec, sink_);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("invalid timestamp"), std::string::npos);
}

TEST_F(TextFormats, InfluxBodyKeepsValidLinesAroundBadOnesAndNamesTheLineNumber) {
  parse_influx_body("a,host=h v=1 1\nbroken\n\n# c\nb,host=h v=2 2\nc,host=h s=\"x 3\n", 1, sink_);
  auto v = values();
  EXPECT_EQ(v.size(), 2u);
  EXPECT_EQ(v["h/a_v"], 1);
  EXPECT_EQ(v["h/b_v"], 2);
  EXPECT_EQ(sink_.rejected(), 2u);
  ASSERT_EQ(sink_.reasons().size(), 2u);
  EXPECT_EQ(sink_.reasons()[0].rfind("line 2: ", 0), 0u) << sink_.reasons()[0];
  EXPECT_EQ(sink_.reasons()[1].rfind("line 6: ", 0), 0u) << sink_.reasons()[1];
}

TEST_F(TextFormats, InfluxWithoutADeviceTagIsRejectedPerSample) {
  ASSERT_TRUE(parse_influx_line("m,room=1 v=1", 1, sink_));
  EXPECT_EQ(sink_.accepted(), 0u);
  EXPECT_EQ(sink_.rejected(), 1u);
  EXPECT_NE(sink_.reasons()[0].find("no device label"), std::string::npos);
}

TEST_F(TextFormats, PrecisionNames) {
  EXPECT_EQ(parse_epoch_unit("ns").value_or(0), 1);
  EXPECT_EQ(parse_epoch_unit("us").value_or(0), 1000);
  EXPECT_EQ(parse_epoch_unit("ms").value_or(0), 1000000);
  EXPECT_EQ(parse_epoch_unit("s").value_or(0), kNsPerSec);
  EXPECT_EQ(parse_epoch_unit("n").value_or(0), 0);
  EXPECT_EQ(parse_epoch_unit("h").value_or(0), 0);
  EXPECT_EQ(parse_epoch_unit("n", true).value_or(0), 1);
  EXPECT_EQ(parse_epoch_unit("u", true).value_or(0), 1000);
  EXPECT_EQ(parse_epoch_unit("m", true).value_or(0), 60 * kNsPerSec);
  EXPECT_EQ(parse_epoch_unit("h", true).value_or(0), 3600 * kNsPerSec);
  EXPECT_EQ(parse_epoch_unit("d", true).value_or(0), 0);
}

// ---- Prometheus text

TEST_F(TextFormats, PromSamplesWithLabelsEscapesAndMillisecondTimestamps) {
  EXPECT_TRUE(parse_prom_line("# HELP x help", sink_));
  EXPECT_TRUE(parse_prom_line("# TYPE x gauge", sink_));
  ASSERT_TRUE(parse_prom_line(R"(x{instance="d1",path="a\"b\\c\nd"} 1.5 1767225600500)", sink_));
  ASSERT_TRUE(parse_prom_line(R"(y{ instance = "d1" , } -2e3)", sink_));
  ASSERT_TRUE(parse_prom_line(R"(z{instance="d1"} +Inf)", sink_));  // not finite: rejected as a sample
  auto v = values();
  EXPECT_EQ(v.size(), 2u);
  EXPECT_EQ(v["d1/x{path=\"a\\\"b\\\\c\\nd\"}"], 1.5);
  EXPECT_EQ(v["d1/y"], -2000);
  EXPECT_EQ(times()["d1/x{path=\"a\\\"b\\\\c\\nd\"}"], kNow + 500000000);
  EXPECT_EQ(times()["d1/y"], kNow);
  EXPECT_EQ(sink_.rejected(), 1u);
}

TEST_F(TextFormats, PromBadLinesNameTheColumn) {
  struct Case {
    const char* line;
    const char* want;
  } cases[] = {
      {"1x 2", "column 1: expected a metric name"},
      {"x{a=\"1\" 2", "column 9: expected ',' or '}'"},
      {"x{a=1} 2", "column 5: expected a quoted label value"},
      {"x{a=\"1} 2", "column 5: unterminated label value"},
      {"x{a=\"\\q\"} 2", "column 6: invalid escape"},
      {"x{a} 2", "column 4: expected '='"},
      {"x", "column 2: expected a space and a value"},
      {"x abc", "column 3: invalid value"},
      {"x 1 1.5", "column 5: invalid timestamp"},
      {"x 1 2 3", "column 7: text after the timestamp"},
  };
  for (const auto& c : cases) {
    Status s = parse_prom_line(c.line, sink_);
    ASSERT_FALSE(s) << c.line;
    EXPECT_NE(s.message().find("prometheus text: " + std::string(c.want)), std::string::npos)
        << c.line << " -> " << s.message();
  }
  EXPECT_EQ(sink_.accepted() + sink_.rejected(), 0u);
}

// ---- logfmt

TEST_F(TextFormats, LogfmtEveryNumericKeyIsAMetricOfTheDevice) {
  KeyValueOptions o;
  ASSERT_TRUE(parse_logfmt_line(R"(ts=2026-01-01T00:00:01Z level=info device=d1 temp=21.5 hum=40 msg="a = b" up)", o, sink_));
  auto v = values();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v["d1/temp"], 21.5);
  EXPECT_EQ(v["d1/hum"], 40);
  EXPECT_EQ(times()["d1/temp"], kNow + kNsPerSec);
}

TEST_F(TextFormats, LogfmtNamedKeysForDeviceMetricValueUnitAndEpochTime) {
  KeyValueOptions o;
  o.device_key = "meter";
  o.metric_key = "name";
  o.value_key = "v";
  o.unit_key = "u";
  o.time_key = "at";
  o.time_unit = 1000000;
  ASSERT_TRUE(parse_logfmt_line("meter=m7 name=voltage v=229.5 u=V at=1767225600250 other=3", o, sink_));
  ASSERT_EQ(sink_.groups().size(), 1u);
  const auto& p = sink_.groups()[0].points.at(0);
  EXPECT_EQ(sink_.groups()[0].device, "m7");
  EXPECT_EQ(p.metric, "voltage");
  EXPECT_EQ(p.value, 229.5);
  EXPECT_EQ(p.unit, "V");
  EXPECT_EQ(p.ts, kNow + 250000000);
  EXPECT_EQ(sink_.accepted(), 1u);
}

TEST_F(TextFormats, LogfmtBadInput) {
  KeyValueOptions o;
  struct Case {
    const char* line;
    const char* want;
  } cases[] = {
      {R"(device=d1 msg="open)", "logfmt: column 15: unterminated quoted value"},
      {"device=d1 =5", "logfmt: column 11: '=' without a key"},
      {R"(device=d1 a="x"b)", "logfmt: column 16: text after a closing quote"},
      {R"(device=d1 a=x"y)", "logfmt: column 14: quote inside an unquoted value"},
      {"device=d1 level=info", "no numeric key=value pair"},
      {"temp=1", "no device"},
      {"device=d1 ts=yesterday temp=1", "ts=yesterday: not an RFC 3339 time"},
  };
  for (const auto& c : cases) {
    Status s = parse_logfmt_line(c.line, o, sink_);
    ASSERT_FALSE(s) << c.line;
    EXPECT_NE(s.message().find(c.want), std::string::npos) << c.line << " -> " << s.message();
  }
  o.metric_key = "name";
  Status s = parse_logfmt_line("device=d1 name=x value=warm", o, sink_);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("value=warm: not a number"), std::string::npos) << s.message();
  EXPECT_EQ(sink_.accepted(), 0u);
}

// ---- syslog

TEST_F(TextFormats, Syslog5424StructuredDataAndMessagePairsWithHostnameAsDevice) {
  KeyValueOptions o;
  ASSERT_TRUE(parse_syslog_line(
      R"(<165>1 2026-01-01T00:00:02Z gw-3 meterd 42 ID47 [meter@32473 volts="229.5" note="a \"b\" \]"][x@1 amps="1.5"] power=345 status=ok)",
      o, sink_));
  auto v = values();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v["gw-3/volts"], 229.5);
  EXPECT_EQ(v["gw-3/amps"], 1.5);
  EXPECT_EQ(v["gw-3/power"], 345);
  EXPECT_EQ(times()["gw-3/power"], kNow + 2 * kNsPerSec);
}

TEST_F(TextFormats, Syslog3164AndRsyslogLinesWithTheirTags) {
  KeyValueOptions o;
  ASSERT_TRUE(parse_syslog_line("<13>Dec 31 23:59:58 edge1 sensord[77]: temp=20.5", o, sink_));
  ASSERT_TRUE(parse_syslog_line("Jan  1 00:00:01 edge2 sensord: temp=21", o, sink_));
  ASSERT_TRUE(parse_syslog_line("2026-01-01T00:00:03.5+00:00 edge3 sensord: temp=22", o, sink_));
  auto t = times();
  EXPECT_EQ(t["edge1/temp"], kNow - 2 * kNsPerSec);  // last year's December
  EXPECT_EQ(t["edge2/temp"], kNow + kNsPerSec);
  EXPECT_EQ(t["edge3/temp"], kNow + 3500000000);
  EXPECT_EQ(values()["edge3/temp"], 22);
}

TEST_F(TextFormats, SyslogBadInput) {
  KeyValueOptions o;
  struct Case {
    const char* line;
    const char* want;
  } cases[] = {
      {"<1x>1 - h a p m - x=1", "syslog: column 3: invalid <PRI>"},
      {"<13>1 yesterday h a p m - x=1", "syslog: column 7: invalid RFC 5424 TIMESTAMP"},
      {"<13>1 - h a p m [id x=1] y=2", "syslog: column 21: expected PARAM-NAME=\"value\""},
      {"<13>1 - h a p m [id x=\"1] y=2", "unterminated structured data value"},
      {"<13>1 - h a p m x=1", "syslog: column 17: expected structured data"},
      {"<13>Foo  1 00:00:00 h x=1", "expected a timestamp"},
      {"<13>1 - h a p m - msg=\"open", "logfmt: column 23: unterminated quoted value"},
  };
  for (const auto& c : cases) {
    Status s = parse_syslog_line(c.line, o, sink_);
    ASSERT_FALSE(s) << c.line;
    EXPECT_NE(s.message().find(c.want), std::string::npos) << c.line << " -> " << s.message();
  }
  EXPECT_EQ(sink_.accepted(), 0u);
}

// ---- CSV with a header

TEST_F(TextFormats, CsvHeaderInAnyOrderWithAliases) {
  CsvLayout l;
  auto h = read_csv_header("value,Timestamp,metric,device", ',', l);
  ASSERT_TRUE(h.is_ok() && *h);
  ASSERT_TRUE(parse_csv_record("21.5,2026-01-01T00:00:00Z,temp,d1", l, 0, sink_));
  EXPECT_EQ(values()["d1/temp"], 21.5);
  EXPECT_EQ(times()["d1/temp"], kNow);
}

TEST_F(TextFormats, CsvWideLayoutWithDelimiterEpochTimesAndEmptyCells) {
  CsvLayout l;
  auto h = read_csv_header("ts;device;temp;humidity", ';', l);
  ASSERT_TRUE(h.is_ok() && *h);
  EXPECT_TRUE(l.wide);
  ASSERT_TRUE(parse_csv_record("1767225600;d1;21.5;40", l, kNsPerSec, sink_));
  ASSERT_TRUE(parse_csv_record("1767225601;d2;;41", l, kNsPerSec, sink_));
  auto v = values();
  EXPECT_EQ(v.size(), 3u);
  EXPECT_EQ(v["d1/temp"], 21.5);
  EXPECT_EQ(v["d1/humidity"], 40);
  EXPECT_EQ(v["d2/humidity"], 41);
  Status s = parse_csv_record("1767225601;d2;warm;41", l, kNsPerSec, sink_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "csv: field 3 (temp): not a number");
  s = parse_csv_record("2026-01-01T00:00:00Z;d2;1;41", l, kNsPerSec, sink_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "csv: field 1 (ts): not an integer epoch in --time-precision");
  EXPECT_EQ(sink_.accepted(), 3u);
}

TEST_F(TextFormats, CsvDataLineIsNotAHeaderAndBadHeadersSayWhy) {
  CsvLayout l;
  auto h = read_csv_header("d1,temp,2026-01-01T00:00:00Z,1", ',', l);
  ASSERT_TRUE(h.is_ok());
  EXPECT_FALSE(*h);
  h = read_csv_header("device,metric,ts", ',', l);
  ASSERT_FALSE(h.is_ok());
  EXPECT_NE(h.status().message().find("metric or value but not both"), std::string::npos);
  h = read_csv_header("device,ts,ts", ',', l);
  ASSERT_FALSE(h.is_ok());
  EXPECT_NE(h.status().message().find("named twice"), std::string::npos);
  h = read_csv_header("device,metric,ts,value,color", ',', l);
  ASSERT_FALSE(h.is_ok());
  EXPECT_NE(h.status().message().find("unknown column color"), std::string::npos);
}

TEST_F(TextFormats, CsvUnterminatedQuoteNamesTheByte) {
  CsvLayout l;
  Status s = parse_csv_record("d1,\"temp,2026-01-01T00:00:00Z,1", l, 0, sink_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "csv: field 2 (byte 4): unterminated quote");
}

// Without a header: device,metric,ts,value[,unit] (what --format csv read before headers).
TEST_F(TextFormats, CsvWithoutHeaderReadsTheFourOrFiveColumnLayout) {
  CsvLayout l;
  ASSERT_TRUE(parse_csv_record("meter-001,voltage,2025-11-24T15:59:00Z,229.5,V", l, 0, sink_));
  ASSERT_TRUE(parse_csv_record("d,m,2025-11-24 15:59:00,-1e2", l, 0, sink_));  // no offset: UTC
  ASSERT_TRUE(parse_csv_record(R"("q","m",2025-11-24T15:59:00Z, +7 ,"say ""hi""")", l, 0, sink_));
  EXPECT_EQ(values()["meter-001/voltage"], 229.5);
  EXPECT_EQ(values()["d/m"], -100);
  EXPECT_EQ(times()["d/m"], *parse_rfc3339("2025-11-24T15:59:00Z"));
  EXPECT_EQ(values()["q/m"], 7);
  std::string units;
  for (const auto& g : sink_.groups())
    for (const auto& p : g.points) units += std::string(p.unit) + "|";
  EXPECT_EQ(units, "V||say \"hi\"|");
}

TEST_F(TextFormats, CsvEachBadInputClassIsRejectedNamingTheField) {
  Limits strict;  // time bounds on, as ep-ingest runs by default
  strict.max_body_bytes = 200;
  SampleSink sink(mapping_, strict);
  sink.reset(*parse_rfc3339("2025-11-24T16:00:00Z"));
  CsvLayout l;
  std::vector<std::pair<std::string, std::string>> cases = {
      {"d,m,2025-11-24T15:59:00Z", "expected 4 or 5 fields (device,metric,ts,value[,unit]), got 3"},
      {"d,m,2025-11-24T15:59:00Z,1,V,x", "fields"},
      {"d d,m,2025-11-24T15:59:00Z,1", "device"},
      {",m,2025-11-24T15:59:00Z,1", "device"},
      {"d,,2025-11-24T15:59:00Z,1", "metric"},
      {"d,m,yesterday,1", "ts"},
      {"d,m,2020-01-01T00:00:00Z,1", "too far in the past"},
      {"d,m,2025-11-24T15:59:00Z,", "value"},
      {"d,m,2025-11-24T15:59:00Z,12abc", "not a number"},
      {"d,m,2025-11-24T15:59:00Z,nan", "value"},
      {"d,m,2025-11-24T15:59:00Z,1e999", "value"},
      {"d,m,2025-11-24T15:59:00Z,1,12345678901234567", "unit"},
      {"\"d,m,2025-11-24T15:59:00Z,1", "unterminated quote"},
      {"\"d\"x,m,2025-11-24T15:59:00Z,1", "text after closing quote"},
      {"d,m,2025-11-24T15:59:00Z,1,\xC3", "UTF-8"},
  };
  for (const auto& [in, want] : cases) {
    Status s = parse_csv_record(in, l, 0, sink);
    bool refused = !s || sink.rejected() > 0;
    EXPECT_TRUE(refused) << in;
    std::string why = !s ? s.message() : (sink.reasons().empty() ? "" : sink.reasons().back());
    EXPECT_NE(why.find(want), std::string::npos) << in << " -> " << why;
    sink.clear_rejects();
  }
  EXPECT_EQ(sink.accepted(), 0u);
}

}  // namespace
}  // namespace ep::ingest
