// Influx line protocol over real sockets on 127.0.0.1: the official InfluxDB JS client
// (@influxdata/influxdb-client) in several precisions, Telegraf-style bodies by curl with
// gzip, InfluxDB's answers (204, 400 partial write, 401, 413, 415) and v1 /write with ?p=.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <ctime>
#include <map>
#include <set>

#include "harness.h"

namespace ep::ingest::test {
namespace {

rapidjson::Document json(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  return d;
}

// One stored sample: device/metric -> [(ts text, value)], from the batch records.
using Stored = std::map<std::string, std::vector<std::pair<std::string, double>>>;

Stored samples_of(const std::vector<std::string>& records) {
  Stored out;
  for (const auto& line : records) {
    auto d = json(line);
    if (!d.IsObject() || !d.HasMember("kind")) continue;
    std::string device = d["device"].GetString();
    for (const auto& p : d["points"].GetArray())
      out[device + "/" + p["metric"].GetString()].emplace_back(p["ts"].GetString(), p["value"].GetDouble());
  }
  return out;
}

std::string rfc3339(std::time_t secs) {
  char buf[32];
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

class InfluxIngest : public KeyedTest {
 protected:
  std::unique_ptr<Server> start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--keys", keys_path_, "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Server>(dir_, args);
  }
  std::vector<std::string> stop(Server& s) {
    s.process().signal(SIGTERM);
    auto rc = s.process().wait();
    EXPECT_EQ(rc, 0) << s.process().err();
    return lines_of(s.process().out());
  }
  std::map<std::string, std::string> token() const { return {{"Authorization", "Token " + key_.key}}; }
  // curl posting file with headers; returns "<status>\n<body>".
  std::string curl(const std::string& url, const std::string& file, const std::vector<std::string>& headers) {
    std::vector<std::string> args = {"/usr/bin/curl", "-sS", "-o", dir_ + "/curl.body", "-w", "%{http_code}",
                                     "--data-binary", "@" + file};
    for (const auto& h : headers) {
      args.push_back("-H");
      args.push_back(h);
    }
    args.push_back(url);
    Process p(args, dir_);
    EXPECT_EQ(p.wait(), 0) << p.err();
    return p.out() + "\n" + read_text(dir_ + "/curl.body");
  }
};

TEST_F(InfluxIngest, OfficialJsClientWritesInEveryPrecisionAndExactlyThoseSamplesArrive) {
  auto s = start();
  std::time_t now = std::time(nullptr) - 60;
  write_text(dir_ + "/write.js", R"(
const {InfluxDB, Point} = require('@influxdata/influxdb-client');
const [url, token, now] = [process.argv[2], process.argv[3], BigInt(process.argv[4])];
const scale = {s: 1n, ms: 1000n, us: 1000000n, ns: 1000000000n};
(async () => {
  const db = new InfluxDB({url, token});
  for (const precision of ['s', 'ms', 'us', 'ns']) {
    const w = db.getWriteApi('my-org', 'my-bucket', precision, {maxRetries: 0, batchSize: 100});
    w.useDefaultTags({host: 'node-' + precision});
    for (let i = 0n; i < 3n; i++) {
      w.writePoint(new Point('env').tag('room', 'r 1').floatField('temp', 20.5 + Number(i))
        .intField('count', i).stringField('note', 'not a sample').booleanField('ok', true)
        .timestamp(((now + i) * scale[precision]).toString()));
    }
    await w.close();
  }
  console.log('written');
})().catch((e) => { console.error('write failed', e.statusCode, e.message); process.exit(1); });
)");
  Process node({"/usr/bin/node", dir_ + "/write.js", "http://127.0.0.1:" + std::to_string(s->port()), key_.key,
                std::to_string(now)},
               dir_, {{"NODE_PATH", std::string(EP_NODE_DIR) + "/node_modules"}});
  ASSERT_EQ(node.wait(std::chrono::seconds(60)), 0) << node.err();
  EXPECT_EQ(node.out(), "written\n");
  Stored got = samples_of(stop(*s));
  ASSERT_EQ(got.size(), 8u);  // 4 devices x (temp, count); strings and booleans are not samples
  for (const char* p : {"s", "ms", "us", "ns"}) {
    std::string dev = std::string("node-") + p;
    const auto& temp = got[dev + "/env_temp{room=\"r 1\"}"];
    const auto& count = got[dev + "/env_count{room=\"r 1\"}"];
    ASSERT_EQ(temp.size(), 3u) << dev;
    ASSERT_EQ(count.size(), 3u) << dev;
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(temp[i].first, rfc3339(now + i)) << dev;
      EXPECT_EQ(temp[i].second, 20.5 + i) << dev;
      EXPECT_EQ(count[i].first, rfc3339(now + i)) << dev;
      EXPECT_EQ(count[i].second, i) << dev;
    }
  }
}

TEST_F(InfluxIngest, TelegrafStyleGzipBodyByCurlIsStoredOncePerSeriesAndTs) {
  auto s = start();
  std::time_t now = std::time(nullptr) - 10;
  std::string ts = std::to_string(now);
  // As Telegraf's outputs.influxdb_v2 sends it: sorted tags, gzip, seconds precision.
  std::string body = "cpu,cpu=cpu-total,host=edge-1 usage_idle=97.5,usage_user=1.25 " + ts + "\n" +
                     "mem,host=edge-1 available=1024i,used_percent=41.5 " + ts + "\n" +
                     "system,host=edge-2 load1=0.25,uptime=3600u,uptime_format=\"1:00\" " + ts + "\n";
  write_text(dir_ + "/body", body);
  Process gz({"/bin/gzip", "-kf", dir_ + "/body"}, dir_);
  ASSERT_EQ(gz.wait(), 0);
  std::string url = "http://127.0.0.1:" + std::to_string(s->port()) + "/api/v2/write?org=o&bucket=b&precision=s";
  EXPECT_EQ(curl(url, dir_ + "/body.gz",
                 {"Authorization: Token " + key_.key, "Content-Encoding: gzip", "Content-Type: text/plain; charset=utf-8"}),
            "204\n");
  Stored got = samples_of(stop(*s));
  Stored want = {
      {"edge-1/cpu_usage_idle{cpu=\"cpu-total\"}", {{rfc3339(now), 97.5}}},
      {"edge-1/cpu_usage_user{cpu=\"cpu-total\"}", {{rfc3339(now), 1.25}}},
      {"edge-1/mem_available", {{rfc3339(now), 1024}}},
      {"edge-1/mem_used_percent", {{rfc3339(now), 41.5}}},
      {"edge-2/system_load1", {{rfc3339(now), 0.25}}},
      {"edge-2/system_uptime", {{rfc3339(now), 3600}}},
  };
  EXPECT_EQ(got, want);
}

TEST_F(InfluxIngest, WrongTokenIs401InInfluxShapeAndNothingIsStored) {
  auto s = start();
  Client c(s->port());
  Reply r = c.request("POST", "/api/v2/write?org=o&bucket=b", "m,host=h v=1\n",
                      {{"Authorization", "Token ep_wrong_0000000000000000"}});
  EXPECT_EQ(r.status, 401u);
  auto d = json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_STREQ(d["code"].GetString(), "unauthorized");
  EXPECT_TRUE(d.HasMember("message"));
  r = c.request("POST", "/write?db=x&u=me&p=ep_wrong_0000000000000000", "m,host=h v=1\n", {});
  EXPECT_EQ(r.status, 401u);
  EXPECT_TRUE(samples_of(stop(*s)).empty());
}

TEST_F(InfluxIngest, PartialWriteStoresTheValidLinesAndAnswers400NamingTheBadLine) {
  auto s = start();
  Client c(s->port());
  std::string ts = std::to_string(std::time(nullptr));
  Reply r = c.request("POST", "/api/v2/write?precision=s",
                      "a,host=h v=1 " + ts + "\nb,host=h s=\"open " + ts + "\nc,host=h v=3 " + ts + "\n", token());
  EXPECT_EQ(r.status, 400u) << r.body;
  auto d = json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_STREQ(d["code"].GetString(), "invalid");
  std::string msg = d["message"].GetString();
  EXPECT_NE(msg.find("partial write"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2: influx line protocol: column 12: unterminated string field value"), std::string::npos)
      << msg;
  // Only bad lines: 400 and nothing stored.
  r = c.request("POST", "/api/v2/write", "just garbage\n", token());
  EXPECT_EQ(r.status, 400u);
  EXPECT_STREQ(json(r.body)["code"].GetString(), "invalid");
  // A bad precision.
  r = c.request("POST", "/api/v2/write?precision=m", "a,host=h v=1 1\n", token());
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("precision=m: not one of ns, us, ms, s"), std::string::npos) << r.body;
  Stored got = samples_of(stop(*s));
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(got["h/a_v"].size(), 1u);
  EXPECT_EQ(got["h/c_v"].size(), 1u);
}

TEST_F(InfluxIngest, V1WriteTakesTheKeyAsPAndItsPrecisionNames) {
  auto s = start();
  Client c(s->port());
  std::time_t now = std::time(nullptr) - 120;
  std::string minutes = std::to_string(now / 60);
  Reply r = c.request("POST", "/write?db=telegraf&u=edge&p=" + key_.key + "&precision=m", "m,host=h v=7 " + minutes + "\n", {});
  EXPECT_EQ(r.status, 204u) << r.body;
  EXPECT_TRUE(r.body.empty());
  r = c.request("POST", "/write?precision=u", "n,host=h v=8 " + std::to_string(now) + "000000\n",
                {{"Authorization", "Token " + key_.key}});
  EXPECT_EQ(r.status, 204u) << r.body;
  Stored got = samples_of(stop(*s));
  ASSERT_EQ(got["h/m_v"].size(), 1u);
  EXPECT_EQ(got["h/m_v"][0], std::make_pair(rfc3339(now / 60 * 60), 7.0));
  ASSERT_EQ(got["h/n_v"].size(), 1u);
  EXPECT_EQ(got["h/n_v"][0], std::make_pair(rfc3339(now), 8.0));
}

TEST_F(InfluxIngest, CompressionBombIs413AndUnknownEncodingIs415) {
  auto s = start({"--max-decoded-bytes", "1048576"});
  // 64 MiB of line protocol compresses to a few hundred KiB.
  std::string line = "m,host=h v=1\n";
  std::string big;
  big.reserve(64u << 20);
  while (big.size() < (64u << 20)) big += line;
  write_text(dir_ + "/bomb", big);
  Process gz({"/bin/gzip", "-kf", dir_ + "/bomb"}, dir_);
  ASSERT_EQ(gz.wait(), 0);
  std::string url = "http://127.0.0.1:" + std::to_string(s->port()) + "/api/v2/write";
  std::string r = curl(url, dir_ + "/bomb.gz", {"Authorization: Token " + key_.key, "Content-Encoding: gzip"});
  EXPECT_EQ(r.substr(0, 4), "413\n") << r;
  EXPECT_NE(r.find("\"code\":\"request too large\""), std::string::npos) << r;
  write_text(dir_ + "/small", line);
  r = curl(url, dir_ + "/small", {"Authorization: Token " + key_.key, "Content-Encoding: br"});
  EXPECT_EQ(r.substr(0, 4), "415\n") << r;
  EXPECT_TRUE(samples_of(stop(*s)).empty());
}

TEST_F(InfluxIngest, QuotaIs429WithRetryAfter) {
  key_ = new_key("acme", 2);  // 2 points a minute
  write_keys(keys_path_, {key_});
  auto s = start();
  Client c(s->port());
  Reply r = c.request("POST", "/api/v2/write", "m,host=h v=1\n", token());
  EXPECT_EQ(r.status, 204u) << r.body;
  r = c.request("POST", "/api/v2/write", "m,host=h v=1\nm,host=h w=2\nm,host=h x=3\n", token());
  EXPECT_EQ(r.status, 429u) << r.body;
  EXPECT_STREQ(json(r.body)["code"].GetString(), "too many requests");
  EXPECT_FALSE(r.headers["Retry-After"].empty());
  EXPECT_EQ(samples_of(stop(*s)).size(), 1u);
}

}  // namespace
}  // namespace ep::ingest::test
