#pragma once
// The NDJSON records of docs/architecture.md §3. Each type parses from a RapidJSON object (errors name
// the field) and serialises to one line with "kind" first, timestamps UTC with ms.
// Readers ignore unknown fields; pass-through stages that must keep them work on the
// RapidJSON document directly (see ep-archive).
#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ep/json.h"
#include "ep/status.h"
#include "ep/time.h"

namespace ep {

enum class Kind { kUnknown, kBatch, kPoint, kWindow, kScore, kAlert, kTruth };
Kind kind_of(const rapidjson::Value& obj);
Kind kind_from_name(std::string_view name);
const char* kind_name(Kind k);

struct SeriesKey {
  std::string tenant, device, metric;
  bool operator==(const SeriesKey&) const = default;
  std::string to_string() const { return tenant + "/" + device + "/" + metric; }
};
struct SeriesKeyHash {
  size_t operator()(const SeriesKey& k) const;
};

struct BatchPoint {
  std::string metric;
  TimeNs ts = 0;
  double value = 0;
  std::string unit;  // empty = none
};

struct Batch {
  std::string batch_id, tenant, device, source;
  TimeNs received_at = 0;
  std::string sha256;
  std::vector<BatchPoint> points;
  std::optional<std::string> raw;      // exact request body (before ep-archive)
  std::optional<std::string> archive;  // archive URI (after ep-archive)
};

struct Point {
  std::string tenant, device, metric;
  TimeNs ts = 0;
  double value = 0;
  std::string unit;
  std::string batch_id;
};

struct Feature {
  std::string name;
  double value = 0;
};

struct Window {
  std::string tenant, device, metric;
  TimeNs start = 0, end = 0;
  std::int64_t n = 0, expected = 0;
  // In output order. Boolean features ("stuck") are stored as 0/1 and written as bools.
  std::vector<Feature> features;
  const double* feature(std::string_view name) const;
};
bool is_boolean_feature(std::string_view name);

struct Explanation {
  std::string feature;
  double value = 0, baseline = 0, z = 0;
};

struct Score {
  std::string tenant, device, metric;
  TimeNs start = 0, end = 0;
  double score = 0;
  bool anomaly = false;
  std::string label = "normal";
  std::string model;   // "acme/meter-001/voltage@3" or "fallback"
  std::string status;  // "" or "warming"
  std::vector<Explanation> explanation;
};

struct Alert {
  std::string alert_id, rule, tenant, device, metric;
  TimeNs start = 0, end = 0;
  double score = 0;
  std::string label, webhook, status, type, severity, error;
  int attempts = 0;
  int http_status = 0;  // 0 = none
};

struct Truth {
  std::string tenant, device, metric;
  TimeNs start = 0, end = 0;
  std::string type;
};

// Parse a record object of the given type. The object must be a JSON object; "kind" is
// not checked here (callers dispatch on kind_of()).
Status parse_record(const rapidjson::Value& obj, Batch& out);
Status parse_record(const rapidjson::Value& obj, Point& out);
Status parse_record(const rapidjson::Value& obj, Window& out);
Status parse_record(const rapidjson::Value& obj, Score& out);
Status parse_record(const rapidjson::Value& obj, Alert& out);
Status parse_record(const rapidjson::Value& obj, Truth& out);

// Serialise one record (no trailing newline).
std::string to_ndjson(const Batch& r);
std::string to_ndjson(const Point& r);
std::string to_ndjson(const Window& r);
std::string to_ndjson(const Score& r);
std::string to_ndjson(const Alert& r);
std::string to_ndjson(const Truth& r);
void write_record(JsonWriter& w, const Batch& r);
void write_record(JsonWriter& w, const Point& r);
void write_record(JsonWriter& w, const Window& r);
void write_record(JsonWriter& w, const Score& r);
void write_record(JsonWriter& w, const Alert& r);
void write_record(JsonWriter& w, const Truth& r);
// A score's "explanation" array (also stored as anomaly_scores.explanation).
void write_explanation(JsonWriter& w, const std::vector<Explanation>& ex);

// Expands a batch into its points (tenant, device, batch_id copied to each).
std::vector<Point> points_of(const Batch& b);

// Names: [A-Za-z0-9._:/-]{1,max}.
bool valid_name(std::string_view s, size_t max = 128);
// A metric: a name as valid_name, optionally followed by its labels the way Prometheus
// writes a series, name{k="v",k2="v2"} (label names as valid_name, sorted, each once;
// values with \\ \" \n escaped), at most max_len bytes. "" when valid, else the reason.
const char* metric_problem(std::string_view metric, size_t max_len = 512);
// Tenant names: a valid name that is also one path segment, because a tenant names a
// directory (or key component) of the archive: no '/', not starting with '.'. The one
// rule ep-admin, ep-load, ep-ingest and the archive apply.
bool valid_tenant(std::string_view s);
// The reason when valid_tenant fails.
inline constexpr const char* kInvalidTenant =
    "not a valid tenant name ([A-Za-z0-9._:-]{1,128}, not starting with '.')";

}  // namespace ep
