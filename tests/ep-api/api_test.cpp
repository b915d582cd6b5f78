// ep-api over a real socket against a real Postgres: every route, tenant isolation
// (another tenant's id is 404, never 403 or data), pagination, and error shapes.
#include <fcntl.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <thread>

#include "ep/json.h"
#include "ep/keys.h"
#include "fixture.h"
#include "routes.h"
#include "tls_tools.h"

namespace ep::api::test {
namespace {

rapidjson::Document json(const Reply& r) {
  rapidjson::Document d;
  EXPECT_TRUE(parse_json(r.body, d).is_ok()) << r.body;
  return d;
}

// Asserts the error shape {"error":…,"details":…} and returns the details.
std::string error_of(const Reply& r, long status) {
  EXPECT_EQ(r.status, status) << r.body;
  auto d = json(r);
  EXPECT_TRUE(d.IsObject() && d.HasMember("error") && d["error"].IsString()) << r.body;
  EXPECT_TRUE(d.HasMember("details") && d["details"].IsString()) << r.body;
  return d.HasMember("details") && d["details"].IsString() ? d["details"].GetString() : "";
}

class Api : public ::testing::Test {
 protected:
  Env& env = Env::get();
  const Seed& s = env.seed();
};

TEST_F(Api, HealthNeedsNoKey) {
  auto r = env.get("/v1/health", "");
  EXPECT_EQ(r.status, 200);
  auto d = json(r);
  EXPECT_STREQ(d["status"].GetString(), "ok");
  EXPECT_STREQ(d["database"].GetString(), "ok");
}

TEST_F(Api, MissingMalformedAndRevokedKeysAre401) {
  EXPECT_NE(error_of(env.get("/v1/devices", ""), 401).find("X-API-Key"), std::string::npos);
  error_of(env.get("/v1/devices", "not-a-key"), 401);
  error_of(env.get("/v1/devices", s.acme_revoked_key), 401);
  // Right prefix, wrong secret.
  std::string forged = s.acme_key.substr(0, 12) + std::string(32, 'A');
  error_of(env.get("/v1/devices", forged), 401);
  EXPECT_EQ(env.get("/v1/devices", "").headers["www-authenticate"], "ApiKey header=\"X-API-Key\"");
}

TEST_F(Api, UnknownPrefixDoesTheSameHashingAsAWrongSecret) {
  // Timing must not tell whether a prefix exists: every well-formed key costs one HMAC
  // and one constant-time compare, whether its prefix is unknown, known with a wrong
  // secret, revoked or good, and whether or not the lookup was cached.
  auto hashes_for = [&](const std::string& key, long want_status) {
    std::uint64_t before = keys::hash_count();
    EXPECT_EQ(env.get("/v1/me", key).status, want_status) << key;
    return keys::hash_count() - before;
  };
  std::string unknown = keys::generate_key();
  std::string forged = s.acme_key.substr(0, 12) + std::string(32, 'A');
  for (int round = 0; round < 2; ++round) {  // the second round answers from the key cache
    EXPECT_EQ(hashes_for(unknown, 401), 1u);
    EXPECT_EQ(hashes_for(forged, 401), 1u);
    EXPECT_EQ(hashes_for(s.acme_revoked_key, 401), 1u);
    EXPECT_EQ(hashes_for(s.acme_key, 200), 1u);
  }
}

TEST_F(Api, MeNamesTheTenant) {
  auto d = json(env.get("/v1/me", s.acme_key));
  EXPECT_STREQ(d["tenant"].GetString(), "acme");
  EXPECT_STREQ(d["plan"]["name"].GetString(), "default");
}

TEST_F(Api, UnknownRouteIs404AndWrongMethodIs405) {
  error_of(env.get("/v1/nope", s.acme_key), 404);
  error_of(env.call("PUT", "/v1/devices", s.acme_key), 405);
  error_of(env.call("DELETE", "/v1/metrics/" + s.acme_voltage, s.acme_key), 405);
}

TEST_F(Api, UnknownQueryParameterIsAnError) {
  EXPECT_EQ(error_of(env.get("/v1/anomalies?lable=spike", s.acme_key), 400),
            "lable: unknown query parameter");
}

TEST_F(Api, DevicesListOnlyTheTenantsOwn) {
  auto d = json(env.get("/v1/devices", s.acme_key));
  ASSERT_EQ(d["items"].Size(), 2u);
  EXPECT_STREQ(d["items"][0]["external_id"].GetString(), "meter-1");
  EXPECT_EQ(d["items"][0]["metrics"].GetInt64(), 1);
  EXPECT_TRUE(d["items"][0]["last_seen"].IsString());
  EXPECT_TRUE(d["next_cursor"].IsNull());
  auto g = json(env.get("/v1/devices", s.globex_key));
  ASSERT_EQ(g["items"].Size(), 1u);
  EXPECT_STREQ(g["items"][0]["external_id"].GetString(), "g-1");
}

TEST_F(Api, OtherTenantsIdsAre404NotForbidden) {
  for (const std::string& path :
       {"/v1/devices/" + s.globex_dev, "/v1/metrics/" + s.globex_temp,
        "/v1/alert-rules/" + s.globex_rule, "/v1/webhooks/" + s.globex_hook,
        "/v1/series?metric_id=" + s.globex_temp}) {
    auto r = env.get(path, s.acme_key);
    error_of(r, 404);
    EXPECT_EQ(r.body.find("g-1"), std::string::npos) << path;
  }
  error_of(
      env.call("PATCH", "/v1/alert-rules/" + s.globex_rule, s.acme_key, R"({"min_score":0.1})"),
      404);
  error_of(env.call("DELETE", "/v1/alert-rules/" + s.globex_rule, s.acme_key), 404);
  error_of(env.call("PATCH", "/v1/webhooks/" + s.globex_hook, s.acme_key, R"({"enabled":false})"),
           404);
  error_of(env.call("DELETE", "/v1/webhooks/" + s.globex_hook, s.acme_key), 404);
  error_of(env.call("POST", "/v1/webhooks/" + s.globex_hook + "/rotate-secret", s.acme_key), 404);
  // The globex rows are untouched.
  auto g = json(env.get("/v1/alert-rules/" + s.globex_rule, s.globex_key));
  EXPECT_DOUBLE_EQ(g["min_score"].GetDouble(), 0.6);
  // A filter on another tenant's metric finds nothing rather than leaking or failing.
  auto a = json(env.get("/v1/anomalies?metric_id=" + s.globex_temp, s.acme_key));
  EXPECT_EQ(a["items"].Size(), 0u);
  // Malformed ids cannot exist either.
  error_of(env.get("/v1/devices/not-a-uuid", s.acme_key), 404);
}

TEST_F(Api, AnomaliesNewestFirstWithFilters) {
  auto d = json(env.get("/v1/anomalies", s.acme_key));
  ASSERT_EQ(d["items"].Size(), 2u);
  EXPECT_STREQ(d["items"][0]["label"].GetString(), "drop");  // newer
  EXPECT_STREQ(d["items"][1]["label"].GetString(), "spike");
  EXPECT_STREQ(d["items"][1]["device"].GetString(), "meter-1");
  EXPECT_STREQ(d["items"][1]["start"].GetString(), s.spike_start.c_str());
  EXPECT_STREQ(d["items"][1]["explanation"][0]["feature"].GetString(), "max");
  auto f = json(env.get("/v1/anomalies?metric_id=" + s.acme_voltage, s.acme_key));
  ASSERT_EQ(f["items"].Size(), 1u);
  EXPECT_DOUBLE_EQ(f["items"][0]["score"].GetDouble(), 0.93);
  EXPECT_EQ(json(env.get("/v1/anomalies?label=drop", s.acme_key))["items"].Size(), 1u);
  EXPECT_EQ(json(env.get("/v1/anomalies?min_score=0.9", s.acme_key))["items"].Size(), 1u);
  EXPECT_EQ(json(env.get("/v1/anomalies?device_id=" + s.acme_dev2, s.acme_key))["items"].Size(),
            1u);
  // window_end in [from, to): the spike window ends at spike_end.
  EXPECT_EQ(json(env.get("/v1/anomalies?from=" + s.spike_end, s.acme_key))["items"].Size(), 2u);
  EXPECT_EQ(json(env.get("/v1/anomalies?from=2h", s.acme_key))["items"].Size(), 1u);
  EXPECT_EQ(json(env.get("/v1/anomalies?to=" + s.spike_end, s.acme_key))["items"].Size(), 0u);
  EXPECT_EQ(json(env.get("/v1/anomalies?from=30d", s.acme_key))["items"].Size(), 2u);
}

TEST_F(Api, AnomaliesBadInputNamesTheParameter) {
  EXPECT_EQ(error_of(env.get("/v1/anomalies?min_score=abc", s.acme_key), 400),
            "min_score: not a number");
  EXPECT_NE(error_of(env.get("/v1/anomalies?min_score=2", s.acme_key), 400)
                .find("min_score: out of range"),
            std::string::npos);
  EXPECT_EQ(error_of(env.get("/v1/anomalies?metric_id=x", s.acme_key), 400),
            "metric_id: not a UUID");
  EXPECT_EQ(error_of(env.get("/v1/anomalies?from=yesterday", s.acme_key), 400),
            "from: not an RFC 3339 time or a duration");
  EXPECT_NE(error_of(env.get("/v1/anomalies?label=weird", s.acme_key), 400).find("label:"),
            std::string::npos);
  EXPECT_EQ(error_of(env.get("/v1/anomalies?cursor=%%%", s.acme_key), 400),
            "cursor: malformed percent-encoding");
  EXPECT_EQ(error_of(env.get("/v1/anomalies?cursor=Zm9v", s.acme_key), 400), "cursor: malformed");
  // Integers beyond int64 (or a version beyond int) in a cursor: malformed, a 400, never
  // an exception or a database overflow (500).
  const std::string uuid = s.acme_voltage;
  for (const std::string& path :
       {"/v1/anomalies?cursor=" + encode_cursor({"9999999999999999999", uuid, "0"}),
        "/v1/anomalies?cursor=" + encode_cursor({"0", uuid, "-9999999999999999999"}),
        "/v1/batches?cursor=" + encode_cursor({"9999999999999999999", uuid}),
        "/v1/alerts?cursor=" + encode_cursor({"99999999999999999999", "a", uuid}),
        "/v1/models?cursor=" + encode_cursor({"m", "2147483648"})})
    EXPECT_EQ(error_of(env.get(path, s.acme_key), 400), "cursor: malformed") << path;
  EXPECT_NE(error_of(env.get("/v1/anomalies?limit=0", s.acme_key), 400).find("limit"),
            std::string::npos);
  EXPECT_NE(error_of(env.get("/v1/anomalies?limit=1.5", s.acme_key), 400).find("limit"),
            std::string::npos);
}

// Walks a listing one item per page; returns the ids in order and checks no repeats.
std::vector<std::string> walk(Env& env, const std::string& path, const std::string& key,
                              const char* id_field) {
  std::vector<std::string> ids;
  std::string cursor;
  for (int pages = 0; pages < 100; ++pages) {
    std::string sep = path.find('?') == std::string::npos ? "?" : "&";
    auto r = env.get(path + sep + "limit=1" + (cursor.empty() ? "" : "&cursor=" + cursor), key);
    EXPECT_EQ(r.status, 200) << r.body;
    auto d = json(r);
    if (!d.IsObject() || !d["items"].IsArray()) break;
    for (auto& it : d["items"].GetArray()) ids.emplace_back(it[id_field].GetString());
    if (d["next_cursor"].IsNull()) break;
    cursor = d["next_cursor"].GetString();
  }
  std::set<std::string> uniq(ids.begin(), ids.end());
  EXPECT_EQ(uniq.size(), ids.size()) << path << ": a page repeated an item";
  return ids;
}

TEST_F(Api, CursorPaginationVisitsEveryItemOnce) {
  EXPECT_EQ(walk(env, "/v1/anomalies", s.acme_key, "label"),
            (std::vector<std::string>{"drop", "spike"}));
  EXPECT_EQ(walk(env, "/v1/devices", s.acme_key, "external_id"),
            (std::vector<std::string>{"meter-1", "meter-2"}));
  EXPECT_EQ(walk(env, "/v1/metrics", s.acme_key, "name"),
            (std::vector<std::string>{"voltage", "current"}));
  EXPECT_EQ(walk(env, "/v1/alerts", s.acme_key, "alert_id"),
            (std::vector<std::string>{"al-2", "al-1"}));
  EXPECT_EQ(walk(env, "/v1/batches", s.acme_key, "batch_id").size(), 5u);
  EXPECT_EQ(walk(env, "/v1/models", s.acme_key, "sha256"), (std::vector<std::string>{"bb", "aa"}));
}

TEST_F(Api, MetricsCarryLastSeenAndRecentPoints) {
  auto d = json(env.get("/v1/metrics/" + s.acme_current, s.acme_key));
  EXPECT_STREQ(d["name"].GetString(), "current");
  EXPECT_STREQ(d["device"].GetString(), "meter-2");
  EXPECT_TRUE(d["last_seen"].IsString());
  EXPECT_GE(d["points_last_hour"].GetInt64(), 50);
  EXPECT_EQ(d["anomalies_24h"].GetInt64(), 1);
  auto l = json(env.get("/v1/metrics?device_id=" + s.acme_dev1, s.acme_key));
  ASSERT_EQ(l["items"].Size(), 1u);
  EXPECT_STREQ(l["items"][0]["unit"].GetString(), "V");
}

TEST_F(Api, CreateDeviceAndMetric) {
  auto r = env.call("POST", "/v1/devices", s.acme_key, R"({"external_id":"new-dev"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = json(r);
  std::string id = d["device_id"].GetString();
  EXPECT_EQ(r.headers["location"], "/v1/devices/" + id);
  error_of(env.call("POST", "/v1/devices", s.acme_key, R"({"external_id":"new-dev"})"), 409);
  // The same name in another tenant is a different device.
  EXPECT_EQ(env.call("POST", "/v1/devices", s.globex_key, R"({"external_id":"new-dev"})").status,
            201);
  EXPECT_EQ(
      error_of(env.call("POST", "/v1/devices", s.acme_key, R"({"external_id":"bad name"})"), 400),
      "external_id: must match [A-Za-z0-9._:/-]{1,128}");
  EXPECT_EQ(
      error_of(env.call("POST", "/v1/devices", s.acme_key, R"({"external_id":"x","extra":1})"),
               400),
      "extra: unknown field");
  EXPECT_NE(error_of(env.call("POST", "/v1/devices", s.acme_key, "{not json"), 400).find("body"),
            std::string::npos);
  error_of(env.call("POST", "/v1/devices", s.acme_key, R"({"external_id":"y"})", "text/plain"),
           400);

  auto m = env.call(
      "POST", "/v1/metrics", s.acme_key,
      R"({"device_id":")" + id + R"(","name":"temp","unit":"C","expected_interval_sec":60})");
  ASSERT_EQ(m.status, 201) << m.body;
  auto md = json(m);
  EXPECT_DOUBLE_EQ(md["expected_interval_sec"].GetDouble(), 60);
  EXPECT_TRUE(md["last_seen"].IsNull());
  error_of(
      env.call("POST", "/v1/metrics", s.acme_key, R"({"device_id":")" + id + R"(","name":"temp"})"),
      409);
  // Another tenant's device cannot take metrics from us.
  EXPECT_EQ(error_of(env.call("POST", "/v1/metrics", s.acme_key,
                              R"({"device_id":")" + s.globex_dev + R"(","name":"x"})"),
                     400),
            "device_id: no such device");
}

// Bodies nested past kMaxJsonDepth, as deep as the 64 KiB body limit allows, are 400
// naming the limit on every write route, and the server keeps serving.
TEST_F(Api, DeeplyNestedBodiesAre400) {
  const std::string limit = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  std::string keys;
  for (int i = 0; i < 13'000; ++i) keys += R"({"a":)";
  for (const std::string& body : {R"({"external_id":)" + std::string(60'000, '['), keys,
                                  R"({"external_id":"x","extra":)" + std::string(65, '[') +
                                      std::string(65, ']') + "}"}) {
    for (const char* route : {"/v1/devices", "/v1/metrics", "/v1/alert-rules", "/v1/webhooks"}) {
      std::string details = error_of(env.call("POST", route, s.acme_key, body), 400);
      EXPECT_EQ(details.rfind("body: invalid JSON at byte ", 0), 0u) << route << ": " << details;
      EXPECT_NE(details.find(limit), std::string::npos) << route << ": " << details;
    }
  }
  // One level less is JSON the route reads (and refuses for its own reason).
  EXPECT_EQ(error_of(env.call("POST", "/v1/devices", s.acme_key,
                              R"({"external_id":"x","extra":)" + std::string(kMaxJsonDepth - 1, '[') +
                                  std::string(kMaxJsonDepth - 1, ']') + "}"),
                     400),
            "extra: unknown field");
  EXPECT_EQ(env.call("POST", "/v1/devices", s.globex_key, R"({"external_id":"after-deep"})").status, 201);
}

TEST_F(Api, AlertRuleLifecycle) {
  auto r = env.call("POST", "/v1/alert-rules", s.acme_key,
                    R"({"name":"drops","metric":"volt*","min_score":0.7,"labels":["drop"],)"
                    R"("consecutive":2,"cooldown_sec":600,"webhook_id":")" +
                        s.acme_hook + R"("})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = json(r);
  std::string id = d["rule_id"].GetString();
  EXPECT_STREQ(d["device"].GetString(), "*");
  EXPECT_STREQ(d["labels"][0].GetString(), "drop");
  EXPECT_DOUBLE_EQ(d["cooldown_sec"].GetDouble(), 600);
  auto p = env.call("PATCH", "/v1/alert-rules/" + id, s.acme_key,
                    R"({"min_score":0.8,"enabled":false,"webhook_id":null})");
  ASSERT_EQ(p.status, 200) << p.body;
  auto pd = json(p);
  EXPECT_DOUBLE_EQ(pd["min_score"].GetDouble(), 0.8);
  EXPECT_FALSE(pd["enabled"].GetBool());
  EXPECT_TRUE(pd["webhook_id"].IsNull());
  EXPECT_EQ(pd["consecutive"].GetInt64(), 2);  // untouched
  EXPECT_STREQ(pd["metric"].GetString(), "volt*");
  EXPECT_EQ(
      error_of(env.call("PATCH", "/v1/alert-rules/" + id, s.acme_key, R"({"labels":["bogus"]})"),
               400)
          .substr(0, 10),
      "labels[0]:");
  EXPECT_EQ(error_of(env.call("PATCH", "/v1/alert-rules/" + id, s.acme_key,
                              R"({"webhook_id":")" + s.globex_hook + R"("})"),
                     400),
            "webhook_id: no such webhook");
  error_of(env.call("PATCH", "/v1/alert-rules/" + id, s.acme_key, R"({"name":"high-score"})"), 409);
  error_of(env.call("POST", "/v1/alert-rules", s.acme_key, R"({"min_score":0.5})"), 400);
  EXPECT_EQ(env.call("DELETE", "/v1/alert-rules/" + id, s.acme_key).status, 204);
  error_of(env.get("/v1/alert-rules/" + id, s.acme_key), 404);
  error_of(env.call("DELETE", "/v1/alert-rules/" + id, s.acme_key), 404);
  auto l = json(env.get("/v1/alert-rules", s.acme_key));
  ASSERT_EQ(l["items"].Size(), 1u);
  EXPECT_STREQ(l["items"][0]["name"].GetString(), "high-score");
}

TEST_F(Api, WebhookSecretShownOnceAndRotates) {
  auto r = env.call("POST", "/v1/webhooks", s.acme_key,
                    R"({"name":"pager","url":"https://hooks.example.com/ep","timeout_ms":2000})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = json(r);
  std::string id = d["webhook_id"].GetString();
  std::string secret = d["secret"].GetString();
  EXPECT_EQ(secret.rfind("whsec_", 0), 0u);
  EXPECT_EQ(r.headers["cache-control"], "no-store");
  auto g = json(env.get("/v1/webhooks/" + id, s.acme_key));
  EXPECT_FALSE(g.HasMember("secret"));
  EXPECT_EQ(env.get("/v1/webhooks", s.acme_key).body.find(secret), std::string::npos);
  auto rot = env.call("POST", "/v1/webhooks/" + id + "/rotate-secret", s.acme_key);
  ASSERT_EQ(rot.status, 200) << rot.body;
  std::string secret2 = json(rot)["secret"].GetString();
  EXPECT_NE(secret2, secret);
  EXPECT_EQ(secret2.rfind("whsec_", 0), 0u);
  auto p = json(
      env.call("PATCH", "/v1/webhooks/" + id, s.acme_key, R"({"enabled":false,"max_attempts":3})"));
  EXPECT_FALSE(p["enabled"].GetBool());
  EXPECT_EQ(p["max_attempts"].GetInt64(), 3);
  EXPECT_EQ(
      error_of(env.call("POST", "/v1/webhooks", s.acme_key, R"({"name":"x","url":"ftp://a"})"),
               400),
      "url: required, an http:// or https:// URL");
  error_of(env.call("POST", "/v1/webhooks", s.acme_key, R"({"name":"ops","url":"http://a.b/"})"),
           409);
  EXPECT_EQ(env.call("DELETE", "/v1/webhooks/" + id, s.acme_key).status, 204);
  error_of(env.get("/v1/webhooks/" + id, s.acme_key), 404);
}

// SSRF: a webhook may not point at the operator's network. IP literals in any spelling
// and localhost names are refused when created or updated (names are judged at delivery).
TEST_F(Api, WebhookUrlsToNonPublicAddressesAreRefused) {
  const std::pair<const char*, const char*> bad[] = {
      {"http://127.0.0.1:8080/x", "url: host 127.0.0.1 is a loopback address"},
      {"http://169.254.169.254/latest/meta-data/", "url: host 169.254.169.254 is a link-local address"},
      {"http://10.0.0.1/", "url: host 10.0.0.1 is a private address"},
      {"http://172.16.3.4/", "url: host 172.16.3.4 is a private address"},
      {"http://192.168.1.1/", "url: host 192.168.1.1 is a private address"},
      {"http://100.64.0.1/", "url: host 100.64.0.1 is a shared (carrier-grade NAT) address"},
      {"http://[::1]/", "url: host [::1] is a loopback address"},
      {"http://[fd00::1]/", "url: host [fd00::1] is a unique-local address"},
      {"http://[fe80::1%25eth0]:80/", "url: host [fe80::1%25eth0] is fe80::1, a link-local address"},
      {"http://[::ffff:127.0.0.1]/",
       "url: host [::ffff:127.0.0.1] is ::ffff:127.0.0.1 (IPv4-mapped 127.0.0.1), a loopback address"},
      {"http://localhost/", "url: host localhost is a loopback name"},
      {"https://api.localhost:8443/", "url: host api.localhost is a loopback name"},
      {"http://0.0.0.0/", "url: host 0.0.0.0 is an unspecified (this-network) address"},
      {"http://2130706433/", "url: host 2130706433 is 127.0.0.1, a loopback address"},
      {"http://0177.0.0.1/", "url: host 0177.0.0.1 is 127.0.0.1, a loopback address"},
      {"http://0x7f.0.0.1/", "url: host 0x7f.0.0.1 is 127.0.0.1, a loopback address"},
      {"http://127.1/", "url: host 127.1 is 127.0.0.1, a loopback address"},
      {"http://0xa9fea9fe/", "url: host 0xa9fea9fe is 169.254.169.254, a link-local address"},
      {"http://224.0.0.1/", "url: host 224.0.0.1 is a multicast address"},
      {"http://255.255.255.255/", "url: host 255.255.255.255 is the broadcast address"},
  };
  for (const auto& [url, why] : bad) {
    std::string body = std::string(R"({"name":"ssrf","url":")") + url + R"("})";
    EXPECT_EQ(error_of(env.call("POST", "/v1/webhooks", s.acme_key, body), 400),
              std::string(why) + ", which the egress policy denies")
        << url;
  }
  // Nothing was created, and an update is refused the same way.
  EXPECT_EQ(env.get("/v1/webhooks", s.acme_key).body.find("ssrf"), std::string::npos);
  auto r = env.call("POST", "/v1/webhooks", s.acme_key,
                    R"({"name":"public","url":"https://hooks.example.com/a"})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id = json(r)["webhook_id"].GetString();
  EXPECT_EQ(error_of(env.call("PATCH", "/v1/webhooks/" + id, s.acme_key,
                              R"({"url":"http://0x7f.1:9/"})"),
                     400),
            "url: host 0x7f.1 is 127.0.0.1, a loopback address, which the egress policy denies");
  EXPECT_STREQ(json(env.get("/v1/webhooks/" + id, s.acme_key))["url"].GetString(),
               "https://hooks.example.com/a");
  // Public literals and names pass (names are checked where they are resolved).
  auto p = env.call("PATCH", "/v1/webhooks/" + id, s.acme_key, R"({"url":"http://1.1.1.1/"})");
  EXPECT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(env.call("DELETE", "/v1/webhooks/" + id, s.acme_key).status, 204);
}

TEST_F(Api, BatchesSummariseIngestionHealth) {
  auto d = json(env.get("/v1/batches", s.acme_key));
  EXPECT_EQ(d["summary"]["loaded"].GetInt64(), 4);
  EXPECT_EQ(d["summary"]["failed"].GetInt64(), 1);
  EXPECT_EQ(d["summary"]["received"].GetInt64(), 0);
  EXPECT_EQ(d["summary"]["points"].GetInt64(), 50);
  ASSERT_EQ(d["items"].Size(), 5u);
  auto f = json(env.get("/v1/batches?status=failed", s.acme_key));
  ASSERT_EQ(f["items"].Size(), 1u);
  EXPECT_STREQ(f["items"][0]["error"].GetString(), "COPY failed");
  EXPECT_STREQ(f["items"][0]["device"].GetString(), "meter-1");
  error_of(env.get("/v1/batches?status=lost", s.acme_key), 400);
}

TEST_F(Api, AlertsCarryEveryAttempt) {
  auto d = json(env.get("/v1/alerts?status=failed", s.acme_key));
  ASSERT_EQ(d["items"].Size(), 1u);
  const auto& a = d["items"][0];
  EXPECT_STREQ(a["alert_id"].GetString(), "al-2");
  EXPECT_STREQ(a["webhook"].GetString(), "ops");
  EXPECT_STREQ(a["rule"].GetString(), "high-score");
  EXPECT_STREQ(a["device"].GetString(), "meter-2");
  EXPECT_EQ(a["attempts"].GetInt64(), 3);
  ASSERT_EQ(a["attempt_log"].Size(), 3u);
  EXPECT_EQ(a["attempt_log"][2]["http_status"].GetInt(), 500);
  EXPECT_EQ(json(env.get("/v1/alerts", s.globex_key))["items"].Size(), 1u);
}

TEST_F(Api, ModelsListVersionsNewestFirst) {
  auto d = json(env.get("/v1/models?metric_id=" + s.acme_voltage, s.acme_key));
  ASSERT_EQ(d["items"].Size(), 2u);
  EXPECT_EQ(d["items"][0]["version"].GetInt64(), 2);
  EXPECT_TRUE(d["items"][0]["active"].GetBool());
  EXPECT_DOUBLE_EQ(d["items"][0]["threshold"].GetDouble(), 0.62);
  EXPECT_EQ(d["items"][0]["meta"]["windows"].GetInt(), 72);
  EXPECT_EQ(json(env.get("/v1/models?active=false", s.acme_key))["items"].Size(), 1u);
}

TEST_F(Api, UsagePerDayAndPlan) {
  auto d = json(env.get("/v1/usage", s.acme_key));
  EXPECT_EQ(d["days"].Size(), 2u);
  EXPECT_EQ(d["days"][1]["points_ingested"].GetInt64(), 2000);
  EXPECT_GE(d["series"].GetInt64(), 2);
  EXPECT_EQ(d["plan"]["retention_days"].GetInt64(), 30);
}

TEST_F(Api, SeriesIsDownsampledAndKeepsTheAnomaly) {
  auto r = env.get("/v1/series?metric_id=" + s.acme_voltage + "&max_points=100", s.acme_key);
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = json(r);
  EXPECT_EQ(d["total_points"].GetInt64(), s.voltage_points);
  EXPECT_TRUE(d["downsampled"].GetBool());
  const auto& pts = d["points"];
  // LTTB's budget plus at most two kept extremes per flagged window.
  EXPECT_LE(pts.Size(), 102u);
  EXPECT_GE(pts.Size(), 90u);
  bool spike = false;
  std::int64_t prev = 0;
  for (auto& p : pts.GetArray()) {
    EXPECT_GT(p[0].GetInt64(), prev);
    prev = p[0].GetInt64();
    spike = spike || p[1].GetDouble() == 300;
  }
  EXPECT_TRUE(spike) << "the spike was averaged away";
  int flagged = 0;
  for (auto& sc : d["scores"].GetArray())
    if (sc["anomaly"].GetBool()) {
      ++flagged;
      EXPECT_STREQ(sc["label"].GetString(), "spike");
      EXPECT_STREQ(sc["start"].GetString(), s.spike_start.c_str());
    }
  EXPECT_EQ(flagged, 1);
  EXPECT_EQ(d["scores"].Size(), 72u);
  // Small enough: every point, not downsampled.
  auto all =
      json(env.get("/v1/series?metric_id=" + s.acme_voltage + "&max_points=20000", s.acme_key));
  EXPECT_FALSE(all["downsampled"].GetBool());
  EXPECT_EQ(all["points"].Size(), static_cast<size_t>(s.voltage_points));
  EXPECT_EQ(error_of(env.get("/v1/series", s.acme_key), 400), "metric_id: required");
  error_of(env.get("/v1/series?metric_id=" + s.acme_voltage + "&max_points=2", s.acme_key), 400);
  EXPECT_EQ(error_of(env.get("/v1/series?metric_id=" + s.acme_voltage +
                                 "&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
                             s.acme_key),
                     400),
            "from: must be before to");
}

TEST_F(Api, SeriesRangeBeyondTheReadLimitIsRefused) {
  // The core directly (no socket), configured with a small read limit.
  Options o;
  o.db_url = env.db_url();
  o.pepper = kPepper;
  o.max_range_points = 1000;
  ep::api::Api small(o);
  Request req;
  req.method = "GET";
  req.target = "/v1/series?metric_id=" + s.acme_voltage;
  req.headers["x-api-key"] = s.acme_key;
  Response r = small.handle(req);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("more than 1000 points"), std::string::npos) << r.body;
  req.target += "&from=" + s.spike_start + "&to=" + s.spike_end;  // 30 points
  EXPECT_EQ(small.handle(req).status, 200);
}

TEST_F(Api, DashboardAndOpenApiAreServed) {
  auto r = env.get("/", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(r.headers["content-security-policy"].find("default-src 'self'"), std::string::npos);
  EXPECT_NE(r.body.find("app.js"), std::string::npos);
  EXPECT_EQ(env.get("/app.js", "").status, 200);
  EXPECT_EQ(env.get("/style.css", "").status, 200);
  auto o = env.get("/v1/openapi.json", "");
  EXPECT_EQ(o.status, 200);
  EXPECT_STREQ(json(o)["openapi"].GetString(), "3.1.0");
  error_of(env.get("/nope.html", ""), 404);
}

TEST_F(Api, RowLevelSecurityHoldsEvenWithoutATenantFilter) {
  // The API's session context, applied by hand: a query that forgets tenant_id still
  // sees only the tenant's rows.
  auto c = pg::Conn::connect(env.db_url(), "ep-api-test");
  ASSERT_TRUE(c.is_ok());
  ASSERT_TRUE(c->begin().is_ok());
  ASSERT_TRUE(c->run("SELECT set_config('role', 'edgepulse_app', true), set_config($1, $2, true)",
                     {pg::kTenantSetting, s.acme_id})
                  .is_ok());
  auto r = c->exec("SELECT DISTINCT tenant_id::text FROM devices");
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->size(), 1);
  EXPECT_EQ(r->str(0, 0), s.acme_id);
  ASSERT_TRUE(c->rollback().is_ok());
}

// Runs a node script from tests/ep-api against this server; returns its exit status and
// output (stdout and stderr).
std::pair<int, std::string> run_node(Env& env, const char* script) {
  const Seed& s = env.seed();
  JsonWriter w;
  w.start_object();
  w.kv("acme_key", s.acme_key);
  w.kv("globex_key", s.globex_key);
  w.kv("acme_voltage", s.acme_voltage);
  w.kv("globex_temp", s.globex_temp);
  w.kv("globex_dev", s.globex_dev);
  w.kv("acme_hook", s.acme_hook);
  w.kv("globex_hook", s.globex_hook);
  w.kv("globex_rule", s.globex_rule);
  w.kv("spike_start", s.spike_start);
  w.end_object();
  std::string node_modules = EP_NODE_DIR "/node_modules";
  if (::access((node_modules + "/ajv").c_str(), R_OK) != 0 ||
      ::access((node_modules + "/playwright-core").c_str(), R_OK) != 0)
    return {-1, "npm packages missing: run `npm install` in " EP_NODE_DIR};
  ::setenv("EP_API_BASE", env.base().c_str(), 1);
  ::setenv("EP_FIXTURE", w.take().c_str(), 1);
  ::setenv("EP_NODE_MODULES", node_modules.c_str(), 1);
  ::setenv("EP_WORK_DIR", EP_WORK_DIR, 1);
  std::string cmd = std::string("node " EP_TEST_DIR "/") + script + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out};
}

TEST_F(Api, OpenApiDocumentMatchesEveryRouteAndResponse) {
  auto [rc, out] = run_node(env, "openapi_check.mjs");
  EXPECT_EQ(rc, 0) << out;
  std::cout << out;
}

TEST_F(Api, DashboardShowsTheInjectedSpikeInChromium) {
  auto [rc, out] = run_node(env, "dashboard_check.mjs");
  EXPECT_EQ(rc, 0) << out;
  std::cout << out;
}

}  // namespace
}  // namespace ep::api::test

namespace ep::api::test {
namespace {

// ep-api as a process against the fixture's database, stderr in a file.
class ApiBinary {
 public:
  ApiBinary(const std::string& name, const std::vector<std::string>& extra) {
    err_ = std::string(EP_WORK_DIR) + "/" + name + ".err";
    ::mkdir(EP_WORK_DIR, 0755);
    ::unlink(err_.c_str());  // a file left by an earlier run would show a stale address
    std::vector<std::string> args = {EP_API_BIN, "--listen", "127.0.0.1:0", "--db", Env::get().db_url(),
                                     "--api-key-hash-salt", kPepper};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(EP_API_BIN, argv.data());
      ::_exit(127);
    }
  }
  ~ApiBinary() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string err() const {
    std::ifstream in(err_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Polls for `text` on stderr (an observable condition, bounded).
  bool wait_for(const std::string& text) const {
    for (int i = 0; i < 2000; ++i) {
      if (err().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // "http://127.0.0.1:PORT" or "https://…" from the "listening on" line.
  std::string url() const {
    if (!wait_for("listening on http")) return "";
    std::string e = err();
    size_t at = e.find("http", e.find("listening on "));
    return e.substr(at, e.find_first_of("\r\n ", at) - at);
  }
  unsigned short port() const { return static_cast<unsigned short>(std::stoi(url().substr(url().rfind(':') + 1))); }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Waits for the exit; returns its status (-1 when killed by a signal).
  int wait() {
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

 private:
  pid_t pid_ = -1;
  std::string err_;
};

// The binary against the fixture's database: serves, then drains on SIGTERM and exits 0.
TEST(ApiProcess, ServesAndStopsCleanlyOnSigterm) {
  Env& env = Env::get();
  ApiBinary api("process", {"--max-connections-per-client", "16", "--header-timeout", "3s"});
  std::string url = api.url();
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << api.err();
  auto me = eptest::shell("curl -s -H 'X-API-Key: " + env.seed().acme_key + "' " + url + "/v1/me");
  EXPECT_NE(me.out.find("\"tenant\":\"acme\""), std::string::npos) << me.out;
  auto m = eptest::shell("curl -s " + url + "/metrics");
  EXPECT_NE(m.out.find("ep_api_connections_accepted_total 2\n"), std::string::npos) << m.out;
  api.signal(SIGTERM);
  EXPECT_EQ(api.wait(), 0);
}

// HTTPS with a certificate made now; SIGHUP serves a renewed one, a bad file keeps it.
TEST(ApiProcess, ServesHttpsAndReloadsTheCertificateOnSighup) {
  std::string dir = std::string(EP_WORK_DIR) + "/tls";
  ::mkdir(EP_WORK_DIR, 0755);
  ::mkdir(dir.c_str(), 0755);
  auto cert = eptest::make_cert(dir, "api");
  ApiBinary api("tls", {"--tls-cert", cert.cert, "--tls-key", cert.key});
  ASSERT_EQ(api.url().rfind("https://127.0.0.1:", 0), 0u) << api.err();
  auto h = eptest::curl_https(api.port(), "/v1/health", cert.cert);
  EXPECT_EQ(h.code, 0) << h.out;
  EXPECT_NE(h.out.find("\n200"), std::string::npos) << h.out;
  auto old = eptest::tls11_attempt(api.port());
  EXPECT_NE(old.out.find("alert protocol version"), std::string::npos) << old.out;
  std::string first = eptest::file_fingerprint(cert.cert);
  EXPECT_EQ(eptest::served_fingerprint(api.port()), first);

  auto next = eptest::make_cert(dir, "next");
  ASSERT_EQ(std::rename(next.key.c_str(), cert.key.c_str()), 0);
  ASSERT_EQ(std::rename(next.cert.c_str(), cert.cert.c_str()), 0);
  api.signal(SIGHUP);
  ASSERT_TRUE(api.wait_for("SIGHUP: reloaded the TLS certificate")) << api.err();
  std::string second = eptest::served_fingerprint(api.port());
  EXPECT_EQ(second, eptest::file_fingerprint(cert.cert));
  EXPECT_NE(second, first);

  { std::ofstream(cert.key) << "not a key\n"; }
  api.signal(SIGHUP);
  ASSERT_TRUE(api.wait_for("keeping the previous TLS certificate")) << api.err();
  EXPECT_EQ(eptest::served_fingerprint(api.port()), second);
  auto m = eptest::curl_https(api.port(), "/metrics", cert.cert);
  EXPECT_NE(m.out.find("ep_api_tls_reloads_total 1\n"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("ep_api_tls_reload_failures_total 1\n"), std::string::npos) << m.out;
  api.signal(SIGTERM);
  EXPECT_EQ(api.wait(), 0);
}

// Runs a curl command line (to the loopback server) and returns its stdout.
std::string curl_out(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[2048] = {0};
  size_t n = std::fread(buf, 1, sizeof buf - 1, p);
  ::pclose(p);
  return std::string(buf, n);
}

// --allow-egress: the operator lets webhooks reach an on-premises range, and only it.
TEST(ApiProcess, AllowEgressAdmitsTheAllowlistedRangeOnly) {
  Env& env = Env::get();
  ApiBinary api("allow-egress", {"--allow-egress", "127.0.0.0/8"});
  std::string base = api.url();
  ASSERT_FALSE(base.empty()) << api.err();
  auto post = [&](const std::string& name, const std::string& url) {
    return curl_out(
        "curl -s -w ' %{http_code}' -X POST -H 'Content-Type: application/json' "
        "-H 'X-API-Key: " +
        env.seed().acme_key + "' -d '{\"name\":\"" + name + "\",\"url\":\"" + url + "\"}' " + base +
        "/v1/webhooks");
  };
  std::string ok = post("onprem", "http://127.0.0.1:9/hook");
  EXPECT_EQ(ok.substr(ok.size() - 4), " 201") << ok;
  std::string v6 = post("onprem6", "http://[::1]:9/hook");
  EXPECT_EQ(v6.substr(v6.size() - 4), " 400") << v6;
  EXPECT_NE(v6.find("url: host [::1] is a loopback address, which the egress policy denies"),
            std::string::npos)
      << v6;
  std::string priv = post("private", "http://10.1.2.3/hook");
  EXPECT_EQ(priv.substr(priv.size() - 4), " 400") << priv;
  api.signal(SIGTERM);
  EXPECT_EQ(api.wait(), 0);
  rapidjson::Document created;
  ASSERT_TRUE(parse_json(ok.substr(0, ok.size() - 4), created).is_ok()) << ok;
  std::string id = created["webhook_id"].GetString();
  EXPECT_EQ(env.call("DELETE", "/v1/webhooks/" + id, env.seed().acme_key).status, 204);
}

// A bad allowlist entry is a usage error at startup.
TEST(ApiProcess, BadAllowEgressIsAUsageError) {
  std::string out = curl_out(std::string(EP_API_BIN) +
                             " --allow-egress 10.0.0.1/8 --api-key-hash-salt x --db "
                             "postgresql:///none 2>&1; echo \" $?\"");
  EXPECT_NE(out.find("ep-api: --allow-egress: 10.0.0.1/8: bits set after the prefix (meant "
                     "10.0.0.0/8?)"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.substr(out.size() - 4), " 64\n") << out;
}

}  // namespace
}  // namespace ep::api::test
