#pragma once
// Prometheus remote write 1.0 at POST /api/v1/write (docs/protocols.md): a
// snappy-compressed protobuf WriteRequest (HttpIngest::receive undoes the snappy).
#include <string_view>

#include "receivers.h"

namespace ep::ingest {

inline constexpr std::string_view kRemoteWriteMediaTypes = "application/x-protobuf";

// Each sample of each series becomes one SampleSink::add with __name__ as the name and the
// other labels as labels. Staleness markers are skipped (not samples); native histograms
// are rejected with a reason; exemplars and metadata are ignored.
Status parse_remote_write(const http::Request& req, std::string_view body, SampleSink& sink);

// The remote-write answer: 204 when every sample was stored; 400 (the sender drops the
// request, does not retry) for an unreadable body and when samples were rejected (the
// others are stored); 401/403/413/415 as is; 429 and 503 with Retry-After (the sender
// retries). Bodies are text/plain.
http::Response answer_remote_write(const http::Request& req, const Outcome& o);

}  // namespace ep::ingest
