// The Prometheus remote-write and OTLP receivers' parsers and answers, called directly
// (the process tests in prometheus_test.cpp and otel_test.cpp use the real clients).
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <map>

#include "google/status.pb.h"
#include "otlp.h"
#include "otlp/metrics.pb.h"
#include "prompb/remote.pb.h"
#include "remote_write.h"

namespace ep::ingest {
namespace {

namespace bhttp = boost::beast::http;

constexpr TimeNs kNow = 1767225600LL * kNsPerSec;
constexpr std::int64_t kNowMs = kNow / 1'000'000;

http::Request request(std::string_view content_type) {
  http::Request req{bhttp::verb::post, "/", 11};
  req.set(bhttp::field::content_type, std::string(content_type));
  return req;
}

// device/metric -> [(ts, value)] of the sink's groups.
std::map<std::string, std::vector<std::pair<TimeNs, double>>> points_of(const SampleSink& sink) {
  std::map<std::string, std::vector<std::pair<TimeNs, double>>> out;
  for (const auto& g : sink.groups())
    for (const auto& p : g.points) out[std::string(g.device) + "/" + std::string(p.metric)].emplace_back(p.ts, p.value);
  return out;
}

class Parsers : public ::testing::Test {
 protected:
  void SetUp() override { sink_.reset(kNow); }
  SeriesMapping mapping_;
  Limits limits_;
  SampleSink sink_{mapping_, limits_};
};

void add_label(prometheus::TimeSeries* ts, const std::string& k, const std::string& v) {
  auto* l = ts->add_labels();
  l->set_name(k);
  l->set_value(v);
}

void add_sample(prometheus::TimeSeries* ts, std::int64_t ms, double v) {
  auto* s = ts->add_samples();
  s->set_timestamp(ms);
  s->set_value(v);
}

TEST_F(Parsers, RemoteWriteSeriesBecomeLabelledMetricsOfTheirInstance) {
  prometheus::WriteRequest wr;
  auto* ts = wr.add_timeseries();
  add_label(ts, "__name__", "node_load1");
  add_label(ts, "instance", "edge-7:9100");
  add_label(ts, "job", "node");
  add_sample(ts, kNowMs - 2000, 0.5);
  add_sample(ts, kNowMs - 1000, 0.75);
  auto* up = wr.add_timeseries();
  add_label(up, "job", "node");
  add_label(up, "__name__", "up");
  add_label(up, "instance", "edge-8:9100");
  add_sample(up, kNowMs, 1);
  ASSERT_TRUE(parse_remote_write(request("application/x-protobuf"), wr.SerializeAsString(), sink_).is_ok());
  auto got = points_of(sink_);
  using P = std::vector<std::pair<TimeNs, double>>;
  EXPECT_EQ(got["edge-7:9100/node_load1{job=\"node\"}"], (P{{kNow - 2 * kNsPerSec, 0.5}, {kNow - kNsPerSec, 0.75}}));
  EXPECT_EQ(got["edge-8:9100/up{job=\"node\"}"], (P{{kNow, 1.0}}));
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(sink_.rejected(), 0u);
}

TEST_F(Parsers, RemoteWriteSkipsStalenessMarkersAndRejectsTheRestByName) {
  prometheus::WriteRequest wr;
  auto* ts = wr.add_timeseries();
  add_label(ts, "__name__", "up");
  add_label(ts, "instance", "a");
  add_sample(ts, kNowMs - 1000, 1);
  add_sample(ts, kNowMs, std::bit_cast<double>(std::uint64_t{0x7ff0000000000002}));  // stale
  add_sample(ts, kNowMs, std::nan(""));                                              // another NaN
  ts->add_histograms()->set_timestamp(kNowMs);
  auto* noname = wr.add_timeseries();
  add_label(noname, "instance", "a");
  add_sample(noname, kNowMs, 3);
  ASSERT_TRUE(parse_remote_write(request("application/x-protobuf"), wr.SerializeAsString(), sink_).is_ok());
  EXPECT_EQ(sink_.accepted(), 1u) << "the valid sample is kept";
  EXPECT_EQ(sink_.rejected(), 3u) << "a NaN that is not the marker, the histogram, the nameless series";
  EXPECT_EQ(sink_.summary(),
            "3 of 4 samples rejected: a/up: value: not a finite number; up{instance=\"a\"}: native histograms are "
            "not stored (send_native_histograms: false); {instance=\"a\"}: no __name__ label");
}

TEST_F(Parsers, RemoteWriteUnreadableBodiesAreErrorsNamingWhy) {
  prometheus::WriteRequest wr;
  auto* ts = wr.add_timeseries();
  add_label(ts, "__name__", "up");
  add_sample(ts, kNowMs, 1);
  std::string body = wr.SerializeAsString();
  Status s = parse_remote_write(request("application/x-protobuf"), body.substr(0, body.size() - 3), sink_);
  EXPECT_EQ(s.message(),
            "remote write: not a protobuf WriteRequest (truncated or corrupt; the body must be snappy-compressed "
            "with Content-Encoding: snappy)");
  s = parse_remote_write(request("application/x-protobuf;proto=io.prometheus.write.v2.Request"), body, sink_);
  EXPECT_EQ(s.message(),
            "Content-Type: proto=io.prometheus.write.v2.Request: only remote write 1.0 (prometheus.WriteRequest) "
            "is read here");
  EXPECT_TRUE(parse_remote_write(request("application/x-protobuf; proto=prometheus.WriteRequest"), body, sink_));
}

TEST_F(Parsers, RemoteWriteAnswersAsTheSpecSays) {
  http::Request req = request("application/x-protobuf");
  Outcome ok;
  ok.status = 202;
  EXPECT_EQ(answer_remote_write(req, ok).result_int(), 204u);
  Outcome partial = ok;
  partial.rejected = 2;
  partial.detail = "2 of 5 samples rejected: x";
  auto res = answer_remote_write(req, partial);
  EXPECT_EQ(res.result_int(), 400u) << "rejected samples: permanent, the sender must not retry them";
  EXPECT_EQ(res.body(), "2 of 5 samples rejected: x (the other samples were stored)\n");
  Outcome busy;
  busy.status = 503;
  busy.error = "unavailable";
  busy.detail = "archive";
  busy.retry_after = 1;
  res = answer_remote_write(req, busy);
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_EQ(res.body(), "unavailable: archive\n");
}

void set_attr(otlp::KeyValue* kv, const std::string& k, const std::string& v) {
  kv->set_key(k);
  kv->mutable_value()->set_string_value(v);
}

otlp::ExportMetricsServiceRequest otlp_request() {
  otlp::ExportMetricsServiceRequest req;
  auto* rm = req.add_resource_metrics();
  set_attr(rm->mutable_resource()->add_attributes(), "service.instance.id", "pump-3");
  set_attr(rm->mutable_resource()->add_attributes(), "site", "north");
  auto* sm = rm->add_scope_metrics();
  sm->mutable_scope()->set_name("meter");
  auto* g = sm->add_metrics();
  g->set_name("temp");
  g->set_unit("Cel");
  auto* p = g->mutable_gauge()->add_data_points();
  p->set_time_unix_nano(static_cast<std::uint64_t>(kNow));
  p->set_as_double(21.5);
  set_attr(p->add_attributes(), "site", "south");  // wins over the resource's
  auto* c = sm->add_metrics();
  c->set_name("requests");
  auto* cp = c->mutable_sum()->add_data_points();
  cp->set_time_unix_nano(static_cast<std::uint64_t>(kNow));
  cp->set_as_int(12);
  auto* ok = cp->add_attributes();
  ok->set_key("ok");
  ok->mutable_value()->set_bool_value(true);
  auto* gap = c->mutable_sum()->add_data_points();  // no recorded value: not a sample
  gap->set_time_unix_nano(static_cast<std::uint64_t>(kNow));
  gap->set_flags(1);
  auto* h = sm->add_metrics();
  h->set_name("latency");
  auto* hp = h->mutable_histogram()->add_data_points();
  hp->set_time_unix_nano(static_cast<std::uint64_t>(kNow));
  hp->set_count(4);
  hp->set_sum(2.5);
  auto* s = sm->add_metrics();
  s->set_name("size");
  auto* sp = s->mutable_summary()->add_data_points();
  sp->set_time_unix_nano(static_cast<std::uint64_t>(kNow));
  sp->set_count(3);
  sp->set_sum(30);
  auto* q = sp->add_quantile_values();
  q->set_quantile(0.5);
  q->set_value(9);
  auto* bad = sm->add_metrics();
  bad->set_name("late");
  bad->mutable_gauge()->add_data_points()->set_as_double(1);  // no time
  return req;
}

void expect_otlp_points(const SampleSink& sink) {
  auto got = points_of(sink);
  using P = std::vector<std::pair<TimeNs, double>>;
  EXPECT_EQ(got["pump-3/temp{site=\"south\"}"], (P{{kNow, 21.5}}));
  EXPECT_EQ(got["pump-3/requests{ok=\"true\",site=\"north\"}"], (P{{kNow, 12.0}}));
  EXPECT_EQ(got["pump-3/latency_count{site=\"north\"}"], (P{{kNow, 4.0}}));
  EXPECT_EQ(got["pump-3/latency_sum{site=\"north\"}"], (P{{kNow, 2.5}}));
  EXPECT_EQ(got["pump-3/size_count{site=\"north\"}"], (P{{kNow, 3.0}}));
  EXPECT_EQ(got["pump-3/size_sum{site=\"north\"}"], (P{{kNow, 30.0}}));
  EXPECT_EQ(got["pump-3/size{quantile=\"0.5\",site=\"north\"}"], (P{{kNow, 9.0}}));
  EXPECT_EQ(got.size(), 7u);
  EXPECT_EQ(sink.rejected(), 1u);
  EXPECT_EQ(sink.summary(), "1 of 8 samples rejected: late{service.instance.id=\"pump-3\",site=\"north\"}: timeUnixNano missing");
  ASSERT_EQ(sink.groups().size(), 1u);
  EXPECT_EQ(sink.groups()[0].points[0].unit, "Cel");
}

TEST_F(Parsers, OtlpProtobufPointsBecomeSamplesWithResourceThenPointLabels) {
  std::string body = otlp_request().SerializeAsString();
  ASSERT_TRUE(parse_otlp(request("application/x-protobuf"), body, sink_).is_ok());
  expect_otlp_points(sink_);
}

TEST_F(Parsers, OtlpJsonReadsTheSameAsProtobuf) {
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(otlp_request(), &json).ok());
  ASSERT_NE(json.find("\"timeUnixNano\":\""), std::string::npos) << json;  // int64 as strings
  // Unknown fields (exemplars with hex ids, newer fields) are ignored.
  json.replace(json.find("\"asDouble\""), 0,
               R"("exemplars":[{"traceId":"5b8efff798038103d269b633813fc60c","asDouble":1}],)");
  ASSERT_TRUE(parse_otlp(request("application/json; charset=utf-8"), json, sink_).is_ok());
  expect_otlp_points(sink_);
}

TEST_F(Parsers, OtlpUnreadableBodiesAreErrorsNamingWhy) {
  std::string body = otlp_request().SerializeAsString();
  Status s = parse_otlp(request("application/x-protobuf"), body.substr(0, body.size() - 5), sink_);
  EXPECT_EQ(s.message(), "OTLP protobuf: not an ExportMetricsServiceRequest (truncated or corrupt)");
  s = parse_otlp(request("application/json"), R"({"resourceMetrics":[{"scopeMetrics":5}]})", sink_);
  EXPECT_EQ(s.message().rfind("OTLP JSON: not an ExportMetricsServiceRequest: ", 0), 0u) << s.message();
}

TEST_F(Parsers, OtlpAnswersInTheRequestsEncoding) {
  Outcome partial;
  partial.status = 202;
  partial.rejected = 1;
  partial.detail = "1 of 8 samples rejected: why";
  auto res = answer_otlp(request("application/x-protobuf"), partial);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[bhttp::field::content_type], "application/x-protobuf");
  otlp::ExportMetricsServiceResponse r;
  ASSERT_TRUE(r.ParseFromString(res.body()));
  EXPECT_EQ(r.partial_success().rejected_data_points(), 1);
  EXPECT_EQ(r.partial_success().error_message(), "1 of 8 samples rejected: why");

  Outcome ok;
  ok.status = 202;
  res = answer_otlp(request("application/json"), ok);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "{}");

  Outcome quota;
  quota.status = 429;
  quota.error = "quota_exceeded";
  quota.detail = "quota of 10 points/minute exceeded";
  quota.retry_after = 6;
  res = answer_otlp(request("application/json"), quota);
  EXPECT_EQ(res.result_int(), 429u);
  EXPECT_EQ(res[bhttp::field::retry_after], "6");
  google::rpc::Status st;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(res.body(), &st).ok()) << res.body();
  EXPECT_EQ(st.code(), 8);  // RESOURCE_EXHAUSTED
  EXPECT_EQ(st.message(), "quota_exceeded: quota of 10 points/minute exceeded");
}

// The sink remembers each label set's device and metric across requests: the second
// request gets the same series, its own groups, and a rejected label set is rejected again.
TEST_F(Parsers, SampleSinkSeriesAreTheSameAcrossRequests) {
  Label good[] = {{"job", "x"}, {"instance", "edge-1"}};
  Label bad[] = {{"job", "x"}};  // no device label
  Label other[] = {{"device", "edge-0"}};
  for (int request = 0; request < 3; ++request) {
    sink_.reset(kNow);
    sink_.add("up", bad, kNow, 1);
    if (request == 1) sink_.add("other", other, kNow, 1);  // another device's group first
    sink_.add("up", good, kNow - request, request);
    sink_.add("up", good, kNow, std::nan(""));
    auto got = points_of(sink_);
    using P = std::vector<std::pair<TimeNs, double>>;
    EXPECT_EQ(got["edge-1/up{job=\"x\"}"], (P{{kNow - request, double(request)}})) << request;
    EXPECT_EQ(got.size(), request == 1 ? 2u : 1u);
    ASSERT_EQ(sink_.groups().size(), got.size());
    EXPECT_EQ(sink_.groups().back().device, "edge-1");
    EXPECT_EQ(sink_.summary(),
              std::string(request == 1 ? "2 of 4" : "2 of 3") +
                  " samples rejected: up{job=\"x\"}: no device label (looked for --device-label; set "
                  "--default-device); edge-1/up{job=\"x\"}: value: not a finite number");
  }
}

TEST(MediaTypes, ParametersAndCaseAsideOneOfTheList) {
  EXPECT_TRUE(media_type_accepted("Application/JSON; charset=utf-8", "application/x-protobuf,application/json"));
  EXPECT_TRUE(media_type_accepted("application/x-protobuf", "application/x-protobuf"));
  EXPECT_FALSE(media_type_accepted("text/plain", "application/x-protobuf,application/json"));
  EXPECT_FALSE(media_type_accepted("", "application/json"));
  EXPECT_TRUE(media_type_accepted("", ""));
}

}  // namespace
}  // namespace ep::ingest
