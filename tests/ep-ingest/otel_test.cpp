// OTLP/HTTP metrics with the real senders: the official OpenTelemetry JS SDK exporters
// (npm, tests/node) export counters, a gauge and an up-down counter to ep-ingest in
// protobuf and in JSON (otel_export.mjs says what they record).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <filesystem>
#include <map>

#include "harness.h"

namespace ep::ingest::test {
namespace {

struct Exported {
  std::optional<int> exit;
  std::string out;
};

Exported run_exporter(const std::string& dir, unsigned short port, const std::string& key,
                      const std::string& encoding, const std::string& device) {
  Process node({EP_NODE_BIN, EP_OTEL_SCRIPT, "http://127.0.0.1:" + std::to_string(port) + "/v1/metrics", key, encoding,
                device},
               dir, {{"EP_NODE_MODULES", EP_NODE_DIR "/node_modules"}});
  auto rc = node.wait(std::chrono::seconds(60));
  return {rc, node.out() + node.err()};
}

// device -> metric -> (value, samples) from ep-ingest's batch records of source otlp.
struct Seen {
  double value = 0;
  int samples = 0;
  std::string unit;
};
std::map<std::string, std::map<std::string, Seen>> received(const std::string& out) {
  std::map<std::string, std::map<std::string, Seen>> got;
  for (const auto& line : lines_of(out)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (d.HasParseError() || std::string(d["source"].GetString()) != "otlp") continue;
    for (const auto& p : d["points"].GetArray()) {
      Seen& s = got[d["device"].GetString()][p["metric"].GetString()];
      s.value = p["value"].GetDouble();
      s.samples++;
      if (p.HasMember("unit")) s.unit = p["unit"].GetString();
    }
  }
  return got;
}

class OtelExporters : public KeyedTest {};

TEST_F(OtelExporters, ProtobufAndJsonExportsArriveOncePerSeriesWithTheirValues) {
  ASSERT_TRUE(std::filesystem::exists(EP_NODE_DIR "/node_modules/@opentelemetry/sdk-metrics"))
      << "npm packages missing: run `npm install` in " EP_NODE_DIR;
  Server s(dir_, {"--keys", keys_path_, "--threads", "2"});
  for (std::string encoding : {"proto", "json"}) {
    auto e = run_exporter(dir_, s.port(), key_.key, encoding, "pump-" + encoding);
    EXPECT_EQ(e.exit, 0) << encoding << ": " << e.out;
  }
  s.process().signal(SIGTERM);
  ASSERT_EQ(s.process().wait(), 0) << s.process().err();
  auto got = received(s.process().out());
  for (std::string device : {"pump-proto", "pump-json"}) {
    SCOPED_TRACE(device);
    auto& m = got[device];
    std::map<std::string, double> values;
    for (const auto& [metric, seen] : m) {
      EXPECT_EQ(seen.samples, 1) << metric << ": one export, one sample per series";
      values[metric] = seen.value;
    }
    std::map<std::string, double> want = {
        {"pumped.litres{line=\"a\",service.name=\"pump\"}", 12},
        {"pumped.litres{line=\"b\",service.name=\"pump\"}", 2},
        {"tank.level{service.name=\"pump\",tank=\"t1\"}", 0.75},
        {"tank.level{service.name=\"pump\",tank=\"t2\"}", 0.5},
        {"queue.depth{service.name=\"pump\"}", 2},
    };
    EXPECT_EQ(values, want);
    EXPECT_EQ(m["pumped.litres{line=\"a\",service.name=\"pump\"}"].unit, "L");
  }
}

TEST_F(OtelExporters, AWrongKeyIsAFailedExportAndNothingIsStored) {
  Server s(dir_, {"--keys", keys_path_, "--threads", "2"});
  for (std::string encoding : {"proto", "json"}) {
    auto e = run_exporter(dir_, s.port(), "not-a-key", encoding, "pump");
    EXPECT_EQ(e.exit, 1) << encoding << ": " << e.out;
    EXPECT_NE(e.out.find("\"code\":1"), std::string::npos) << e.out;
    EXPECT_NE(e.out.find("\"status\":401"), std::string::npos) << e.out;
  }
  s.process().signal(SIGTERM);
  ASSERT_EQ(s.process().wait(), 0);
  EXPECT_TRUE(received(s.process().out()).empty());
}

}  // namespace
}  // namespace ep::ingest::test
