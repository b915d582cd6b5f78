#pragma once
// `ep-ingest --db`: API keys and plan quotas from Postgres (docs/ep-ingest.md). The keys are
// cached in memory (a KeyStore), reloaded every --key-refresh and on SIGHUP, so a
// revoked key stops working within the refresh interval; last_used_at is written for
// the keys used since the previous refresh, one UPDATE per refresh, not per request.
//
// ep-ingest authenticates every tenant, so it connects as the schema owner (like
// ep-load), not as the tenant-scoped edgepulse_app role that row-level security binds.
#include <memory>
#include <string>
#include <vector>

#include "ep/keys.h"
#include "ep/pg.h"
#include "ep/status.h"
#include "series_limit.h"

namespace ep::ingest {

class DbKeys {
 public:
  // Connects and checks the schema. kUnavailable when Postgres cannot be reached.
  static Result<std::unique_ptr<DbKeys>> open(const std::string& url);

  // Every key with its tenant's slug, disabled flag and plan quota. Reconnects first
  // when the previous call lost the connection.
  Result<std::vector<keys::KeyEntry>> load();
  // Sets last_used_at = at for these prefixes (never moving it backwards).
  // The series (tenant, device, metric) of the tenants whose plan has a max_series.
  Result<std::vector<SeriesLimit::Known>> load_series();
  Status record_usage(const std::vector<std::string>& prefixes, TimeNs at);

 private:
  Status reconnect();
  std::string url_;
  pg::Conn conn_;
};

}  // namespace ep::ingest
