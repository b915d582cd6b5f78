#include "remote_write.h"

#include <bit>
#include <climits>
#include <cstdint>
#include <vector>

#include "prompb/remote.pb.h"

namespace ep::ingest {

namespace {

// Prometheus marks a series that went away with this NaN; it is not a sample.
constexpr std::uint64_t kStaleMarker = 0x7ff0000000000002ULL;
// Timestamps beyond ±9e12 ms (the year 2255) would overflow as nanoseconds.
constexpr std::int64_t kMaxMs = 9'000'000'000'000LL;
constexpr TimeNs kNsPerMs = 1'000'000;

bool is_stale_marker(double v) { return std::bit_cast<std::uint64_t>(v) == kStaleMarker; }

std::string series_of(std::string_view name, std::span<const Label> labels) {
  std::string s;
  append_series_metric(s, name, labels);
  return s;
}

// remote write 1.0 only: 2.0 senders name their message in the Content-Type.
Status check_proto_param(std::string_view content_type) {
  size_t at = content_type.find("proto=");
  if (at == std::string_view::npos) return Status::ok();
  std::string_view proto = content_type.substr(at + 6);
  proto = proto.substr(0, proto.find(';'));
  while (!proto.empty() && proto.back() == ' ') proto.remove_suffix(1);
  if (proto == "prometheus.WriteRequest") return Status::ok();
  return Status::data("Content-Type: proto=" + std::string(proto) +
                      ": only remote write 1.0 (prometheus.WriteRequest) is read here");
}

void read_series(const prometheus::TimeSeries& ts, std::vector<Label>& labels, SampleSink& sink) {
  std::string_view name;
  labels.clear();
  for (const auto& l : ts.labels()) {
    if (l.name() == "__name__") name = l.value();
    else labels.push_back({l.name(), l.value()});
  }
  if (name.empty()) {
    size_t n = 0;
    for (const auto& s : ts.samples()) n += !is_stale_marker(s.value());
    n += static_cast<size_t>(ts.histograms_size());
    if (n > 0) sink.reject(series_of(name, labels) + ": no __name__ label", n);
    return;
  }
  for (const auto& s : ts.samples()) {
    if (is_stale_marker(s.value())) continue;
    if (s.timestamp() > kMaxMs || s.timestamp() < -kMaxMs) {
      sink.reject(series_of(name, labels) + ": timestamp " + std::to_string(s.timestamp()) + " ms: out of range");
      continue;
    }
    sink.add(name, labels, s.timestamp() * kNsPerMs, s.value());
  }
  if (ts.histograms_size() > 0)
    sink.reject(series_of(name, labels) + ": native histograms are not stored (send_native_histograms: false)",
                static_cast<size_t>(ts.histograms_size()));
}

}  // namespace

Status parse_remote_write(const http::Request& req, std::string_view body, SampleSink& sink) {
  auto ct = req[boost::beast::http::field::content_type];
  EP_RETURN_IF_ERROR(check_proto_param(std::string_view(ct.data(), ct.size())));
  if (body.size() > INT_MAX) return Status::data("remote write: body too large");
  // Reused: parsing clears it but keeps its series, labels and strings for the next request.
  thread_local prometheus::WriteRequest request;
  prometheus::WriteRequest* wr = &request;
  if (!wr->ParseFromArray(body.data(), static_cast<int>(body.size())))
    return Status::data("remote write: not a protobuf WriteRequest (truncated or corrupt; the body must be "
                        "snappy-compressed with Content-Encoding: snappy)");
  thread_local std::vector<Label> labels;
  for (const auto& ts : wr->timeseries()) read_series(ts, labels, sink);
  return Status::ok();
}

http::Response answer_remote_write(const http::Request& req, const Outcome& o) {
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  if (o.error.empty() && o.rejected == 0) return protocol_response(req, 204, {}, {}, 0);
  if (o.error.empty()) return protocol_response(req, 400, kText, o.detail + " (the other samples were stored)\n", 0);
  return protocol_response(req, o.status, kText, std::string(o.error) + ": " + o.detail + "\n", o.retry_after);
}

}  // namespace ep::ingest
