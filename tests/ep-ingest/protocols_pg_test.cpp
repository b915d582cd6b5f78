// Remote write and OTLP through the archive into Postgres: ep-ingest --archive file://,
// then ep-load --follow into a real Postgres 15 (pg_virtualenv). Every sample sent is in
// datapoints once, under its device and labelled metric, with its value; a retried
// request (Prometheus resends after a 5xx) adds nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <snappy.h>

#include <map>
#include <set>
#include <tuple>

#include "ep/time.h"
#include "harness.h"
#include "otlp/metrics.pb.h"
#include "pg_fixture.h"
#include "prompb/remote.pb.h"

namespace ep::ingest::test {
namespace {

using Row = std::tuple<std::string, std::string, std::int64_t, double>;  // device, metric, ts ms, value

class ProtocolsIntoPostgres : public KeyedTest {
 protected:
  void SetUp() override {
    KeyedTest::SetUp();
    ASSERT_TRUE(db_.ok());
    db_.migrate();
    c_ = db_.connect();
    EP_ASSERT_OK(c_.run("INSERT INTO tenants (slug) VALUES ('acme')"));
  }
  eptest::TempDatabase db_;
  ep::pg::Conn c_;
};

TEST_F(ProtocolsIntoPostgres, EverySampleIsInDatapointsOnce) {
  std::set<Row> sent;
  std::int64_t base_ms = now_ns() / 1'000'000 - 60'000;
  prometheus::WriteRequest wr;
  for (std::string device : {"edge-1", "edge-2"}) {
    for (std::string name : {"temp", "hum"}) {
      auto* ts = wr.add_timeseries();
      for (auto [k, v] : {std::pair<std::string, std::string>{"__name__", name}, {"instance", device}, {"job", "x"}}) {
        auto* l = ts->add_labels();
        l->set_name(k);
        l->set_value(v);
      }
      for (int i = 0; i < 3; ++i) {
        auto* s = ts->add_samples();
        s->set_timestamp(base_ms + i * 1000);
        s->set_value(i + (name == "temp" ? 20.5 : 60.25));
        sent.insert({device, name + "{job=\"x\"}", base_ms + i * 1000, s->value()});
      }
    }
  }
  otlp::ExportMetricsServiceRequest otlp;
  auto* rm = otlp.add_resource_metrics();
  auto* attr = rm->mutable_resource()->add_attributes();
  attr->set_key("service.instance.id");
  attr->mutable_value()->set_string_value("edge-3");
  auto* m = rm->add_scope_metrics()->add_metrics();
  m->set_name("pumped.litres");
  auto* p = m->mutable_sum()->add_data_points();
  p->set_time_unix_nano(static_cast<std::uint64_t>(base_ms) * 1'000'000);
  p->set_as_int(12);
  sent.insert({"edge-3", "pumped.litres", base_ms, 12.0});

  std::string archive = "file://" + dir_ + "/archive";
  Server s(dir_, {"--keys", keys_path_, "--archive", archive, "--threads", "2"});
  Client c(s.port());
  std::string body;
  snappy::Compress(wr.SerializeAsString().data(), wr.ByteSizeLong(), &body);
  std::map<std::string, std::string> h = {{"Authorization", "Bearer " + key_.key},
                                          {"Content-Type", "application/x-protobuf"},
                                          {"Content-Encoding", "snappy"}};
  for (int attempt = 0; attempt < 2; ++attempt) {  // the second is a retry of the same request
    auto r = c.request("POST", "/api/v1/write", body, h);
    ASSERT_EQ(r.status, 204u) << r.body;
  }
  auto r = c.request("POST", "/v1/metrics", otlp.SerializeAsString(),
                     {{"X-API-Key", key_.key}, {"Content-Type", "application/x-protobuf"}});
  ASSERT_EQ(r.status, 200u) << r.body;

  eptest::Proc load({EP_LOAD_BIN, "--follow", archive, "--db", db_.url(), "--no-progress", "--poll-interval", "50ms"});
  // 2 requests x 2 devices + 1 OTLP request: 5 batch records.
  ASSERT_TRUE(eptest::eventually([&] {
    return eptest::count(c_, "SELECT count(*) FROM ingest_batches WHERE status = 'loaded'") == 5;
  }, 60000)) << load.err_so_far();
  load.kill(SIGTERM);
  EXPECT_EQ(load.wait(), 0) << load.err();
  s.process().signal(SIGTERM);
  EXPECT_EQ(s.process().wait(), 0);

  auto rows = c_.exec(
      "SELECT d.external_id, m.name, (extract(epoch FROM dp.ts) * 1000)::int8, dp.value "
      "FROM datapoints dp JOIN metrics m USING (tenant_id, metric_id) JOIN devices d USING (tenant_id, device_id)");
  ASSERT_TRUE(rows) << rows.status().message();
  std::set<Row> stored;
  for (int i = 0; i < rows->size(); ++i)
    stored.insert({rows->str(i, 0), rows->str(i, 1), rows->get_int(i, 2), std::stod(rows->str(i, 3))});
  EXPECT_EQ(rows->size(), static_cast<int>(sent.size())) << "each sample once";
  EXPECT_EQ(stored, sent);
}

}  // namespace
}  // namespace ep::ingest::test
