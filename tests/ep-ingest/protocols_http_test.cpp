// The remote-write and OTLP endpoints over HTTP with hostile or broken bodies: each error
// names what was wrong, in the protocol's answer, and valid samples around bad ones are kept.
#include <gtest/gtest.h>
#include <signal.h>
#include <snappy.h>

#include <cmath>

#include "ep/time.h"
#include "google/status.pb.h"
#include "harness.h"
#include "otlp/metrics.pb.h"
#include "prompb/remote.pb.h"

namespace ep::ingest::test {
namespace {

std::string snappy_of(const std::string& s) {
  std::string out;
  snappy::Compress(s.data(), s.size(), &out);
  return out;
}

// Two series of device edge-1, the second with a NaN sample between two good ones.
std::string write_request() {
  prometheus::WriteRequest wr;
  std::int64_t now_ms = now_ns() / 1'000'000;
  for (const char* name : {"temp", "hum"}) {
    auto* ts = wr.add_timeseries();
    auto* l = ts->add_labels();
    l->set_name("__name__");
    l->set_value(name);
    l = ts->add_labels();
    l->set_name("instance");
    l->set_value("edge-1");
    for (int i = 0; i < 3; ++i) {
      auto* s = ts->add_samples();
      s->set_timestamp(now_ms - 3000 + i * 1000);
      s->set_value(std::string(name) == "hum" && i == 1 ? std::nan("") : 20.0 + i);
    }
  }
  return wr.SerializeAsString();
}

class ProtocolsOverHttp : public KeyedTest {
 protected:
  std::map<std::string, std::string> headers(const std::string& type, const std::string& encoding = "") {
    std::map<std::string, std::string> h = {{"Authorization", "Bearer " + key_.key}, {"Content-Type", type}};
    if (!encoding.empty()) h["Content-Encoding"] = encoding;
    return h;
  }
};

TEST_F(ProtocolsOverHttp, RemoteWriteErrorsAreClearAndValidSamplesAroundBadOnesAreKept) {
  Server s(dir_, {"--keys", keys_path_, "--threads", "2"});
  Client c(s.port());
  std::string body = write_request();
  auto r = c.request("POST", "/api/v1/write", snappy_of(body), headers("application/x-protobuf", "snappy"));
  EXPECT_EQ(r.status, 400u) << "a rejected sample is permanent: Prometheus must not retry";
  EXPECT_EQ(r.body, "1 of 6 samples rejected: edge-1/hum: value: not a finite number (the other samples were stored)\n");

  std::string cut = snappy_of(body);
  cut.resize(cut.size() - 5);
  r = c.request("POST", "/api/v1/write", cut, headers("application/x-protobuf", "snappy"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, "invalid_payload: Content-Encoding snappy: corrupt or truncated block\n");
  r = c.request("POST", "/api/v1/write", snappy_of(body.substr(0, body.size() - 4)),
                headers("application/x-protobuf", "snappy"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body,
            "invalid_payload: remote write: not a protobuf WriteRequest (truncated or corrupt; the body must be "
            "snappy-compressed with Content-Encoding: snappy)\n");
  r = c.request("POST", "/api/v1/write", snappy_of(body), headers("text/plain", "snappy"));
  EXPECT_EQ(r.status, 415u);
  EXPECT_EQ(r.body,
            "unsupported_media_type: Content-Type: 'text/plain' is not read at /api/v1/write (application/x-protobuf)\n");
  r = c.request("POST", "/api/v1/write", snappy_of(body), {{"Content-Type", "application/x-protobuf"}});
  EXPECT_EQ(r.status, 401u);

  s.process().signal(SIGTERM);
  ASSERT_EQ(s.process().wait(), 0);
  auto lines = lines_of(s.process().out());
  ASSERT_EQ(lines.size(), 1u) << "only the first request stored anything";
  EXPECT_NE(lines[0].find(R"("source":"prometheus")"), std::string::npos);
  EXPECT_NE(lines[0].find(R"("raw_encoding":"base64")"), std::string::npos) << "the snappy body, as it came";
  for (std::string want : {R"("metric":"temp","ts")", R"("metric":"hum","ts")"}) {
    size_t n = 0;
    for (size_t at = lines[0].find(want); at != std::string::npos; at = lines[0].find(want, at + 1)) ++n;
    EXPECT_EQ(n, want.find("temp") != std::string::npos ? 3u : 2u) << want;
  }
}

TEST_F(ProtocolsOverHttp, OtlpErrorsAreGoogleRpcStatusAndPartialSuccessNamesTheRejected) {
  Server s(dir_, {"--keys", keys_path_, "--threads", "2"});
  Client c(s.port());
  otlp::ExportMetricsServiceRequest req;
  auto* rm = req.add_resource_metrics();
  auto* attr = rm->mutable_resource()->add_attributes();
  attr->set_key("host.name");
  attr->mutable_value()->set_string_value("edge-2");
  auto* m = rm->add_scope_metrics()->add_metrics();
  m->set_name("temp");
  for (double v : {21.0, static_cast<double>(INFINITY), 22.0}) {
    auto* p = m->mutable_gauge()->add_data_points();
    p->set_time_unix_nano(static_cast<std::uint64_t>(now_ns()) - 1000);
    p->set_as_double(v);
  }
  std::string body = req.SerializeAsString();
  auto r = c.request("POST", "/v1/metrics", body, headers("application/x-protobuf"));
  ASSERT_EQ(r.status, 200u) << r.body;
  otlp::ExportMetricsServiceResponse res;
  ASSERT_TRUE(res.ParseFromString(r.body));
  EXPECT_EQ(res.partial_success().rejected_data_points(), 1);
  EXPECT_EQ(res.partial_success().error_message(), "1 of 3 samples rejected: edge-2/temp: value: not a finite number");

  google::rpc::Status st;
  r = c.request("POST", "/v1/metrics", body.substr(0, body.size() - 3), headers("application/x-protobuf"));
  EXPECT_EQ(r.status, 400u);
  ASSERT_TRUE(st.ParseFromString(r.body));
  EXPECT_EQ(st.code(), 3);
  EXPECT_EQ(st.message(), "invalid_payload: OTLP protobuf: not an ExportMetricsServiceRequest (truncated or corrupt)");
  r = c.request("POST", "/v1/metrics", R"({"resourceMetrics":)", headers("application/json"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  EXPECT_NE(r.body.find(R"("message":"invalid_payload: OTLP JSON: not an ExportMetricsServiceRequest: )"),
            std::string::npos)
      << r.body;
  r = c.request("POST", "/v1/metrics", body, headers("application/grpc"));
  EXPECT_EQ(r.status, 415u);
  ASSERT_TRUE(st.ParseFromString(r.body));
  EXPECT_EQ(st.message(),
            "unsupported_media_type: Content-Type: 'application/grpc' is not read at /v1/metrics "
            "(application/x-protobuf,application/json)");
  r = c.request("POST", "/v1/metrics", body, {{"Content-Type", "application/x-protobuf"}});
  EXPECT_EQ(r.status, 401u);
  ASSERT_TRUE(st.ParseFromString(r.body));
  EXPECT_EQ(st.code(), 16);

  s.process().signal(SIGTERM);
  ASSERT_EQ(s.process().wait(), 0);
  auto lines = lines_of(s.process().out());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"("device":"edge-2")"), std::string::npos);
  EXPECT_NE(lines[0].find(R"("value":21.0})"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"("value":22.0})"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace ep::ingest::test
