#pragma once
// ep-api's core: authenticates a request by its X-API-Key, runs the route's queries in
// one transaction under the tenant's row-level-security context (SET LOCAL ROLE
// edgepulse_app + edgepulse.tenant_id) and renders JSON. Stateless apart from a short
// key cache and a pool of idle connections, so any number can run behind a balancer.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ep/egress.h"
#include "ep/log.h"
#include "ep/pg.h"
#include "ep/time.h"
#include "http.h"

namespace ep::api {

struct Options {
  std::string db_url;                     // resolved libpq URL ("" = libpq environment)
  std::string pepper;                     // API key pepper (API_KEY_HASH_SALT)
  TimeNs key_cache_ttl = 30 * kNsPerSec;  // a revoked key keeps working at most this long
  size_t max_idle_connections = 8;
  int default_limit = 100;
  int max_limit = 1000;
  int default_series_points = 2000;
  int max_series_points = 20000;
  TimeNs default_series_range = 24 * 3600 * kNsPerSec;
  int max_range_points = 5'000'000;  // points one /v1/series request may read (~120 MB)
  std::string rls_role = "edgepulse_app";
  // Webhook URLs whose host is a non-public IP literal or a localhost name are refused
  // unless allowlisted here (--allow-egress); ep-alert checks resolved names at delivery.
  egress::Policy egress;
};

struct Tenant {
  std::string id;    // uuid
  std::string slug;  // "acme"
};

// Idle connections for reuse; a connection that broke is dropped, not returned.
class Pool {
 public:
  explicit Pool(std::string url, size_t max_idle) : url_(std::move(url)), max_idle_(max_idle) {}
  Result<std::unique_ptr<pg::Conn>> take();
  void give(std::unique_ptr<pg::Conn> c);

 private:
  std::string url_;
  size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<pg::Conn>> idle_;
};

class Api;
// What a route handler sees.
struct Ctx {
  const Request& req;
  const std::map<std::string, std::string>& query;
  std::vector<std::string> params;  // path parameters, in order
  const Tenant& tenant;
  pg::Conn& db;
  const Options& opts;
  TimeNs now;
};
using Handler = Result<Response> (*)(Ctx&);

class Api {
 public:
  explicit Api(Options opts, const Clock& clock = SystemClock::instance());
  // Thread-safe; never throws.
  Response handle(const Request& req);
  // Checks at startup that the database has the schema and that this login may take
  // the row-level-security role; the message says what to GRANT otherwise.
  Status check_database();
  const Options& options() const { return opts_; }

 private:
  Response dispatch(const Request& req);
  Result<Tenant> authenticate(const Request& req, pg::Conn& db);
  Response run_route(const Request& req, Handler h, bool write, std::vector<std::string> params,
                     const std::map<std::string, std::string>& query);

  struct CachedKey {
    std::string hash;
    Tenant tenant;
    bool usable = false;  // false: revoked, tenant disabled, or unknown prefix
    TimeNs expires = 0;
  };
  Options opts_;
  const Clock& clock_;
  Pool pool_;
  std::mutex cache_mu_;
  std::map<std::string, CachedKey> key_cache_;
  // Postgres down or overloaded fails every request alike: logged in full once, then
  // at most one line per 10 s with the count (other failures are logged each time).
  log::Throttled unavailable_log_{10 * kNsPerSec};
};

// Static assets and the OpenAPI document embedded at build time (www/, openapi.json).
struct Asset {
  std::string_view path;  // "/app.js"
  std::string_view content_type;
  std::string_view body;
};
const Asset* find_asset(std::string_view path);

}  // namespace ep::api
