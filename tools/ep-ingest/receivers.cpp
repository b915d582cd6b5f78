#include "receivers.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

#include "ep/json.h"
#include "otlp.h"
#include "remote_write.h"

namespace ep::ingest {

namespace {

const Receiver kReceivers[] = {
    {"/collectd", "collectd", parse_collectd, nullptr},
    {"/api/v1/write", "prometheus", parse_remote_write, answer_remote_write, kRemoteWriteMediaTypes},
    {"/v1/metrics", "otlp", parse_otlp, answer_otlp, kOtlpMediaTypes},
    {"/api/v2/write", "influx", parse_influx_v2, influx_answer},
    {"/write", "influx", parse_influx_v1, influx_answer, {}, influx_query_key},
};

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::span<const Receiver> receivers() { return kReceivers; }

const Receiver* find_receiver(std::string_view path) {
  for (const auto& r : kReceivers)
    if (r.path == path) return &r;
  return nullptr;
}

bool media_type_accepted(std::string_view content_type, std::string_view media_types) {
  if (media_types.empty()) return true;
  std::string_view type = trimmed(content_type.substr(0, content_type.find(';')));
  for (std::string_view rest = media_types; !rest.empty();) {
    size_t comma = rest.find(',');
    std::string_view want = trimmed(rest.substr(0, comma));
    if (!type.empty() && boost::beast::iequals(boost::beast::string_view(type.data(), type.size()),
                                               boost::beast::string_view(want.data(), want.size())))
      return true;
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  return false;
}

http::Response protocol_response(const http::Request& req, unsigned status, std::string_view content_type,
                                 std::string body, std::int64_t retry_after) {
  http::Response res{static_cast<boost::beast::http::status>(status), req.version()};
  if (!content_type.empty())
    res.set(boost::beast::http::field::content_type,
            boost::beast::string_view(content_type.data(), content_type.size()));
  if (retry_after > 0) res.set(boost::beast::http::field::retry_after, std::to_string(retry_after));
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http::Response json_answer(const http::Request& req, const Outcome& o) {
  if (!o.error.empty()) {
    http::Response res = http::json_error(req, o.status, o.error, o.detail);
    if (o.retry_after > 0) res.set(boost::beast::http::field::retry_after, std::to_string(o.retry_after));
    return res;
  }
  JsonWriter w;
  w.start_object();
  w.kv("status", "accepted");
  w.kv("batch_id", o.batch_id);
  w.kv("points", static_cast<std::int64_t>(o.accepted));
  if (o.rejected) {
    w.kv("rejected", static_cast<std::int64_t>(o.rejected));
    w.kv("detail", o.detail);
  }
  w.end_object();
  return http::json_response(req, o.status, std::string(w.view()));
}

}  // namespace ep::ingest
