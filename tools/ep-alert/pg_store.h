#pragma once
// ep-alert's Postgres mode (--db): rules, webhooks and silences from alert_rules,
// webhooks and alert_silences; per-series state in alert_state; every delivery in
// alert_events with each attempt in alert_attempts; delivered alerts counted in
// usage_daily.alerts_sent. Schema: common/sql/0001_core.sql, 0003_alert_state.sql.
//
// Tenants: ep-alert runs as the table owner (like ep-load) and scopes every query by
// tenant_id explicitly. A rule matches only scores of its own tenant (its selector's
// tenant is the tenant's slug) and only targets webhooks of that tenant. Webhook names
// are shown as "<tenant>/<name>" (names are unique per tenant only).
//
// One ep-alert per tenant at a time: a session advisory lock per tenant
// (tenant_lock_key). With --tenant T a second run for T exits 75; a run over all
// tenants skips, with a note, the tenants another run holds (skipped()).
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ep/pg.h"
#include "rules.h"
#include "state.h"
#include "store.h"

namespace ep::alert {

// The advisory lock key of one tenant's alerting (its tenant_id).
std::int64_t tenant_lock_key(const std::string& tenant_id);

class PgStore : public Store {
 public:
  // Connects (url "" = $DATABASE_URL, then the libpq environment) and takes the lock of
  // each tenant (unless `lock` is false: check). `tenant` (a slug) limits everything to
  // one tenant, whose lock held elsewhere is an error (temporary, exit 75); "" = all
  // enabled tenants, skipping those whose lock another run holds.
  static Result<std::unique_ptr<PgStore>> open(const std::string& url, const std::string& tenant,
                                               bool lock = true);
  // Tenants skipped because another run holds their lock.
  const std::vector<std::string>& skipped_tenants() const { return skipped_; }
  bool skipped(std::string_view slug) const;

  // Enabled rules of enabled tenants, their enabled webhooks, and silences. Validated;
  // errors name the tenant, rule and column.
  Result<RuleSet> load_rules();
  // Series state, pending and failed deliveries, endpoints disabled by HTTP 410.
  Result<State> load_state();

  // Scores for --since-last: anomaly_scores rows scored since each tenant's cursor
  // ("ep-alert", scope ''), minus kCursorOverlap for transactions that committed late
  // (re-read windows are replays to the engine), as score records (JSON), in scoring
  // order, one page at a time. fn returns false to stop.
  Status read_new_scores(const std::function<bool(std::string_view json, std::int64_t n)>& fn);
  // Moves each tenant's cursor to the newest scored_at handed to fn.
  Status advance_cursors();

  std::string where() const override { return "Postgres (" + pg::redact_url(url_) + ")"; }
  Status save(const State& s, TimeNs now) override;
  void on_suppressed(const Delivery& d, TimeNs now) override;
  void on_attempt(const AttemptReport& r, TimeNs now) override;

 private:
  struct EventRow {
    Delivery d;
    std::string status;  // pending, delivered, failed, suppressed
  };
  struct AttemptRow {
    std::string tenant, alert_id, webhook;
    TimeNs at = 0, duration = 0;
    int http_status = 0;
    std::string error;
  };
  struct DeliverySnap {
    bool failed = false;
    int attempts = 0, http_status = 0;
    TimeNs next_attempt = 0, created = 0;
    std::string error;
    bool operator==(const DeliverySnap&) const = default;
  };

  PgStore(pg::Conn c, std::string url, std::string tenant)
      : conn_(std::move(c)), url_(std::move(url)), tenant_(std::move(tenant)) {}
  Status reconnect();
  Status write(const std::vector<const EventRow*>& events, const State& s,
               const std::vector<std::pair<const std::string*, const SeriesState*>>& series,
               TimeNs now);
  Status copy(const char* table, const std::string& rows);
  const std::string* tenant_id(const std::string& slug) const;
  const std::string* webhook_id(const std::string& name) const;
  pg::Param tenants_param() const;

  pg::Conn conn_;
  std::string url_, tenant_;
  std::unordered_map<std::string, std::string> tenant_ids_;   // slug -> tenant_id (locked)
  std::vector<std::string> skipped_;  // slugs whose lock another run holds
  std::unordered_map<std::string, std::string> rule_ids_;     // slug \x1f rule -> rule_id
  std::unordered_map<std::string, std::string> webhook_ids_;  // "slug/name" -> webhook_id
  // What the database holds, to write only what changed.
  std::unordered_map<std::string, SeriesState> saved_series_;
  std::unordered_map<std::string, DeliverySnap> saved_deliveries_;
  std::map<std::string, DisabledWebhook> saved_disabled_;
  // Reported since the last successful save.
  std::map<std::string, EventRow> events_;  // Delivery::key()
  std::vector<AttemptRow> attempts_;
  std::map<std::pair<std::string, std::string>, std::int64_t> sent_;  // (slug, day) -> n
  std::map<std::string, std::string> read_up_to_;  // tenant_id -> newest scored_at read
};

}  // namespace ep::alert
