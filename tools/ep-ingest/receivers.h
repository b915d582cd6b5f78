#pragma once
// The wire formats of other agents that ep-ingest accepts besides its own payload: each a
// path, a parser into a SampleSink and the answer its clients expect. HttpIngest::receive
// does the rest the same way for all of them (auth, decoding, quota, idempotency, the
// durable archive write): docs/ep-ingest.md, "Protocols".
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ep/http_server.h"
#include "ep/status.h"
#include "samples.h"

namespace ep::ingest {

// How a request ended, for the protocol to answer in its own way.
struct Outcome {
  unsigned status = 0;     // HTTP status
  std::string_view error;  // our error name ("unauthorized", "invalid_payload", …); "" on success
  std::string detail;      // what was wrong, or the summary of rejected samples
  size_t accepted = 0, rejected = 0;
  std::int64_t retry_after = 0;  // seconds, for 429 and 503
  std::string_view batch_id;     // the first batch record's id on success
};

struct Receiver {
  std::string_view path;    // e.g. "/api/v1/write"
  std::string_view source;  // the batch records' "source"
  // Reads a decoded body into the sink. An error Status (Code::kData) means the body as a
  // whole is unreadable; problems with single samples go to sink.reject().
  Status (*parse)(const http::Request& req, std::string_view body, SampleSink& sink);
  // The protocol's answer; null = EdgePulse's JSON answer (json_answer).
  http::Response (*answer)(const http::Request& req, const Outcome& o);
  // The Content-Types it reads, comma-separated ("application/x-protobuf,application/json");
  // empty: any. Another one (or none) is a 415 before the body is decoded.
  std::string_view media_types = {};
  // The key when the request carries none in its headers (InfluxDB 1.x: ?u=…&p=KEY);
  // null = headers only. scratch may hold the returned bytes.
  std::string_view (*query_key)(const http::Request& req, std::string& scratch) = nullptr;
};

// Whether content_type's media type (parameters aside, any case) is one of media_types
// (as in Receiver::media_types; empty: any).
bool media_type_accepted(std::string_view content_type, std::string_view media_types);

// The receivers ep-ingest serves.
std::span<const Receiver> receivers();
const Receiver* find_receiver(std::string_view path);

// EdgePulse's JSON answer: {"status":"accepted","batch_id":…,"points":N,"rejected":M,
// "errors":[…]} on success, {"error":…,"detail":…} otherwise (with Retry-After).
http::Response json_answer(const http::Request& req, const Outcome& o);

// A protocol's own answer: status, Content-Type (none when empty) and body, Retry-After
// when retry_after > 0, keep-alive as the request asked.
http::Response protocol_response(const http::Request& req, unsigned status, std::string_view content_type,
                                 std::string body, std::int64_t retry_after);

// The collectd write_http JSON format.
Status parse_collectd(const http::Request& req, std::string_view body, SampleSink& sink);

// Influx line protocol: /api/v2/write (precision ns|us|ms|s) and /write (n|u|ms|s|m|h, the
// key also as ?p=); 204 on success, {"code":…,"message":…} otherwise (influx_http.cpp).
Status parse_influx_v2(const http::Request& req, std::string_view body, SampleSink& sink);
Status parse_influx_v1(const http::Request& req, std::string_view body, SampleSink& sink);
http::Response influx_answer(const http::Request& req, const Outcome& o);
std::string_view influx_query_key(const http::Request& req, std::string& scratch);

}  // namespace ep::ingest
