#include "http_ingest.h"

#include <boost/asio/signal_set.hpp>
#include <boost/beast/http/field.hpp>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "batch.h"
#include "db_keys.h"
#include "decode.h"
#include "ep/crypto.h"
#include "ep/json.h"
#include "ep/http_cli.h"
#include "ep/log.h"

namespace ep::ingest {

namespace bhttp = boost::beast::http;

namespace {

constexpr size_t kMaxIdempotencyKey = 255;

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

bool is_json_media_type(std::string_view ct) { return media_type_accepted(ct, "application/json"); }

// Printable ASCII only: the key is stored in the batch record (a JSON string) and logs.
bool valid_idempotency_key(std::string_view k) {
  return std::all_of(k.begin(), k.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string accepted_body(std::string_view batch_id, std::int64_t points, const SeriesRefusal& refused = {}) {
  JsonWriter w;
  w.start_object();
  w.kv("status", "accepted");
  w.kv("batch_id", batch_id);
  w.kv("points", points);
  if (refused.count) {
    w.kv("rejected", static_cast<std::int64_t>(refused.count));
    w.kv("detail", refused.first);
  }
  w.end_object();
  return std::string(w.view());
}

}  // namespace

HttpIngest::HttpIngest(const Options& opts, KeyStore& keys, Committer& committer, Metrics& metrics,
                       const Clock& clock)
    : opts_(opts), keys_(keys), committer_(committer), metrics_(metrics), clock_(clock),
      idempotency_(opts.idempotency_window, opts.idempotency_max_keys) {}

http::Response HttpIngest::reject(const http::Request& req, Reason reason, unsigned status,
                                  std::string_view error, std::string_view detail) {
  metrics_.reject(reason);
  return http::json_error(req, status, error, detail);
}

void HttpIngest::handle(http::Request&& req, http::Respond respond) {
  std::string_view target = sv(req.target());
  target = target.substr(0, target.find('?'));
  bool get = req.method() == bhttp::verb::get;
  auto not_allowed = [&](const char* allow) {
    auto res = http::json_error(req, 405, "method_not_allowed",
                                std::string("allowed: ") + allow);
    res.set(bhttp::field::allow, allow);
    respond(std::move(res));
  };
  if (target == "/v1/ingest") {
    if (req.method() != bhttp::verb::post) return not_allowed("POST");
    return ingest(std::move(req), std::move(respond));
  }
  if (const Receiver* r = find_receiver(target)) {
    if (req.method() != bhttp::verb::post) return not_allowed("POST");
    return receive(std::move(req), std::move(respond), *r);
  }
  if (target == "/v1/health") {
    if (!get) return not_allowed("GET");
    bool drain = draining && draining();
    respond(http::json_response(req, drain ? 503 : 200,
                                drain ? R"({"status":"draining"})" : R"({"status":"ok"})"));
    return;
  }
  if (target == "/metrics") {
    if (!get) return not_allowed("GET");
    http::Response res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.keep_alive(req.keep_alive());
    ArchiveStats archive = archive_stats ? archive_stats() : ArchiveStats{};
    res.body() = metrics_.render(server_stats ? server_stats() : http::ServerStats{},
                                 opts_.archive_uri.empty() ? nullptr : &archive, clock_.now());
    res.prepare_payload();
    respond(std::move(res));
    return;
  }
  respond(http::json_error(req, 404, "not_found", "no such endpoint: " + std::string(target)));
}

SeriesRefusal HttpIngest::limit_series(const AuthResult& auth, Payload& payload) {
  SeriesRefusal refused;
  if (auth.max_series <= 0) return refused;
  auto check = series_limit_.check(auth.tenant, auth.max_series);
  std::erase_if(payload.points, [&](const PayloadPoint& p) {
    if (check.admit(payload.device, p.metric)) return false;
    if (refused.count++ == 0) refused.first = SeriesLimit::problem(payload.device, p.metric, auth.tenant, auth.max_series);
    return true;
  });
  return refused;
}

// Undoes the request's Content-Encoding in place; the refusal to send if it cannot.
std::optional<http::Response> HttpIngest::decode_in_place(http::Request& req) {
  thread_local std::string decoded;
  std::string_view view;
  Decoded d = decode_body(sv(req[bhttp::field::content_encoding]), req.body(), opts_.limits.max_decoded_bytes,
                          decoded, &view);
  switch (d.error) {
    case DecodeError::kNone: break;
    case DecodeError::kUnsupported:
      return reject(req, Reason::kUnsupportedEncoding, 415, "unsupported_encoding", d.message);
    case DecodeError::kTooLarge: return reject(req, Reason::kTooLarge, 413, "payload_too_large", d.message);
    case DecodeError::kCorrupt: return reject(req, Reason::kInvalidPayload, 400, "invalid_payload", d.message);
  }
  if (view.data() != req.body().data()) req.body().assign(view);
  req.erase(bhttp::field::content_encoding);
  return std::nullopt;
}

void HttpIngest::ingest(http::Request&& req, http::Respond respond) {
  TimeNs now = clock_.now();
  // 1. Who is it (401/403)?
  thread_local std::string basic;
  AuthResult auth = keys_.authenticate(
      presented_key(sv(req["X-API-Key"]), sv(req[bhttp::field::authorization]), basic));
  if (auth.http_status != 0) {
    return respond(reject(req, auth.http_status == 401 ? Reason::kUnauthorized : Reason::kForbidden,
                          auth.http_status, auth.http_status == 401 ? "unauthorized" : "forbidden",
                          auth.detail));
  }
  // 2. Is it JSON (415)?
  std::string_view ct = sv(req[bhttp::field::content_type]);
  if (!is_json_media_type(ct)) {
    return respond(reject(req, Reason::kUnsupportedMediaType, 415, "unsupported_media_type",
                          ct.empty() ? std::string("Content-Type: required (application/json)")
                                     : "Content-Type: expected application/json, got " +
                                           std::string(ct)));
  }
  // 3. Compressed (415/413/400)? The decoded JSON is the payload from here on: it is what
  // the archive keeps as raw and what sha256 covers.
  if (!req[bhttp::field::content_encoding].empty()) {
    if (auto refused = decode_in_place(req)) return respond(std::move(*refused));
  }
  // 4. Is it a valid payload (400/413)? A ts given as a number needs ?precision=.
  thread_local Limits with_unit;
  const Limits* limits = &opts_.limits;
  if (Status s = limits_of(sv(req.target()), opts_.limits, with_unit, limits); !s)
    return respond(reject(req, Reason::kInvalidPayload, 400, "invalid_request", s.message()));
  if (is_payload_array(req.body())) return ingest_many(std::move(req), std::move(respond), auth, *limits, now);
  thread_local Payload payload;
  if (Status s = parse_payload(req.body(), *limits, now, payload); !s) {
    if (payload.more_follows) return ingest_many(std::move(req), std::move(respond), auth, *limits, now);
    Reason reason = payload.reject == RejectKind::kTooLarge     ? Reason::kTooLarge
                    : payload.reject == RejectKind::kInvalidJson ? Reason::kInvalidJson
                                                                 : Reason::kInvalidPayload;
    unsigned status = payload.reject == RejectKind::kTooLarge ? 413 : 400;
    return respond(reject(req, reason, status, reject_name(payload.reject), s.message()));
  }
  // 5. New series within the plan's max_series (the others are dropped and named; 400 if none is left)?
  SeriesRefusal refused = limit_series(auth, payload);
  if (payload.points.empty())
    return respond(reject(req, Reason::kInvalidPayload, 400, "invalid_payload", refused.first));
  auto points = static_cast<std::int64_t>(payload.points.size());
  std::string sha = crypto::sha256_hex(req.body());
  // 6. Seen this Idempotency-Key before (replay / 409 / 422)?
  std::string idem_key(sv(req["Idempotency-Key"]));
  if (idem_key.size() > kMaxIdempotencyKey) {
    return respond(reject(req, Reason::kInvalidPayload, 400, "invalid_request",
                          "Idempotency-Key: longer than 255 characters"));
  }
  if (!valid_idempotency_key(idem_key)) {
    return respond(reject(req, Reason::kInvalidPayload, 400, "invalid_request",
                          "Idempotency-Key: only printable ASCII characters are allowed"));
  }
  if (!idem_key.empty()) {
    auto seen = idempotency_.begin(auth.tenant, idem_key, sha, now);
    switch (seen.outcome) {
      case IdempotencyCache::Outcome::kNew: break;
      case IdempotencyCache::Outcome::kReplay: {
        metrics_.replayed();
        auto res = http::json_response(req, 202, accepted_body(seen.batch_id, seen.points));
        res.set("Idempotent-Replayed", "true");
        return respond(std::move(res));
      }
      case IdempotencyCache::Outcome::kInFlight:
        return respond(reject(req, Reason::kIdempotencyConflict, 409, "conflict",
                              "Idempotency-Key: a request with this key is in progress"));
      case IdempotencyCache::Outcome::kMismatch:
        return respond(reject(req, Reason::kIdempotencyConflict, 422, "idempotency_key_reused",
                              "Idempotency-Key: already used with a different body"));
    }
  }
  // 7. Within the tenant's quota (429)?
  std::int64_t ppm = auth.points_per_minute > 0 ? auth.points_per_minute : opts_.default_points_per_minute;
  if (std::int64_t wait = quota_.take(auth.tenant, points, ppm, now); wait > 0) {
    if (!idem_key.empty()) idempotency_.abandon(auth.tenant, idem_key);
    std::string detail = points > ppm
                             ? "metrics: " + std::to_string(points) + " points exceed the quota of " +
                                   std::to_string(ppm) + " points/minute; split the payload"
                             : "quota of " + std::to_string(ppm) + " points/minute exceeded";
    auto res = reject(req, Reason::kQuota, 429, "quota_exceeded", detail);
    res.set(bhttp::field::retry_after, std::to_string(wait));
    return respond(std::move(res));
  }
  // 8. Stamp, serialise, and hand to the group committer; answer when durable.
  std::string batch_id = crypto::uuid_v7();
  Committer::Item item;
  write_batch(item.line, BatchMeta{batch_id, auth.tenant, payload.device, "http", now, idem_key, {}, false}, payload.points,
              req.body(), sha);
  item.tenant = auth.tenant;
  item.batch_id = batch_id;
  item.received_at = now;
  unsigned version = req.version();
  bool keep_alive = req.keep_alive();
  item.done = [this, respond = std::move(respond), version, keep_alive, batch_id, points,
               tenant = auth.tenant, idem_key, refused = std::move(refused)](const Status& s) {
    http::Response res;
    if (s.is_ok()) {
      metrics_.accepted(points);
      if (!idem_key.empty()) idempotency_.complete(tenant, idem_key, batch_id, points, clock_.now());
      res = http::Response{bhttp::status::accepted, version};
      res.set(bhttp::field::content_type, "application/json");
      res.body() = accepted_body(batch_id, points, refused);
    } else {
      metrics_.reject(Reason::kArchive);
      quota_.refund(tenant, points);
      if (!idem_key.empty()) idempotency_.abandon(tenant, idem_key);
      JsonWriter e;
      e.start_object();
      e.kv("error", "unavailable");
      e.kv("detail", s.message());
      e.end_object();
      res = http::Response{bhttp::status::service_unavailable, version};
      res.set(bhttp::field::content_type, "application/json");
      res.set(bhttp::field::retry_after, "1");
      res.body() = std::string(e.view());
    }
    res.keep_alive(keep_alive);
    res.prepare_payload();
    respond(std::move(res));
  };
  committer_.submit(std::move(item));
}

namespace {

// --db: reloads keys from Postgres every --key-refresh or when poked (SIGHUP), and
// writes last_used_at for the keys used since the last round.
class DbRefresher {
 public:
  DbRefresher(DbKeys& db, KeyStore& keys, TimeNs interval, std::function<void()> on_hup)
      : db_(db), keys_(keys), interval_(interval), on_hup_(std::move(on_hup)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~DbRefresher() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void poke() {
    {
      std::lock_guard lock(mu_);
      poked_ = true;
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::nanoseconds(interval_), [&] { return stop_ || poked_; });
      if (stop_) break;
      bool hup = poked_;
      poked_ = false;
      lock.unlock();
      round(hup);
      lock.lock();
    }
    lock.unlock();
    flush_usage();
  }
  void round(bool hup) {
    auto entries = db_.load();
    if (!entries) {
      log::emit(log::Level::kWarn, hup ? "SIGHUP" : "key refresh",
                "keeping the cached keys: " + entries.status().message());
    } else {
      keys_.set(*entries);
      if (hup) log::info("SIGHUP: reloaded " + std::to_string(entries->size()) + " keys from Postgres");
    }
    if (hup) on_hup_();
    flush_usage();
  }
  void flush_usage() {
    auto used = keys_.take_used();
    if (Status s = db_.record_usage(used, now_ns()); !s) log::emit(log::Level::kWarn, {}, s.message());
  }

  DbKeys& db_;
  KeyStore& keys_;
  TimeNs interval_;
  std::function<void()> on_hup_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, poked_ = false;
  std::thread thread_;
};

// The series of the tenants whose plan limits them, for max_series.
void seed_series(DbKeys& db, HttpIngest& service) {
  auto known = db.load_series();
  if (!known) return log::emit(log::Level::kWarn, "max_series", "keeping the series known: " + known.status().message());
  service.seed_series(*known);
  log::info("max_series: " + std::to_string(known->size()) + " series of limited tenants loaded from Postgres");
}

}  // namespace

Status run_http(const Options& opts, int out_fd) {
  KeyStore keys(opts.pepper);
  std::unique_ptr<DbKeys> db;
  if (opts.use_db) {
    auto d = DbKeys::open(opts.db_url);
    if (!d) return d.status();
    db = std::move(d).value();
    auto entries = db->load();
    if (!entries) return entries.status();
    keys.set(*entries);
    keys.track_usage(true);
  } else {
    if (opts.keys_path.empty()) return Status::usage("--keys FILE or --db [URL] is required (or --stdin)");
    if (Status s = keys.load(opts.keys_path); !s) return s;
  }
  std::unique_ptr<Archive> archive;
  if (!opts.archive_uri.empty()) {
    auto a = Archive::open(opts.archive_uri, opts.archive_options);
    if (!a) return a.status().with_context("--archive " + opts.archive_uri);
    archive = std::move(a).value();
  }
  RecordWriter out(out_fd);
  Metrics metrics;
  http::Server* server_ptr = nullptr;
  Committer committer(archive.get(), out, metrics, [&](const Status& s) {
    log::error(s);
    if (server_ptr) server_ptr->stop();
  }, archive ? opts.archive_writers : 1);
  HttpIngest service(opts, keys, committer, metrics, SystemClock::instance());
  std::unique_ptr<DbRefresher> refresher;
  if (db) {
    seed_series(*db, service);
    refresher = std::make_unique<DbRefresher>(*db, keys, opts.key_refresh, [&] { seed_series(*db, service); });
  }
  if (archive) {
    auto rec = service.recover_keys(*archive);
    if (!rec) return rec.status();
    log::info("idempotency: " + std::to_string(rec->keyed) + " keyed batches of the last " +
              format_duration(opts.idempotency_window) + " restored from the archive (" +
              std::to_string(rec->restored) + " keys cached, " + std::to_string(rec->batches) +
              " batches read, " + std::to_string(rec->problems) + " damaged or torn records skipped) in " +
              std::to_string(rec->elapsed / 1000000) + " ms");
  }
  auto server = http::Server::listen(
      opts.server,
      [&service](http::Request&& req, http::Respond respond) {
        service.handle(std::move(req), std::move(respond));
      },
      [&metrics](const http::Completed& c) { metrics.request(c.status, c.duration_ns); });
  if (!server) return server.status();
  http::Server& srv = **server;
  server_ptr = &srv;
  service.server_stats = [&srv] { return srv.stats(); };
  service.draining = [&srv] { return srv.stopping(); };
  if (archive) service.archive_stats = [&archive] { return archive->stats(); };

  boost::asio::signal_set stop_signals(srv.context(), SIGTERM, SIGINT);
  stop_signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info(std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") +
              ": draining in-flight requests");
    srv.stop();
  });
  boost::asio::signal_set hup(srv.context(), SIGHUP);
  std::function<void()> arm_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      http::reload_tls_on_hangup(srv);
      if (refresher) {
        refresher->poke();
      } else if (Status s = keys.load(opts.keys_path); !s) {
        log::emit(log::Level::kError, "SIGHUP", "keeping the previous keys: " + s.message());
      } else {
        log::info("SIGHUP: reloaded " + std::to_string(keys.size()) + " keys from " + opts.keys_path);
      }
      arm_hup();
    });
  };
  arm_hup();

  log::info("listening on " + srv.url() + (archive ? " (archive " + archive->uri() + ")" : "") +
            (db ? " (keys from Postgres, " + std::to_string(keys.size()) + " keys)" : ""));
  bool clean = srv.run();
  committer.stop();
  refresher.reset();  // a last last_used_at flush
  Status out_status = committer.output_status();
  Status closed = out.close();
  if (!clean) log::warn("drain timeout passed; some connections were cut");
  if (!out_status.is_ok()) return out_status;
  if (!closed.is_ok()) return closed;
  log::info("stopped");
  return Status::ok();
}

}  // namespace ep::ingest
