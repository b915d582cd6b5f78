// The plan's max_series over real sockets: a tenant's new series beyond the limit are
// refused by name while its known series and other tenants go on.
#include <gtest/gtest.h>
#include <signal.h>

#include "ep/time.h"
#include "harness.h"
#include "series_limit.h"

namespace ep::ingest::test {
namespace {

std::string point(const std::string& metric, double v) {
  return R"({"name":")" + metric + R"(","ts":")" + now_rfc3339() + R"(","value":)" + std::to_string(v) + "}";
}
std::string body(const std::string& device, const std::vector<std::string>& metrics) {
  std::string s = R"({"device_external_id":")" + device + R"(","metrics":[)";
  for (size_t i = 0; i < metrics.size(); ++i) s += (i ? "," : "") + point(metrics[i], static_cast<double>(i));
  return s + "]}";
}

TEST(SeriesLimitUnit, KnownSeriesPassNewOnesUntilTheLimit) {
  SeriesLimit limit;
  limit.seed({{"acme", "d1", "temp"}, {"acme", "d1", "temp"}, {"beta", "d1", "x"}});
  EXPECT_EQ(limit.count("acme"), 1u);
  {
    auto c = limit.check("acme", 2);
    EXPECT_TRUE(c.admit("d1", "temp"));   // known
    EXPECT_TRUE(c.admit("d2", "temp"));   // new: 2 of 2
    EXPECT_FALSE(c.admit("d1", "hum"));   // new: over
    EXPECT_TRUE(c.admit("d2", "temp"));   // known now
  }
  EXPECT_EQ(limit.count("acme"), 2u);
  auto unlimited = limit.check("acme", 0);
  EXPECT_TRUE(unlimited.admit("d9", "anything"));
  EXPECT_EQ(limit.count("beta"), 1u);
  EXPECT_NE(SeriesLimit::problem("d1", "hum", "acme", 2).find("max_series"), std::string::npos);
}

class SeriesLimitHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    limited_ = new_key("acme");
    limited_.max_series = 3;
    other_ = new_key("beta");
    write_keys(dir_ + "/keys.ndjson", {limited_, other_});
    server_ = std::make_unique<Server>(dir_, std::vector<std::string>{"--keys", dir_ + "/keys.ndjson"});
  }
  std::string dir_;
  TestKey limited_, other_;
  std::unique_ptr<Server> server_;
};

TEST_F(SeriesLimitHttp, NewSeriesBeyondThePlanAreRefusedByNameTheRestIsStored) {
  Client c(server_->port());
  std::map<std::string, std::string> acme{{"X-API-Key", limited_.key}, {"Content-Type", "application/json"}};
  Reply r1 = c.post(body("d1", {"temp", "hum"}), acme);
  ASSERT_EQ(r1.status, 202u) << r1.body;
  // One series left: temp (known) and volt (new, the third) pass; rpm (fourth) is dropped.
  Reply r2 = c.post(body("d1", {"temp", "volt", "rpm"}), acme);
  ASSERT_EQ(r2.status, 202u) << r2.body;
  EXPECT_NE(r2.body.find(R"("points":2)"), std::string::npos) << r2.body;
  EXPECT_NE(r2.body.find(R"("rejected":1)"), std::string::npos) << r2.body;
  EXPECT_NE(r2.body.find("metric 'rpm' of device 'd1'"), std::string::npos) << r2.body;
  EXPECT_NE(r2.body.find("max_series"), std::string::npos) << r2.body;
  // Only new series: nothing left to store.
  Reply r3 = c.post(body("d2", {"temp"}), acme);
  EXPECT_EQ(r3.status, 400u) << r3.body;
  EXPECT_NE(r3.body.find("device 'd2'"), std::string::npos) << r3.body;
  // Known series keep flowing, through another receiver too (collectd JSON).
  Reply r4 = c.post(body("d1", {"temp", "hum", "volt"}), acme);
  EXPECT_EQ(r4.status, 202u) << r4.body;
  std::string cd = R"([{"values":[1],"dstypes":["gauge"],"dsnames":["value"],"time":)" +
                   std::to_string(now_ns() / kNsPerSec) + R"(,"host":"d3","plugin":"p","type":"t"}])";
  Reply r5 = c.request("POST", "/collectd", cd, acme);
  EXPECT_EQ(r5.status, 400u) << r5.body;
  EXPECT_NE(r5.body.find("max_series"), std::string::npos) << r5.body;
  // Another tenant has no limit.
  std::map<std::string, std::string> beta{{"X-API-Key", other_.key}, {"Content-Type", "application/json"}};
  Reply r6 = c.post(body("d1", {"a", "b", "c", "d", "e"}), beta);
  EXPECT_EQ(r6.status, 202u) << r6.body;
  server_->process().signal(SIGTERM);
  ASSERT_EQ(server_->process().wait(), 0) << server_->process().err();
  // Stored: 2 + 2 + 3 points of acme, 5 of beta; never rpm, d2 or d3.
  std::string out = server_->process().out();
  EXPECT_EQ(out.find(R"("metric":"rpm")"), std::string::npos);
  EXPECT_EQ(out.find(R"("device":"d2")"), std::string::npos);
  EXPECT_EQ(out.find(R"("device":"d3")"), std::string::npos);
  EXPECT_EQ(lines_of(out).size(), 4u);
}

}  // namespace
}  // namespace ep::ingest::test
