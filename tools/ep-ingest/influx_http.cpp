// Influx line protocol over HTTP: POST /api/v2/write (InfluxDB 2) and POST /write
// (InfluxDB 1.x), answered as InfluxDB answers (docs/protocols.md, "Influx line protocol").
#include <boost/beast/http/field.hpp>

#include "ep/json.h"
#include "ep/url.h"
#include "receivers.h"
#include "text_formats.h"

namespace ep::ingest {

namespace {

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

Status parse_influx(const http::Request& req, std::string_view body, SampleSink& sink, bool v1) {
  auto q = parse_query(sv(req.target()));
  if (!q) return q.status().with_context("query");
  TimeUnit unit = 1;
  if (auto it = q->find("precision"); it != q->end()) {
    unit = parse_epoch_unit(it->second, v1).value_or(0);
    if (unit == 0)
      return Status::data("precision=" + it->second + ": not one of " + (v1 ? "n, u, ms, s, m, h" : "ns, us, ms, s"));
  }
  parse_influx_body(body, unit, sink);
  return Status::ok();
}

// InfluxDB's error codes for our statuses.
std::string_view influx_code(unsigned status) {
  switch (status) {
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 413: return "request too large";
    case 415: return "unsupported media type";
    case 429: return "too many requests";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal error" : "invalid";
  }
}

}  // namespace

Status parse_influx_v2(const http::Request& req, std::string_view body, SampleSink& sink) {
  return parse_influx(req, body, sink, false);
}

Status parse_influx_v1(const http::Request& req, std::string_view body, SampleSink& sink) {
  return parse_influx(req, body, sink, true);
}

std::string_view influx_query_key(const http::Request& req, std::string& scratch) {
  auto q = parse_query(sv(req.target()));
  if (!q) return {};
  auto it = q->find("p");
  if (it == q->end()) return {};
  scratch = it->second;
  return scratch;
}

http::Response influx_answer(const http::Request& req, const Outcome& o) {
  if (o.error.empty() && o.rejected == 0) {
    http::Response res{boost::beast::http::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    res.set(boost::beast::http::field::server, "ep-ingest");
    return res;
  }
  unsigned status = o.error.empty() ? 400 : o.status;
  std::string message = o.error.empty() ? "partial write: " + std::to_string(o.accepted) +
                                               " points stored; " + o.detail
                                        : o.detail;
  JsonWriter w;
  w.start_object();
  w.kv("code", influx_code(status));
  w.kv("message", message);
  w.end_object();
  http::Response res = http::json_response(req, status, std::string(w.view()));
  if (o.retry_after > 0) res.set(boost::beast::http::field::retry_after, std::to_string(o.retry_after));
  return res;
}

}  // namespace ep::ingest
