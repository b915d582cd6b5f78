#pragma once
// The HTTP side of ep-ingest: routes, auth, validation, quota, idempotency, and the
// hand-off to the group committer. HttpIngest is the request handler; run_http wires it
// to a real server, the archive, stdout and signals.
#include <functional>
#include <optional>

#include "auth.h"
#include "committer.h"
#include "ep/http_server.h"
#include "idempotency.h"
#include "idempotency_log.h"
#include "metrics.h"
#include "options.h"
#include "receivers.h"
#include "series_limit.h"

namespace ep::ingest {

class HttpIngest {
 public:
  HttpIngest(const Options& opts, KeyStore& keys, Committer& committer, Metrics& metrics,
             const Clock& clock);
  void handle(http::Request&& req, http::Respond respond);
  // Before serving: the Idempotency-Key answers recorded in the archive (last window).
  Result<KeyRecovery> recover_keys(Archive& archive) {
    return ingest::recover_keys(archive, idempotency_, clock_.now());
  }
  // Wired by run_http: server statistics for /metrics and the draining flag for health.
  std::function<http::ServerStats()> server_stats;
  std::function<bool()> draining;
  std::function<ArchiveStats()> archive_stats;  // with --archive: spool and upload figures
  // The series each tenant has (--db: from Postgres at start and on SIGHUP).
  void seed_series(const std::vector<SeriesLimit::Known>& known) { series_limit_.seed(known); }

 private:
  void ingest(http::Request&& req, http::Respond respond);
  // A body of several payloads (a JSON array or NDJSON): receive.cpp.
  void ingest_many(http::Request&& req, http::Respond respond, const AuthResult& auth, const Limits& limits,
                   TimeNs now);
  // Another agent's wire format (receivers.h): receive.cpp.
  void receive(http::Request&& req, http::Respond respond, const Receiver& r);
  void reply(const http::Request& req, const http::Respond& respond, const Receiver& r, const Outcome& o,
             Reason reason);
  void admit(http::Request&& req, http::Respond respond, const Receiver& r, const AuthResult& auth,
             SampleSink& sink, TimeNs now);
  void commit_groups(http::Request&& req, http::Respond respond, const Receiver& r,
                     const std::string& tenant, const SampleSink& sink, TimeNs now);
  http::Response reject(const http::Request& req, Reason reason, unsigned status,
                        std::string_view error, std::string_view detail);
  std::optional<http::Response> decode_in_place(http::Request& req);
  // Drops the points of new series beyond the tenant's max_series.
  SeriesRefusal limit_series(const AuthResult& auth, Payload& payload);

  const Options& opts_;
  KeyStore& keys_;
  Committer& committer_;
  Metrics& metrics_;
  const Clock& clock_;
  Quota quota_;
  IdempotencyCache idempotency_;
  SeriesLimit series_limit_;
};

// The limits of a request: base, or a copy in `buf` with the epoch unit of ?precision=.
Status limits_of(std::string_view target, const Limits& base, Limits& buf, const Limits*& out);

// Serves until SIGTERM/SIGINT (drain, flush, return ok) or a fatal error. Batch lines go
// to out_fd. SIGHUP reloads the keys file.
Status run_http(const Options& opts, int out_fd);

}  // namespace ep::ingest
