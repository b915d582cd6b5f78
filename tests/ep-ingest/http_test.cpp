// ep-ingest over real sockets on 127.0.0.1: every rejection class, keep-alive,
// concurrency, idempotency, quota, deadlines, connection limit, SIGTERM drain, SIGHUP.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <set>
#include <thread>

#include "ep/json.h"
#include "harness.h"
#include "hostile_input.h"

namespace ep::ingest::test {
namespace {

namespace asio = boost::asio;

rapidjson::Document json(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  return d;
}

class HttpIngest : public KeyedTest {
 protected:
  std::unique_ptr<Server> start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--keys", keys_path_};
    if (std::find(extra.begin(), extra.end(), "--threads") == extra.end()) {
      args.push_back("--threads");
      args.push_back("2");
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Server>(dir_, args);
  }
  std::map<std::string, std::string> auth() const { return {{"X-API-Key", key_.key}}; }
  // Stops the server with SIGTERM and returns its stdout lines.
  std::vector<std::string> stop(Server& s) {
    s.process().signal(SIGTERM);
    auto rc = s.process().wait();
    EXPECT_EQ(rc, 0) << s.process().err();
    return lines_of(s.process().out());
  }

};

TEST_F(HttpIngest, AcceptedPayloadIsAnsweredWith202AndEmittedAsBatch) {
  auto s = start();
  Client c(s->port());
  std::string body = payload("meter-001", 3);
  Reply r = c.post(body, auth());
  ASSERT_EQ(r.status, 202u) << r.body;
  auto d = json(r.body);
  EXPECT_STREQ(d["status"].GetString(), "accepted");
  EXPECT_EQ(d["points"].GetInt(), 3);
  std::string batch_id = d["batch_id"].GetString();
  auto lines = stop(*s);
  ASSERT_EQ(lines.size(), 1u);
  auto b = json(lines[0]);
  EXPECT_STREQ(b["kind"].GetString(), "batch");
  EXPECT_EQ(std::string(b["batch_id"].GetString()), batch_id);
  EXPECT_STREQ(b["tenant"].GetString(), "acme");
  EXPECT_STREQ(b["device"].GetString(), "meter-001");
  EXPECT_STREQ(b["source"].GetString(), "http");
  EXPECT_EQ(b["points"].Size(), 3u);
  EXPECT_EQ(std::string(b["raw"].GetString()), body);
  EXPECT_EQ(lines[0].rfind(R"({"kind":"batch")", 0), 0u);
}

struct RejectCase {
  const char* name;
  std::string body;
  std::map<std::string, std::string> headers;  // X-API-Key added unless "X-API-Key" present
  unsigned status;
  const char* error;
  const char* detail;  // exact
};

TEST_F(HttpIngest, EveryRejectionClassHasItsStatusAndNamesTheField) {
  auto revoked = new_key("acme");
  revoked.revoked = true;
  auto disabled = new_key("shut");
  disabled.disabled = true;
  write_keys(keys_path_, {key_, revoked, disabled});
  auto s = start({"--max-body-bytes", "2000", "--max-points", "5"});
  std::string ts = now_rfc3339();
  auto m = [&](const std::string& metric) {
    return R"({"device_external_id":"d1","metrics":[)" + metric + "]}";
  };
  std::vector<RejectCase> cases = {
      {"invalid json", "{\"device_external_id\":", {}, 400, "invalid_json",
       "invalid JSON at byte 22: Invalid value."},
      {"not finite", m(R"({"name":"v","ts":")" + ts + R"(","value":1},{"name":"v","ts":")" + ts +
                       R"(","value":NaN})"),
       {}, 400, "invalid_payload", "metrics[1].value: not a finite number"},
      {"value not number", m(R"({"name":"v","ts":")" + ts + R"(","value":"1"})"), {}, 400,
       "invalid_payload", "metrics[0].value: not a number"},
      {"bad name", m(R"({"name":"v v","ts":")" + ts + R"(","value":1})"), {}, 400, "invalid_payload",
       "metrics[0].name: invalid character (allowed: A-Z a-z 0-9 . _ : / -)"},
      {"bad ts", m(R"({"name":"v","ts":"yesterday","value":1})"), {}, 400, "invalid_payload",
       "metrics[0].ts: not an RFC 3339 timestamp"},
      {"old ts", m(R"({"name":"v","ts":"2001-01-01T00:00:00Z","value":1})"), {}, 400, "invalid_payload",
       "metrics[0].ts: too far in the past (use --no-time-bounds for backfill)"},
      {"long unit", m(R"({"name":"v","ts":")" + ts + R"(","value":1,"unit":"12345678901234567"})"), {},
       400, "invalid_payload", "metrics[0].unit: longer than 16 bytes"},
      {"missing device", R"({"metrics":[]})", {}, 400, "invalid_payload", "device_external_id: required"},
      {"too many points", payload("d1", 6), {}, 413, "payload_too_large", "metrics: more than 5 points"},
      {"body too large", std::string(2001, ' '), {}, 413, "payload_too_large",
       "body: larger than 2000 bytes"},
      {"content type", payload("d1"), {{"Content-Type", "text/plain"}}, 415, "unsupported_media_type",
       "Content-Type: expected application/json, got text/plain"},
      {"no key", payload("d1"), {{"X-API-Key", ""}}, 401, "unauthorized", "X-API-Key: required"},
      {"malformed key", payload("d1"), {{"X-API-Key", "secret"}}, 401, "unauthorized",
       "X-API-Key: malformed key"},
      {"unknown key", payload("d1"), {{"X-API-Key", new_key("acme").key}}, 401, "unauthorized",
       "X-API-Key: unknown key"},
      {"revoked key", payload("d1"), {{"X-API-Key", revoked.key}}, 403, "forbidden", "X-API-Key: key revoked"},
      {"disabled tenant", payload("d1"), {{"X-API-Key", disabled.key}}, 403, "forbidden",
       "tenant shut is disabled"},
  };
  for (const auto& rc : cases) {
    Client c(s->port());
    auto h = rc.headers;
    if (!h.count("X-API-Key")) h["X-API-Key"] = key_.key;
    if (h["X-API-Key"].empty()) h.erase("X-API-Key");
    h.emplace("Content-Type", "application/json");
    Reply r = c.request("POST", "/v1/ingest", rc.body, h);
    EXPECT_EQ(r.status, rc.status) << rc.name << ": " << r.body;
    EXPECT_EQ(r.headers["Content-Type"], "application/json") << rc.name;
    auto d = json(r.body);
    ASSERT_TRUE(d.IsObject()) << rc.name << ": " << r.body;
    EXPECT_STREQ(d["error"].GetString(), rc.error) << rc.name;
    EXPECT_STREQ(d["detail"].GetString(), rc.detail) << rc.name;
  }
  EXPECT_TRUE(stop(*s).empty()) << "a rejected payload must emit nothing";
}

// Bodies nested far past kMaxJsonDepth (one of them used to kill the server with SIGSEGV)
// are 400 invalid_json naming the limit, and the server keeps serving: another tenant's
// request right after each is accepted.
TEST_F(HttpIngest, DeeplyNestedBodiesAre400AndOtherTenantsAreStillServed) {
  auto other = new_key("globex");
  write_keys(keys_path_, {key_, other});
  auto s = start();
  const std::string limit = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  auto hostile = eptest::hostile::hostile_lines();
  for (const auto& h : hostile) {
    Client c(s->port());
    Reply r = c.post(h.text, auth());
    EXPECT_EQ(r.status, 400u) << h.name << ": " << r.body;
    auto d = json(r.body);
    ASSERT_TRUE(d.IsObject()) << h.name << ": " << r.body;
    std::string detail = d["detail"].GetString();
    if (h.root_is_object) {
      EXPECT_STREQ(d["error"].GetString(), "invalid_json") << h.name;
      EXPECT_NE(detail.find(limit), std::string::npos) << h.name << ": " << detail;
    } else {
      // A bare value is not a payload; an array is read as payloads, and its first is bad.
      EXPECT_TRUE(detail == "payload: not a JSON object" || detail.find("payloads[0]") != std::string::npos)
          << h.name << ": " << detail;
    }
    Client next(s->port());
    Reply ok = next.post(payload("meter-2"), {{"X-API-Key", other.key}});
    EXPECT_EQ(ok.status, 202u) << "after " << h.name << ": " << ok.body;
  }
  auto lines = stop(*s);
  ASSERT_EQ(lines.size(), hostile.size());
  for (const auto& l : lines) EXPECT_STREQ(json(l)["tenant"].GetString(), "globex");
}

TEST_F(HttpIngest, ChunkedBodyOverTheLimitIs413) {
  auto s = start({"--max-body-bytes", "1000"});
  Client c(s->port());
  std::string req = "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "X-API-Key: " + key_.key + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) req += "200\r\n" + std::string(512, ' ') + "\r\n";
  req += "0\r\n\r\n";
  asio::write(c.socket(), asio::buffer(req));
  boost::beast::flat_buffer buf;
  boost::beast::http::response<boost::beast::http::string_body> res;
  boost::beast::http::read(c.socket(), buf, res);
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_FALSE(res.keep_alive());
}

TEST_F(HttpIngest, UnknownRoutesAndMethods) {
  auto s = start();
  Client c(s->port());
  EXPECT_EQ(c.request("GET", "/nope").status, 404u);
  Reply r = c.request("GET", "/v1/ingest");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.headers["Allow"], "POST");
  EXPECT_EQ(c.request("POST", "/v1/health", "x").status, 405u);
}

TEST_F(HttpIngest, KeepAliveServesManyRequestsOnOneConnection) {
  auto s = start();
  Client c(s->port());
  for (int i = 0; i < 50; ++i) {
    Reply r = c.post(payload("d" + std::to_string(i)), auth());
    ASSERT_EQ(r.status, 202u) << r.body;
    EXPECT_TRUE(r.keep_alive);
  }
  Reply m = c.request("GET", "/metrics");
  EXPECT_NE(m.body.find("ep_ingest_connections_accepted_total 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("ep_ingest_requests_total{code=\"202\"} 50\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("ep_ingest_points_accepted_total 50\n"), std::string::npos) << m.body;
  EXPECT_EQ(stop(*s).size(), 50u);
}

TEST_F(HttpIngest, SixtyFourConcurrentClientsAllGetTheirBatchesEmittedOnce) {
  auto s = start({"--archive", "file://" + dir_ + "/archive"});
  constexpr int kClients = 64, kEach = 10;
  std::vector<std::vector<std::string>> ids(kClients);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      try {
        Client c(s->port());
        for (int i = 0; i < kEach; ++i) {
          Reply r = c.post(payload("dev-" + std::to_string(t), 10), auth());
          if (r.status != 202) {
            failures++;
            continue;
          }
          ids[t].push_back(json(r.body)["batch_id"].GetString());
        }
      } catch (const std::exception&) {
        failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<std::string> acked;
  for (auto& v : ids) acked.insert(v.begin(), v.end());
  EXPECT_EQ(acked.size(), static_cast<size_t>(kClients * kEach));
  std::set<std::string> emitted;
  for (const auto& line : stop(*s)) emitted.insert(json(line)["batch_id"].GetString());
  EXPECT_EQ(emitted, acked);
}

TEST_F(HttpIngest, IdempotencyKeyReplaysTheOriginalBatchAndEmitsNothingTwice) {
  auto s = start();
  Client c(s->port());
  auto h = auth();
  h["Idempotency-Key"] = "retry-42";
  std::string body = payload("d1", 2);
  Reply first = c.post(body, h);
  ASSERT_EQ(first.status, 202u);
  Reply again = c.post(body, h);
  ASSERT_EQ(again.status, 202u);
  EXPECT_EQ(json(again.body)["batch_id"].GetString(), std::string(json(first.body)["batch_id"].GetString()));
  EXPECT_EQ(again.headers["Idempotent-Replayed"], "true");
  Reply other = c.post(payload("d2", 2), h);
  EXPECT_EQ(other.status, 422u) << other.body;
  // The same key under another tenant is another key.
  auto k2 = new_key("other");
  write_keys(keys_path_, {key_, k2});
  s->process().signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return s->process().err().find("SIGHUP: reloaded 2 keys") != std::string::npos; }));
  Reply t2 = c.post(body, {{"X-API-Key", k2.key}, {"Idempotency-Key", "retry-42"}});
  EXPECT_EQ(t2.status, 202u);
  EXPECT_NE(json(t2.body)["batch_id"].GetString(), std::string(json(first.body)["batch_id"].GetString()));
  EXPECT_EQ(stop(*s).size(), 2u);
}

TEST_F(HttpIngest, QuotaExceededIs429WithRetryAfter) {
  auto limited = new_key("small", 25);  // 25 points per minute
  write_keys(keys_path_, {key_, limited});
  auto s = start();
  Client c(s->port());
  std::map<std::string, std::string> h = {{"X-API-Key", limited.key}};
  EXPECT_EQ(c.post(payload("d1", 10), h).status, 202u);
  EXPECT_EQ(c.post(payload("d1", 10), h).status, 202u);
  Reply r = c.post(payload("d1", 10), h);
  ASSERT_EQ(r.status, 429u) << r.body;
  EXPECT_STREQ(json(r.body)["error"].GetString(), "quota_exceeded");
  int wait = std::stoi(r.headers["Retry-After"]);
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 60);
  // Another tenant is not affected.
  EXPECT_EQ(c.post(payload("d1", 10), auth()).status, 202u);
  EXPECT_EQ(stop(*s).size(), 3u);
}

TEST_F(HttpIngest, DefaultQuotaAppliesToKeysWithoutAPlan) {
  auto s = start({"--points-per-minute", "5"});
  Client c(s->port());
  EXPECT_EQ(c.post(payload("d1", 5), auth()).status, 202u);
  EXPECT_EQ(c.post(payload("d1", 1), auth()).status, 429u);
}

TEST_F(HttpIngest, SlowClientIsCutByTheHeaderDeadlineWithoutHoldingAWorker) {
  auto s = start({"--threads", "1", "--header-timeout", "1s"});
  Client slow(s->port());
  asio::write(slow.socket(), asio::buffer(std::string("POST /v1/ingest HTTP/1.1\r\nHost: x\r\n")));
  // While the slow client dawdles, another is served on the single thread.
  Client fast(s->port());
  EXPECT_EQ(fast.post(payload("d1"), auth()).status, 202u);
  // The server closes the slow connection at the deadline: our read ends with EOF.
  auto t0 = std::chrono::steady_clock::now();
  char buf[256];
  boost::system::error_code ec;
  size_t n = slow.socket().read_some(asio::buffer(buf), ec);
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  Reply m = fast.request("GET", "/metrics");
  EXPECT_NE(m.body.find("ep_ingest_timeouts_total 1\n"), std::string::npos) << m.body;
}

TEST_F(HttpIngest, TruncatedBodyIsAnswered408AtTheBodyDeadline) {
  auto s = start({"--body-timeout", "1s"});
  Client slow(s->port());
  asio::write(slow.socket(), asio::buffer("POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                          "Content-Length: 100\r\nX-API-Key: " + key_.key + "\r\n\r\n{"));
  boost::beast::flat_buffer buf;
  boost::beast::http::response<boost::beast::http::string_body> res;
  boost::beast::http::read(slow.socket(), buf, res);
  EXPECT_EQ(res.result_int(), 408u);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(json(res.body())["error"].GetString(), std::string("request_timeout")) << res.body();
  // Then the connection is closed.
  char b[16];
  boost::system::error_code ec;
  EXPECT_EQ(slow.socket().read_some(asio::buffer(b), ec), 0u);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  Client c(s->port());
  Reply m = c.request("GET", "/metrics");
  EXPECT_NE(m.body.find("ep_ingest_body_timeouts_total 1\n"), std::string::npos) << m.body;
  EXPECT_EQ(stop(*s).size(), 0u) << "a truncated body is never emitted";
}

TEST_F(HttpIngest, HealthAndMetricsNeedNoKey) {
  auto s = start({"--archive", "file://" + dir_ + "/archive"});
  Client c(s->port());
  Reply h = c.request("GET", "/v1/health");
  EXPECT_EQ(h.status, 200u);
  EXPECT_EQ(h.body, R"({"status":"ok"})");
  EXPECT_EQ(c.post("{", auth()).status, 400u);
  EXPECT_EQ(c.post(payload("d"), auth()).status, 202u);
  Reply m = c.request("GET", "/metrics");
  EXPECT_EQ(m.status, 200u);
  EXPECT_EQ(m.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8");
  for (const char* want : {"ep_ingest_rejects_total{reason=\"invalid_json\"} 1\n",
                           "ep_ingest_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
                           "ep_ingest_archive_commit_duration_seconds_count 1\n",
                           "ep_ingest_batches_accepted_total 1\n"}) {
    EXPECT_NE(m.body.find(want), std::string::npos) << want << "\n" << m.body;
  }
}

TEST_F(HttpIngest, SigtermFinishesTheInFlightRequestThenExitsZero) {
  auto s = start();
  Client c(s->port());
  std::string body = payload("d1", 4);
  std::string head = "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: " +
                     key_.key + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  // Header and half the body are in: the request is in flight.
  asio::write(c.socket(), asio::buffer(head + body.substr(0, body.size() / 2)));
  Client idle(s->port());
  EXPECT_EQ(idle.request("GET", "/v1/health").status, 200u);
  s->process().signal(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return s->process().err().find("SIGTERM: draining") != std::string::npos; }));
  asio::write(c.socket(), asio::buffer(body.substr(body.size() / 2)));
  boost::beast::flat_buffer buf;
  boost::beast::http::response<boost::beast::http::string_body> res;
  boost::beast::http::read(c.socket(), buf, res);
  EXPECT_EQ(res.result_int(), 202u);
  EXPECT_FALSE(res.keep_alive()) << "a draining server closes connections after the response";
  auto rc = s->process().wait();
  EXPECT_EQ(rc, 0) << s->process().err();
  auto lines = lines_of(s->process().out());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json(lines[0])["batch_id"].GetString(), std::string(json(res.body())["batch_id"].GetString()));
  // The idle keep-alive connection was closed, not left hanging.
  char b[16];
  boost::system::error_code ec;
  EXPECT_EQ(idle.socket().read_some(asio::buffer(b), ec), 0u);
}

TEST_F(HttpIngest, SighupReloadsKeysAndABadFileKeepsThePreviousOnes) {
  auto s = start();
  Client c(s->port());
  auto k2 = new_key("beta");
  EXPECT_EQ(c.post(payload("d"), {{"X-API-Key", k2.key}}).status, 401u);
  auto revoked = key_;
  revoked.revoked = true;
  write_keys(keys_path_, {revoked, k2});
  s->process().signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return s->process().err().find("SIGHUP: reloaded 2 keys") != std::string::npos; }));
  EXPECT_EQ(c.post(payload("d"), {{"X-API-Key", k2.key}}).status, 202u);
  EXPECT_EQ(c.post(payload("d"), auth()).status, 403u);
  write_text(keys_path_, "not json\n");
  s->process().signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return s->process().err().find("keeping the previous keys") != std::string::npos; }));
  EXPECT_EQ(c.post(payload("d"), {{"X-API-Key", k2.key}}).status, 202u);
}

TEST_F(HttpIngest, StartupErrorsAreUsageErrors) {
  Process p({EP_INGEST_BIN, "--listen", "127.0.0.1:0"}, dir_, {{"API_KEY_HASH_SALT", kPepper}});
  EXPECT_EQ(p.wait(), 64);
  EXPECT_NE(p.err().find("--keys FILE or --db [URL] is required"), std::string::npos) << p.err();
  Process q({EP_INGEST_BIN, "--listen", "nonsense", "--keys", keys_path_}, dir_, {{"API_KEY_HASH_SALT", kPepper}});
  EXPECT_EQ(q.wait(), 64);
  Process r({EP_INGEST_BIN, "--keys", dir_ + "/missing"}, dir_, {{"API_KEY_HASH_SALT", kPepper}});
  EXPECT_NE(r.wait(), 0);
  EXPECT_NE(r.err().find("missing"), std::string::npos) << r.err();
}

}  // namespace
}  // namespace ep::ingest::test
