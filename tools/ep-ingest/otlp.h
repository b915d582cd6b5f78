#pragma once
// OTLP/HTTP metrics at POST /v1/metrics (docs/protocols.md): an
// ExportMetricsServiceRequest as binary protobuf (application/x-protobuf) or as OTLP JSON
// (application/json).
#include <string_view>

#include "receivers.h"

namespace ep::ingest {

inline constexpr std::string_view kOtlpMediaTypes = "application/x-protobuf,application/json";

// Gauge and Sum points become one sample each; Histogram and ExponentialHistogram points
// name_count and name_sum; Summary points name_count, name_sum and name{quantile="q"}.
// Labels: the resource's attributes, then the point's (a point attribute wins on a
// clash). The scope is not a label.
Status parse_otlp(const http::Request& req, std::string_view body, SampleSink& sink);

// 200 with an ExportMetricsServiceResponse (partial_success naming the rejected points)
// on success; a google.rpc.Status otherwise (400, 401, 403, 413, 415; 429 and 503 with
// Retry-After). Both in the request's encoding (JSON for a JSON request, else protobuf).
http::Response answer_otlp(const http::Request& req, const Outcome& o);

}  // namespace ep::ingest
