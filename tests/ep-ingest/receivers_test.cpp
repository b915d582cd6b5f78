// The shared receiver path over real sockets, through the collectd JSON receiver: the
// key in every header form, Content-Encoding, limits, and one batch record per device
// with the raw body kept once.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <zlib.h>

#include <algorithm>
#include <string_view>

#include "ep/crypto.h"
#include "ep/time.h"
#include "harness.h"

namespace ep::ingest::test {
namespace {

std::string gzip(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Two hosts, three samples, and one value list collectd sends for NaN.
std::string collectd_body() {
  std::string t = std::to_string(now_ns() / kNsPerSec);
  return R"([{"values":[1.5,2.5],"dstypes":["gauge","gauge"],"dsnames":["rx","tx"],"time":)" + t +
         R"(,"interval":10,"host":"router-1","plugin":"interface","plugin_instance":"eth0","type":"if_octets","type_instance":""},)"
         R"({"values":[42],"dstypes":["gauge"],"dsnames":["value"],"time":)" + t +
         R"(,"interval":10,"host":"srv-2","plugin":"load","plugin_instance":"","type":"load","type_instance":"shortterm"},)"
         R"({"values":[null],"dstypes":["gauge"],"dsnames":["value"],"time":)" + t +
         R"(,"interval":10,"host":"srv-2","plugin":"x","plugin_instance":"","type":"y","type_instance":""}])";
}

class Receivers : public KeyedTest {
 protected:
  std::unique_ptr<Server> start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--keys", keys_path_, "--threads", "2", "--archive", "file://" + dir_ + "/archive"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Server>(dir_, args);
  }
  std::vector<rapidjson::Document> stop(Server& s) {
    s.process().signal(SIGTERM);
    EXPECT_EQ(s.process().wait(), 0) << s.process().err();
    std::vector<rapidjson::Document> out;
    for (const auto& l : lines_of(s.process().out())) {
      out.emplace_back();
      out.back().Parse(l.c_str());
    }
    // A request's records (one per device) may reach stdout in any order; requests are
    // sequential, so a stable sort by device gives a fixed order.
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return std::string_view(a["device"].GetString()) < std::string_view(b["device"].GetString());
    });
    return out;
  }
  Reply post(Client& c, const std::string& body, std::map<std::string, std::string> headers) {
    headers.emplace("Content-Type", "application/json");
    return c.request("POST", "/collectd", body, headers);
  }
};

TEST_F(Receivers, EveryKeyFormIsAcceptedAndAWrongKeyIs401) {
  auto s = start();
  Client c(s->port());
  std::string body = collectd_body();
  for (auto h : std::vector<std::map<std::string, std::string>>{
           {{"X-API-Key", key_.key}},
           {{"Authorization", "Bearer " + key_.key}},
           {{"Authorization", "Token " + key_.key}},
           {{"Authorization", "Basic " + crypto::base64("collectd:" + key_.key)}}}) {
    Reply r = post(c, body, h);
    EXPECT_EQ(r.status, 202u) << h.begin()->second << " " << r.body;
    EXPECT_NE(r.body.find(R"("points":3)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("rejected":1)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("[2].values[0]: not a number"), std::string::npos) << r.body;
  }
  for (auto h : std::vector<std::map<std::string, std::string>>{
           {}, {{"Authorization", "Bearer ep_nope_nope"}}, {{"Authorization", "Basic " + crypto::base64("u:wrong")}}}) {
    Reply r = post(c, body, h);
    EXPECT_EQ(r.status, 401u) << r.body;
  }
  auto records = stop(*s);
  EXPECT_EQ(records.size(), 8u);  // 4 accepted requests x 2 devices
}

TEST_F(Receivers, OneRecordPerDeviceTheFirstCarriesTheRawBody) {
  auto s = start();
  Client c(s->port());
  std::string body = collectd_body();
  std::string packed = gzip(body);
  Reply r = post(c, packed, {{"X-API-Key", key_.key}, {"Content-Encoding", "gzip"}});
  ASSERT_EQ(r.status, 202u) << r.body;
  auto records = stop(*s);
  ASSERT_EQ(records.size(), 2u);
  auto& first = records[0];
  auto& second = records[1];
  EXPECT_STREQ(first["device"].GetString(), "router-1");
  EXPECT_STREQ(second["device"].GetString(), "srv-2");
  EXPECT_STREQ(first["source"].GetString(), "collectd");
  ASSERT_EQ(first["points"].Size(), 2u);
  EXPECT_STREQ(first["points"][0]["metric"].GetString(), R"(interface.if_octets.rx{plugin_instance="eth0"})");
  EXPECT_EQ(first["points"][1]["value"].GetDouble(), 2.5);
  EXPECT_STREQ(second["points"][0]["metric"].GetString(), R"(load.load{type_instance="shortterm"})");
  EXPECT_STREQ(first["request_id"].GetString(), first["batch_id"].GetString());
  EXPECT_STREQ(second["request_id"].GetString(), first["batch_id"].GetString());
  // The body as received (gzip), base64, and its sha256; the sibling carries no raw.
  EXPECT_STREQ(first["raw_encoding"].GetString(), "base64");
  auto raw = crypto::unbase64(first["raw"].GetString());
  ASSERT_TRUE(raw);
  EXPECT_EQ(*raw, packed);
  EXPECT_EQ(first["sha256"].GetString(), crypto::sha256_hex(packed));
  EXPECT_STREQ(second["raw"].GetString(), "");
}

TEST_F(Receivers, EncodingAndSizeLimitsAnswerWithTheirStatus) {
  auto s = start({"--max-decoded-bytes", "100000", "--max-samples", "2"});
  Client c(s->port());
  std::map<std::string, std::string> key{{"X-API-Key", key_.key}};
  auto with = [&](std::string enc) {
    auto h = key;
    h.emplace("Content-Encoding", enc);
    return h;
  };
  Reply bomb = post(c, gzip(std::string(50'000'000, ' ')), with("gzip"));
  EXPECT_EQ(bomb.status, 413u) << bomb.body;
  EXPECT_NE(bomb.body.find("--max-decoded-bytes"), std::string::npos) << bomb.body;
  Reply br = post(c, "x", with("br"));
  EXPECT_EQ(br.status, 415u) << br.body;
  EXPECT_NE(br.body.find("unsupported_encoding"), std::string::npos) << br.body;
  std::string g = gzip(collectd_body());
  Reply torn = post(c, g.substr(0, g.size() / 2), with("gzip"));
  EXPECT_EQ(torn.status, 400u) << torn.body;
  EXPECT_NE(torn.body.find("gzip"), std::string::npos) << torn.body;
  Reply many = post(c, collectd_body(), key);
  EXPECT_EQ(many.status, 413u) << many.body;
  EXPECT_NE(many.body.find("--max-samples"), std::string::npos) << many.body;
  Reply not_json = post(c, "[{", key);
  EXPECT_EQ(not_json.status, 400u) << not_json.body;
  Reply get = c.request("GET", "/collectd", "", key);
  EXPECT_EQ(get.status, 405u);
  // The server still serves after all of that.
  std::string one = R"([{"values":[1],"dstypes":["gauge"],"dsnames":["value"],"time":)" +
                    std::to_string(now_ns() / kNsPerSec) + R"(,"host":"h","plugin":"p","type":"t"}])";
  Reply ok = post(c, one, key);
  EXPECT_EQ(ok.status, 202u) << ok.body;
  EXPECT_EQ(stop(*s).size(), 1u);
}

// /v1/ingest takes a compressed payload too; the archive keeps the decoded JSON.
TEST_F(Receivers, OwnPayloadMayBeCompressed) {
  auto s = start({"--max-decoded-bytes", "100000"});
  Client c(s->port());
  std::string body = payload("gz-1", 3);
  std::map<std::string, std::string> h{{"X-API-Key", key_.key}, {"Content-Type", "application/json"},
                                       {"Content-Encoding", "gzip"}};
  Reply ok = c.request("POST", "/v1/ingest", gzip(body), h);
  EXPECT_EQ(ok.status, 202u) << ok.body;
  EXPECT_NE(ok.body.find(R"("points":3)"), std::string::npos) << ok.body;
  Reply bomb = c.request("POST", "/v1/ingest", gzip(std::string(5'000'000, ' ')), h);
  EXPECT_EQ(bomb.status, 413u) << bomb.body;
  EXPECT_NE(bomb.body.find("--max-decoded-bytes"), std::string::npos) << bomb.body;
  std::string g = gzip(body);
  Reply torn = c.request("POST", "/v1/ingest", g.substr(0, g.size() / 2), h);
  EXPECT_EQ(torn.status, 400u) << torn.body;
  h["Content-Encoding"] = "br";
  Reply br = c.request("POST", "/v1/ingest", body, h);
  EXPECT_EQ(br.status, 415u) << br.body;
  EXPECT_NE(br.body.find("unsupported_encoding"), std::string::npos) << br.body;
  auto records = stop(*s);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_STREQ(records[0]["device"].GetString(), "gz-1");
  EXPECT_EQ(records[0]["points"].Size(), 3u);
  EXPECT_EQ(std::string(records[0]["raw"].GetString()), body);
  EXPECT_FALSE(records[0].HasMember("raw_encoding"));
  EXPECT_EQ(records[0]["sha256"].GetString(), crypto::sha256_hex(body));
}

TEST_F(Receivers, ADeviceLabelAndDefaultDeviceAreConfigurable) {
  auto s = start({"--device-label", "plugin_instance", "--default-device", "fleet"});
  Client c(s->port());
  Reply r = post(c, collectd_body(), {{"X-API-Key", key_.key}});
  ASSERT_EQ(r.status, 202u) << r.body;
  auto records = stop(*s);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_STREQ(records[0]["device"].GetString(), "eth0");
  EXPECT_STREQ(records[0]["points"][0]["metric"].GetString(), R"(interface.if_octets.rx{host="router-1"})");
  EXPECT_STREQ(records[1]["device"].GetString(), "fleet");
  EXPECT_STREQ(records[1]["points"][0]["metric"].GetString(), R"(load.load{host="srv-2",type_instance="shortterm"})");
}

class OwnEndpoint : public Receivers {
 protected:
  Reply ingest(Client& c, const std::string& body, const std::string& query = "") {
    return c.request("POST", "/v1/ingest" + query, body, {{"X-API-Key", key_.key}, {"Content-Type", "application/json"}});
  }
};

TEST_F(OwnEndpoint, AJsonArrayOfPayloadsIsStoredOnceEachAndABadOneIsNamedByIndex) {
  auto s = start();
  Client c(s->port());
  std::string body = "[" + payload("d1", 2) + ",\n " + payload("d2", 1) + R"(, {"device_external_id":"d3","metrics":[{"name":"m","ts":"x","value":1}]})" + "]";
  Reply r = ingest(c, body);
  ASSERT_EQ(r.status, 202u) << r.body;
  EXPECT_NE(r.body.find(R"("points":3)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("rejected":1)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("payloads[2]: metrics[0].ts: not an RFC 3339 timestamp"), std::string::npos) << r.body;
  Reply all_bad = ingest(c, R"([{"device_external_id":"d3"}, 7])");
  EXPECT_EQ(all_bad.status, 400u) << all_bad.body;
  EXPECT_NE(all_bad.body.find("payloads[0]: metrics: required"), std::string::npos) << all_bad.body;
  EXPECT_NE(all_bad.body.find("payloads[1]: payload: not a JSON object"), std::string::npos) << all_bad.body;
  Reply torn = ingest(c, "[" + payload("d1", 1) + ", {");
  EXPECT_EQ(torn.status, 400u) << torn.body;
  EXPECT_NE(torn.body.find("payloads[1]"), std::string::npos) << torn.body;
  Reply keyed = c.request("POST", "/v1/ingest", "[" + payload("d1", 1) + "]",
                          {{"X-API-Key", key_.key}, {"Content-Type", "application/json"}, {"Idempotency-Key", "k1"}});
  EXPECT_EQ(keyed.status, 400u) << keyed.body;
  auto records = stop(*s);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_STREQ(records[0]["device"].GetString(), "d1");
  EXPECT_EQ(records[0]["points"].Size(), 2u);
  EXPECT_STREQ(records[1]["device"].GetString(), "d2");
  EXPECT_STREQ(records[0]["raw"].GetString(), body.c_str());
}

TEST_F(OwnEndpoint, NdjsonOfPayloadsAsVectorSendsIt) {
  auto s = start();
  Client c(s->port());
  std::string body = payload("d1", 1) + "\n" + payload("d2", 2) + "\n\n" + payload("d1", 1) + "\n";
  Reply r = ingest(c, body);
  ASSERT_EQ(r.status, 202u) << r.body;
  EXPECT_NE(r.body.find(R"("points":4)"), std::string::npos) << r.body;
  Reply bad = ingest(c, payload("d1", 1) + "\n{\"device_external_id\":1}\n");
  EXPECT_EQ(bad.status, 202u) << bad.body;
  EXPECT_NE(bad.body.find("payloads[1]: device_external_id: not a string"), std::string::npos) << bad.body;
  auto records = stop(*s);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["points"].Size(), 2u);  // d1's two payloads in one record
}

TEST_F(OwnEndpoint, EpochTimestampsNeedTheirUnitAndAreExact) {
  auto s = start({"--no-time-bounds"});
  Client c(s->port());
  auto body = [](const std::string& ts) {
    return R"({"device_external_id":"d","metrics":[{"name":"m","ts":)" + ts + R"(,"value":1}]})";
  };
  Reply none = ingest(c, body("1767225600"));
  EXPECT_EQ(none.status, 400u) << none.body;
  EXPECT_NE(none.body.find("a number needs its unit"), std::string::npos) << none.body;
  Reply bad_unit = ingest(c, body("1767225600"), "?precision=minutes");
  EXPECT_EQ(bad_unit.status, 400u) << bad_unit.body;
  EXPECT_NE(bad_unit.body.find("precision: 'minutes'"), std::string::npos) << bad_unit.body;
  Reply overflow = ingest(c, body("99999999999999999"), "?precision=s");
  EXPECT_EQ(overflow.status, 400u) << overflow.body;
  EXPECT_EQ(ingest(c, body("1767225600"), "?precision=s").status, 202u);
  EXPECT_EQ(ingest(c, body("1767225600250"), "?precision=ms").status, 202u);
  EXPECT_EQ(ingest(c, body("1767225600.5"), "?precision=s").status, 202u);
  EXPECT_EQ(ingest(c, body("1767225600123456789"), "?precision=ns").status, 202u);
  auto records = stop(*s);
  ASSERT_EQ(records.size(), 4u);
  std::vector<std::string> ts;
  for (auto& r : records) ts.push_back(r["points"][0]["ts"].GetString());
  EXPECT_EQ(ts, (std::vector<std::string>{"2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.250Z",
                                          "2026-01-01T00:00:00.500Z", "2026-01-01T00:00:00.123Z"}));
}

}  // namespace
}  // namespace ep::ingest::test
