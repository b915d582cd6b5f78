// Prometheus remote write with the real sender: Debian's prometheus server on 127.0.0.1
// scrapes ep-ingest's own /metrics every second and remote-writes to ep-ingest twice,
// once with the tenant's key and once with a wrong one. Every sample that arrives is
// compared with what Prometheus itself reports through its HTTP API.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <cmath>
#include <map>
#include <set>

#include "ep/time.h"
#include "harness.h"
#include "pg_fixture.h"

namespace ep::ingest::test {
namespace {

using Samples = std::map<std::int64_t, double>;  // ts (ms) -> value
using SeriesSamples = std::map<std::string, Samples>;  // "device/metric" -> samples

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string get(unsigned short port, const std::string& target) {
  try {
    Client c(port);
    Reply r = c.request("GET", target);
    return r.status == 200 ? r.body : "";
  } catch (const std::exception&) {
    return "";
  }
}

// The value of the first sample of `name` whose labels contain `has` (-1: none).
double scraped(const std::string& metrics, const std::string& name, const std::string& has) {
  for (const auto& line : lines_of(metrics)) {
    if (line.rfind(name + "{", 0) != 0 || line.find(has) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

// Batch records from ep-ingest's stdout, per device/metric; counts duplicates of (series, ts).
SeriesSamples received(const std::string& out, int& duplicates) {
  SeriesSamples got;
  duplicates = 0;
  for (const auto& line : lines_of(out)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (d.HasParseError() || std::string(d["source"].GetString()) != "prometheus") continue;
    std::string device = d["device"].GetString();
    for (const auto& p : d["points"].GetArray()) {
      auto ts = parse_rfc3339(p["ts"].GetString());
      if (!ts) continue;
      auto& s = got[device + "/" + p["metric"].GetString()];
      duplicates += s.count(*ts / 1'000'000) ? 1 : 0;
      s[*ts / 1'000'000] = p["value"].GetDouble();
    }
  }
  return got;
}

// What Prometheus holds for {job="ingest"} over the last 10 minutes, named as ep-ingest
// names it: device = instance, metric = __name__{other labels sorted}. NaN samples are
// left out (ep-ingest rejects them by design).
SeriesSamples prometheus_series(unsigned short port) {
  std::string body = get(port, "/api/v1/query?query=" + url_encode("{job=\"ingest\"}[10m]"));
  rapidjson::Document d;
  d.Parse(body.c_str());
  SeriesSamples out;
  if (d.HasParseError() || !d.HasMember("data")) return out;
  for (const auto& r : d["data"]["result"].GetArray()) {
    std::map<std::string, std::string> labels;
    for (const auto& m : r["metric"].GetObject()) labels[m.name.GetString()] = m.value.GetString();
    std::string metric = labels["__name__"], device = labels["instance"];
    labels.erase("__name__");
    labels.erase("instance");
    std::string sep = "{";
    for (const auto& [k, v] : labels) {
      metric += sep + k + "=\"" + v + "\"";
      sep = ",";
    }
    if (!labels.empty()) metric += "}";
    auto& s = out[device + "/" + metric];
    for (const auto& v : r["values"].GetArray()) {
      double value = std::stod(v[1].GetString());
      if (!std::isnan(value)) s[std::llround(v[0].GetDouble() * 1000)] = value;
    }
  }
  return out;
}

class PrometheusRemoteWrite : public KeyedTest {};

TEST_F(PrometheusRemoteWrite, EverySampleArrivesOnceWithPrometheusValuesAndAWrongKeyIs401) {
  Server ingest(dir_, {"--keys", keys_path_, "--threads", "2"});
  std::string target = "127.0.0.1:" + std::to_string(ingest.port());
  std::string write_url = "http://" + target + "/api/v1/write";
  int prom_port = eptest::free_port();
  write_text(dir_ + "/prometheus.yml",
             "global:\n  scrape_interval: 1s\n"
             "scrape_configs:\n  - job_name: ingest\n    static_configs:\n      - targets: ['" + target + "']\n"
             "remote_write:\n"
             "  - name: good\n    url: " + write_url + "\n    authorization:\n      credentials: " + key_.key +
             "\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n"
             "  - name: bad\n    url: " + write_url + "\n    authorization:\n      credentials: not-a-key\n"
             "    queue_config:\n      batch_send_deadline: 1s\n");
  Process prom({"/usr/bin/prometheus", "--config.file=" + dir_ + "/prometheus.yml",
                "--storage.tsdb.path=" + dir_ + "/tsdb", "--web.listen-address=127.0.0.1:" + std::to_string(prom_port),
                "--log.level=warn"},
               dir_);

  // Five scrapes of `up` have arrived, and the wrong key was refused.
  const std::string up = target + "/up{job=\"ingest\"}";
  int duplicates = 0;
  ASSERT_TRUE(wait_until([&] { return received(ingest.process().out(), duplicates)[up].size() >= 5; },
                         std::chrono::seconds(60)))
      << prom.err() << ingest.process().err();
  ASSERT_TRUE(wait_until([&] {
    return scraped(get(prom_port, "/metrics"), "prometheus_remote_storage_samples_failed_total",
                   "remote_name=\"bad\"") > 0;
  }, std::chrono::seconds(30)))
      << "Prometheus counts the samples refused to the wrong key as failed";
  EXPECT_GT(scraped(get(ingest.port(), "/metrics"), "ep_ingest_rejects_total", "reason=\"unauthorized\""), 0);

  // Per series, what arrived is exactly what Prometheus holds up to the last sample that
  // arrived (a series is sent in order; later ones may still be queued), each sample once.
  SeriesSamples got = received(ingest.process().out(), duplicates);
  SeriesSamples prom_has = prometheus_series(static_cast<unsigned short>(prom_port));
  EXPECT_EQ(duplicates, 0);
  ASSERT_GE(got.size(), 20u) << "ep-ingest's /metrics has dozens of series";
  size_t compared = 0;
  for (const auto& [series, samples] : got) {
    ASSERT_TRUE(prom_has.count(series)) << series << " arrived but Prometheus does not have it";
    Samples expected;
    for (const auto& [ts, v] : prom_has[series])
      if (ts <= samples.rbegin()->first) expected[ts] = v;
    EXPECT_EQ(samples, expected) << series;
    compared += samples.size();
  }
  EXPECT_GE(compared, 100u);
  prom.signal(SIGTERM);
  EXPECT_TRUE(prom.wait().has_value());
  ingest.process().signal(SIGTERM);
  EXPECT_EQ(ingest.process().wait(), 0);
}

}  // namespace
}  // namespace ep::ingest::test
