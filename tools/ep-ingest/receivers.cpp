#include "receivers.h"

#include <boost/beast/http/field.hpp>

#include "ep/json.h"

namespace ep::ingest {

namespace {

const Receiver kReceivers[] = {
    {"/collectd", "collectd", parse_collectd, nullptr},
};

}  // namespace

std::span<const Receiver> receivers() { return kReceivers; }

const Receiver* find_receiver(std::string_view path) {
  for (const auto& r : kReceivers)
    if (r.path == path) return &r;
  return nullptr;
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
