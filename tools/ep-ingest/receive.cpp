// HttpIngest::receive: the path every protocol receiver shares (receivers.h).
#include <boost/beast/http/field.hpp>

#include <atomic>
#include <memory>
#include <mutex>

#include "batch.h"
#include "decode.h"
#include "ep/crypto.h"
#include "ep/url.h"
#include "http_ingest.h"

namespace ep::ingest {

namespace bhttp = boost::beast::http;

namespace {

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

// Text bodies are archived as they came; compressed or binary ones (protobuf) as base64.
bool archive_as_text(const http::Request& req) {
  if (!req[bhttp::field::content_encoding].empty()) return false;
  std::string_view ct = sv(req[bhttp::field::content_type]);
  return ct.find("json") != std::string_view::npos || ct.starts_with("text/");
}

// What the N committer items of one request share: the answer is sent once all are done.
Outcome failure(unsigned status, std::string_view error, std::string detail, std::int64_t retry_after = 0) {
  Outcome o;
  o.status = status;
  o.error = error;
  o.detail = std::move(detail);
  o.retry_after = retry_after;
  return o;
}

Outcome success(std::string_view batch_id, size_t accepted, size_t rejected, std::string summary) {
  Outcome o;
  o.status = 202;
  o.batch_id = batch_id;
  o.accepted = accepted;
  o.rejected = rejected;
  o.detail = std::move(summary);
  return o;
}

struct Pending {
  std::atomic<size_t> left;
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex mu;
};

}  // namespace

Status limits_of(std::string_view target, const Limits& base, Limits& buf, const Limits*& out) {
  out = &base;
  if (target.find('?') == std::string_view::npos) return Status::ok();
  auto params = parse_query(target);
  if (!params) return params.status();
  auto it = params->find("precision");
  if (it == params->end()) return Status::ok();
  auto unit = parse_epoch_unit(it->second);
  if (!unit) return Status::data("precision: '" + it->second + "' is not one of s, ms, us, ns");
  buf = base;
  buf.epoch_unit = *unit;
  out = &buf;
  return Status::ok();
}

// The points of each valid payload go to the sink; a bad payload is rejected by index.
void HttpIngest::ingest_many(http::Request&& req, http::Respond respond, const AuthResult& auth,
                             const Limits& limits, TimeNs now) {
  static const Receiver kOwn{"/v1/ingest", "http", nullptr, nullptr};
  if (!req["Idempotency-Key"].empty()) {
    metrics_.reject(Reason::kInvalidPayload);
    return respond(http::json_error(req, 400, "invalid_request",
                                    "Idempotency-Key: not supported for a body of several payloads (send one "
                                    "payload per request to use it)"));
  }
  thread_local std::unique_ptr<SampleSink> sink_owner;
  if (!sink_owner) sink_owner = std::make_unique<SampleSink>(opts_.mapping, limits);
  SampleSink& sink = *sink_owner;
  sink.reset(now);
  thread_local Payload payload;
  Status shape = split_payloads(req.body(), [&](size_t i, std::string_view text) {
    if (Status s = parse_payload(text, limits, now, payload); !s)
      return sink.reject("payloads[" + std::to_string(i) + "]: " + s.message(), 1);
    for (const auto& p : payload.points) sink.add_point(payload.device, p.metric, p.ts, p.value, p.unit);
  });
  if (!shape) {
    metrics_.reject(Reason::kInvalidJson);
    return respond(http::json_error(req, 400, "invalid_json", shape.message()));
  }
  admit(std::move(req), std::move(respond), kOwn, auth, sink, now);
}

void HttpIngest::reply(const http::Request& req, const http::Respond& respond, const Receiver& r, const Outcome& o,
                       Reason reason) {
  if (!o.error.empty()) metrics_.reject(reason);
  http::Response res = r.answer ? r.answer(req, o) : json_answer(req, o);
  // A 401 names the schemes (RFC 9110); clients that offer credentials only when asked
  // (curl with CURLAUTH_ANY, as collectd's write_http) need it to send Basic.
  if (o.status == 401) res.set(bhttp::field::www_authenticate, "Basic realm=\"ep-ingest\", Bearer");
  respond(std::move(res));
}

void HttpIngest::receive(http::Request&& req, http::Respond respond, const Receiver& r) {
  TimeNs now = clock_.now();
  auto answer = [&](const Outcome& o, Reason reason) { reply(req, respond, r, o, reason); };
  thread_local std::string basic;
  std::string_view presented = presented_key(sv(req["X-API-Key"]), sv(req[bhttp::field::authorization]), basic);
  if (presented.empty() && r.query_key) presented = r.query_key(req, basic);
  AuthResult auth = keys_.authenticate(presented);
  if (auth.http_status != 0) {
    bool unauth = auth.http_status == 401;
    return answer(failure(auth.http_status, unauth ? "unauthorized" : "forbidden", auth.detail),
                  unauth ? Reason::kUnauthorized : Reason::kForbidden);
  }
  if (std::string_view ct = sv(req[bhttp::field::content_type]); !media_type_accepted(ct, r.media_types))
    return answer(failure(415, "unsupported_media_type",
                          "Content-Type: '" + std::string(ct) + "' is not read at " + std::string(r.path) +
                              " (" + std::string(r.media_types) + ")"),
                  Reason::kUnsupportedMediaType);
  thread_local std::string decoded;
  std::string_view body;
  Decoded d = decode_body(sv(req[bhttp::field::content_encoding]), req.body(), opts_.limits.max_decoded_bytes,
                          decoded, &body);
  if (d.error == DecodeError::kUnsupported)
    return answer(failure(415, "unsupported_encoding", d.message), Reason::kUnsupportedEncoding);
  if (d.error == DecodeError::kTooLarge) return answer(failure(413, "payload_too_large", d.message), Reason::kTooLarge);
  if (d.error != DecodeError::kNone) return answer(failure(400, "invalid_payload", d.message), Reason::kInvalidPayload);

  thread_local std::unique_ptr<SampleSink> sink_owner;
  if (!sink_owner) sink_owner = std::make_unique<SampleSink>(opts_.mapping, opts_.limits);
  SampleSink& sink = *sink_owner;
  sink.reset(now);
  if (Status s = r.parse(req, body, sink); !s)
    return answer(failure(400, "invalid_payload", s.message()), Reason::kInvalidPayload);
  admit(std::move(req), std::move(respond), r, auth, sink, now);
}

// The request's samples are read: within the limits and the quota, they are committed.
void HttpIngest::admit(http::Request&& req, http::Respond respond, const Receiver& r, const AuthResult& auth,
                       SampleSink& sink, TimeNs now) {
  auto answer = [&](const Outcome& o, Reason reason) { reply(req, respond, r, o, reason); };
  if (sink.accepted() + sink.rejected() > opts_.limits.max_samples)
    return answer(failure(413, "payload_too_large",
                          std::to_string(sink.accepted() + sink.rejected()) + " samples: more than " +
                              std::to_string(opts_.limits.max_samples) + " in one request (--max-samples)"),
                  Reason::kTooLarge);
  if (auth.max_series > 0) {
    auto check = series_limit_.check(auth.tenant, auth.max_series);
    sink.drop_points([&](std::string_view device, const PayloadPoint& p) {
      return check.admit(device, p.metric) ? std::string()
                                           : SeriesLimit::problem(device, p.metric, auth.tenant, auth.max_series);
    });
  }
  if (sink.accepted() == 0 && sink.rejected() > 0) {
    Outcome o = failure(400, "invalid_payload", sink.summary());
    o.rejected = sink.rejected();
    return answer(std::move(o), Reason::kInvalidPayload);
  }
  auto points = static_cast<std::int64_t>(sink.accepted());
  std::int64_t ppm = auth.points_per_minute > 0 ? auth.points_per_minute : opts_.default_points_per_minute;
  if (std::int64_t wait = quota_.take(auth.tenant, points, ppm, now); wait > 0) {
    return answer(failure(429, "quota_exceeded", "quota of " + std::to_string(ppm) + " points/minute exceeded", wait),
                  Reason::kQuota);
  }
  if (sink.groups().empty()) return answer(success("", 0, 0, {}), Reason::kCount);
  commit_groups(std::move(req), std::move(respond), r, auth.tenant, sink, now);
}

// One batch record per device; the first carries the raw body, the others point to it
// with "request_id" (docs/architecture.md §3).
void HttpIngest::commit_groups(http::Request&& req, http::Respond respond, const Receiver& r,
                               const std::string& tenant, const SampleSink& sink, TimeNs now) {
  auto groups = sink.groups();
  auto shared_req = std::make_shared<http::Request>(std::move(req));
  const std::string& body = shared_req->body();
  bool text = archive_as_text(*shared_req);
  std::string raw = text ? std::string() : crypto::base64(body);
  std::string_view first_raw = text ? std::string_view(body) : std::string_view(raw);
  std::string sha = crypto::sha256_hex(body);
  auto pending = std::make_shared<Pending>();
  pending->left = groups.size();
  auto shared_respond = std::make_shared<http::Respond>(std::move(respond));
  std::string first_id;
  auto points = static_cast<std::int64_t>(sink.accepted());
  auto rejected = sink.rejected();
  auto summary = std::make_shared<std::string>(sink.summary());
  std::vector<Committer::Item> items(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    std::string id = crypto::uuid_v7();
    if (i == 0) first_id = id;
    BatchMeta meta;
    meta.batch_id = id;
    meta.tenant = tenant;
    meta.device = groups[i].device;
    meta.source = r.source;
    meta.received_at = now;
    if (groups.size() > 1) meta.request_id = first_id;
    meta.raw_base64 = !text && i == 0;
    Committer::Item& item = items[i];
    // The others' raw and sha256 are empty but not null (write_batch may memcpy them).
    write_batch(item.line, meta, groups[i].points, i == 0 ? first_raw : std::string_view(""),
                i == 0 ? std::string_view(sha) : std::string_view(""));
    item.tenant = tenant;
    item.batch_id = id;
    item.received_at = now;
    item.done = [this, pending, shared_req, shared_respond, &r, first_id, points, rejected, summary,
                 tenant](const Status& s) {
      if (!s.is_ok()) {
        std::lock_guard lock(pending->mu);
        if (!pending->failed.exchange(true)) pending->failure = s.message();
      }
      if (--pending->left != 0) return;
      Outcome o;
      if (pending->failed) {
        quota_.refund(tenant, points);
        o = failure(503, "unavailable", pending->failure, 1);
        metrics_.reject(Reason::kArchive);
      } else {
        metrics_.accepted(points);
        o = success(first_id, static_cast<size_t>(points), rejected, *summary);
      }
      (*shared_respond)(r.answer ? r.answer(*shared_req, o) : json_answer(*shared_req, o));
    };
  }
  for (auto& item : items) committer_.submit(std::move(item));
}

}  // namespace ep::ingest
