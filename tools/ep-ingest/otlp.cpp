#include "otlp.h"

#include <google/protobuf/arena.h>
#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <climits>
#include <deque>
#include <vector>

#include "ep/crypto.h"
#include "ep/json.h"
#include "google/status.pb.h"
#include "otlp/metrics.pb.h"

namespace ep::ingest {

namespace {

namespace pb = google::protobuf;
using Attributes = pb::RepeatedPtrField<otlp::KeyValue>;

// google.rpc.Code values of the OTLP answers.
enum GrpcCode {
  kInvalidArgument = 3,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

constexpr std::uint32_t kNoRecordedValue = 1;  // DataPointFlags.FLAG_NO_RECORDED_VALUE

bool is_json(const http::Request& req) {
  auto ct = req[boost::beast::http::field::content_type];
  return media_type_accepted(std::string_view(ct.data(), ct.size()), "application/json");
}

std::string shortest(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// Non-text attribute values as JSON (arrays, key-value lists) or their plain text form.
void write_json(JsonWriter& w, const otlp::AnyValue& v) {
  switch (v.value_case()) {
    case otlp::AnyValue::kStringValue: return w.str(v.string_value());
    case otlp::AnyValue::kBoolValue: return w.boolean(v.bool_value());
    case otlp::AnyValue::kIntValue: return w.num(static_cast<std::int64_t>(v.int_value()));
    case otlp::AnyValue::kDoubleValue: return w.num(v.double_value());
    case otlp::AnyValue::kBytesValue: return w.str(crypto::base64(v.bytes_value()));
    case otlp::AnyValue::kArrayValue:
      w.start_array();
      for (const auto& e : v.array_value().values()) write_json(w, e);
      return w.end_array();
    case otlp::AnyValue::kKvlistValue:
      w.start_object();
      for (const auto& kv : v.kvlist_value().values()) {
        w.key(kv.key());
        write_json(w, kv.value());
      }
      return w.end_object();
    default: return w.null();
  }
}

std::string value_text(const otlp::AnyValue& v) {
  switch (v.value_case()) {
    case otlp::AnyValue::kBoolValue: return v.bool_value() ? "true" : "false";
    case otlp::AnyValue::kIntValue: return std::to_string(v.int_value());
    case otlp::AnyValue::kDoubleValue: return shortest(v.double_value());
    case otlp::AnyValue::kBytesValue: return crypto::base64(v.bytes_value());
    default: {
      JsonWriter w;
      write_json(w, v);
      return w.take();
    }
  }
}

// One request's data points into a SampleSink.
class Reader {
 public:
  explicit Reader(SampleSink& sink) : sink_(sink) {}

  void resource(const otlp::ResourceMetrics& rm) {
    resource_.clear();
    for (const auto& kv : rm.resource().attributes()) resource_.push_back({kv.key(), text_of(kv.value())});
    for (const auto& sm : rm.scope_metrics())
      for (const auto& m : sm.metrics()) metric(m);
  }

 private:
  void metric(const otlp::Metric& m) {
    name_ = m.name();
    unit_ = m.unit().size() <= sink_.limits().max_unit_len ? std::string_view(m.unit()) : std::string_view{};
    switch (m.data_case()) {
      case otlp::Metric::kGauge:
        for (const auto& p : m.gauge().data_points()) number(p);
        return;
      case otlp::Metric::kSum:
        for (const auto& p : m.sum().data_points()) number(p);
        return;
      case otlp::Metric::kHistogram:
        for (const auto& p : m.histogram().data_points()) count_sum(p);
        return;
      case otlp::Metric::kExponentialHistogram:
        for (const auto& p : m.exponential_histogram().data_points()) count_sum(p);
        return;
      case otlp::Metric::kSummary:
        for (const auto& p : m.summary().data_points()) summary(p);
        return;
      default: sink_.reject("metric '" + std::string(name_) + "': no data (gauge, sum, histogram or summary)");
    }
  }

  void number(const otlp::NumberDataPoint& p) {
    if (p.flags() & kNoRecordedValue) return;
    TimeNs ts;
    if (!begin_point(p.attributes(), p.time_unix_nano(), ts)) return;
    if (p.value_case() == otlp::NumberDataPoint::kAsDouble) add(name_, ts, p.as_double());
    else if (p.value_case() == otlp::NumberDataPoint::kAsInt) add(name_, ts, static_cast<double>(p.as_int()));
    else sink_.reject("metric '" + std::string(name_) + "': data point without a value (asDouble or asInt)");
  }

  // Histogram and ExponentialHistogram points: the count and the sum (buckets not stored).
  template <typename Point>
  void count_sum(const Point& p) {
    if (p.flags() & kNoRecordedValue) return;
    TimeNs ts;
    if (!begin_point(p.attributes(), p.time_unix_nano(), ts)) return;
    add(suffixed("_count"), ts, static_cast<double>(p.count()));
    if (p.has_sum()) add(suffixed("_sum"), ts, p.sum());
  }

  void summary(const otlp::SummaryDataPoint& p) {
    if (p.flags() & kNoRecordedValue) return;
    TimeNs ts;
    if (!begin_point(p.attributes(), p.time_unix_nano(), ts)) return;
    add(suffixed("_count"), ts, static_cast<double>(p.count()));
    add(suffixed("_sum"), ts, p.sum());
    size_t base = labels_.size();
    for (const auto& q : p.quantile_values()) {
      labels_.resize(base);
      labels_.push_back({"quantile", keep(shortest(q.quantile()))});
      sink_.add(name_, labels_, ts, q.value(), unit_);
    }
  }

  // The labels of a point (resource first, the point's attributes win) and its time.
  bool begin_point(const Attributes& attributes, std::uint64_t time_unix_nano, TimeNs& ts) {
    labels_ = resource_;
    for (const auto& kv : attributes) {
      Label l{kv.key(), text_of(kv.value())};
      auto same = std::find_if(labels_.begin(), labels_.end(), [&](const Label& o) { return o.name == l.name; });
      if (same != labels_.end()) same->value = l.value;
      else labels_.push_back(l);
    }
    if (time_unix_nano == 0 || time_unix_nano > static_cast<std::uint64_t>(INT64_MAX)) {
      std::string series;
      append_series_metric(series, name_, labels_);
      sink_.reject(series + ": timeUnixNano " + (time_unix_nano ? "out of range" : "missing"));
      return false;
    }
    ts = static_cast<TimeNs>(time_unix_nano);
    return true;
  }

  void add(std::string_view name, TimeNs ts, double v) { sink_.add(name, labels_, ts, v, unit_); }

  std::string_view suffixed(std::string_view suffix) {
    scratch_.assign(name_).append(suffix);
    return scratch_;
  }

  // A label value: a string attribute as is, others in text (kept for the request).
  std::string_view text_of(const otlp::AnyValue& v) {
    if (v.value_case() == otlp::AnyValue::kStringValue) return v.string_value();
    return keep(value_text(v));
  }
  std::string_view keep(std::string s) { return kept_.emplace_back(std::move(s)); }

  SampleSink& sink_;
  std::string_view name_, unit_;
  std::vector<Label> resource_, labels_;
  std::deque<std::string> kept_;
  std::string scratch_;
};

int grpc_code(unsigned http_status) {
  switch (http_status) {
    case 401: return kUnauthenticated;
    case 403: return kPermissionDenied;
    case 413:
    case 429: return kResourceExhausted;
    case 503: return kUnavailable;
    default: return http_status >= 500 ? kInternal : kInvalidArgument;
  }
}

std::string serialized(const pb::Message& m, bool json) {
  std::string out;
  if (json) (void)pb::util::MessageToJsonString(m, &out);
  else m.SerializeToString(&out);
  return out;
}

}  // namespace

Status parse_otlp(const http::Request& req, std::string_view body, SampleSink& sink) {
  if (body.size() > INT_MAX) return Status::data("OTLP: body too large");
  pb::ArenaOptions options;
  options.start_block_size = 64 * 1024;
  options.max_block_size = 1 << 20;
  pb::Arena arena(options);
  auto* request = pb::Arena::CreateMessage<otlp::ExportMetricsServiceRequest>(&arena);
  if (is_json(req)) {
    pb::util::JsonParseOptions json;
    json.ignore_unknown_fields = true;
    if (auto s = pb::util::JsonStringToMessage(pb::StringPiece(body.data(), body.size()), request, json); !s.ok())
      return Status::data("OTLP JSON: not an ExportMetricsServiceRequest: " + std::string(s.message()));
  } else if (!request->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Status::data("OTLP protobuf: not an ExportMetricsServiceRequest (truncated or corrupt)");
  }
  Reader reader(sink);
  for (const auto& rm : request->resource_metrics()) reader.resource(rm);
  return Status::ok();
}

http::Response answer_otlp(const http::Request& req, const Outcome& o) {
  bool json = is_json(req);
  std::string_view type = json ? "application/json" : "application/x-protobuf";
  if (o.error.empty()) {
    otlp::ExportMetricsServiceResponse res;
    if (o.rejected > 0) {
      res.mutable_partial_success()->set_rejected_data_points(static_cast<std::int64_t>(o.rejected));
      res.mutable_partial_success()->set_error_message(o.detail);
    }
    return protocol_response(req, 200, type, serialized(res, json), 0);
  }
  google::rpc::Status status;
  status.set_code(grpc_code(o.status));
  status.set_message(std::string(o.error) + ": " + o.detail);
  return protocol_response(req, o.status, type, serialized(status, json), o.retry_after);
}

}  // namespace ep::ingest
