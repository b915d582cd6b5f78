#pragma once
// Delivery of signed webhooks with retries. Deliveries live in State::deliveries until
// they are delivered (then removed) or fail for good (kept with failed = true for
// `ep-alert retry`). Classification of one attempt:
//   2xx                          delivered
//   410                          endpoint disabled (no more sends to it until `retry`)
//   other 3xx/4xx (not 408/429)  failed, permanent
//   egress policy denied every   failed, permanent (until the operator allows the
//   address of the URL's host    address and runs `ep-alert retry`)
//   5xx, 408, 429, timeouts,
//   connection errors            retried: full jitter, delay uniform in [0, min(max,
//                                base * 2^(attempt-1))], or Retry-After when given;
//                                failed after max_attempts or past max_age
// Per (rule, series, webhook) deliveries go out in window order: a later event (say the
// resolve) waits while an earlier one (its detection) is still pending or retrying.
//
// Tenants share the run fairly (TenantShare): due deliveries are started round-robin
// across tenants, each tenant has at most tenant_max_in_flight attempts in flight, and
// each tenant's attempts may be in flight for at most tenant_budget of wall time per
// budget_period (each attempt's timeout is cut to what is left). A tenant whose budget
// is spent gets no more attempts until the period renews: its deliveries stay pending
// (workable() no longer counts them), so a dead endpoint holds only its own tenant's
// share of connections and time, never the other tenants' deliveries or the run's end.
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "http_client.h"
#include "rules.h"
#include "state.h"

namespace ep::alert {

struct RetryPolicy {
  int max_attempts = 8;
  TimeNs backoff_base = 1 * kNsPerSec;
  TimeNs backoff_max = 600 * kNsPerSec;
  TimeNs max_age = 24 * 3600 * kNsPerSec;
};

// Per-tenant shares of concurrency and time (0 = no limit).
struct TenantShare {
  size_t max_in_flight = 0;             // attempts in flight per tenant
  TimeNs budget = 0;                    // in-flight wall time per tenant per period
  TimeNs period = 600 * kNsPerSec;      // the budget renews this often (longer runs)
  TimeNs default_timeout = 15 * kNsPerSec;  // attempt timeout of endpoints without their own
};

// A tenant whose time budget is spent, for the run's report.
struct SpentTenant {
  std::string tenant;
  size_t left = 0;         // its deliveries not settled
  std::string last_error;  // of its last failed attempt
};

// Upper bound of the jittered delay after `attempts` failed attempts (>= 1).
TimeNs backoff_cap(const RetryPolicy& p, int attempts);

enum class Outcome { kDelivered, kRetrying, kFailed, kDisabled };
const char* outcome_name(Outcome o);  // "delivered", "retrying", "failed", "disabled"

struct AttemptReport {
  const Delivery* delivery = nullptr;  // valid during the callback only
  Outcome outcome = Outcome::kDelivered;
  TimeNs duration = 0;  // of the HTTP attempt; 0 when nothing was sent
  bool sent = false;    // false: settled without an attempt (endpoint disabled earlier)
};

struct DelivererStats {
  std::uint64_t attempts = 0, delivered = 0, retried = 0, failed = 0, disabled = 0;
};

class Deliverer {
 public:
  using Report = std::function<void(const AttemptReport&)>;
  Deliverer(const RuleSet& rules, State& state, HttpClient& http, RetryPolicy policy,
            const Clock& clock, Report report, TenantShare share = {});

  // Queues a new delivery. False (and nothing queued) when the same (alert_id, webhook)
  // is already pending or failed.
  bool add(Delivery d);
  // Schedules the pending (not failed) deliveries found in a loaded state.
  void resume_pending();
  // Moves failed deliveries matching the filter back to pending, due now, with a fresh
  // attempt budget. Deliveries to an endpoint disabled by 410 are skipped (counted in
  // *skipped_disabled) unless `webhook` names it: then it is re-enabled. Returns how many.
  size_t requeue_failed(TimeNs created_after, const std::string& rule, const std::string& webhook,
                        size_t* skipped_disabled = nullptr);

  // Starts due attempts (unless start_new is false) and drives transfers; waits up to
  // max_wait, or until extra_fd is readable.
  Status pump(TimeNs max_wait, int extra_fd = -1, bool* extra_ready = nullptr,
              bool start_new = true);
  // Not yet settled: queued, waiting for a retry, or in flight.
  size_t unsettled() const { return unsettled_; }
  // Unsettled deliveries this run can still work on: in flight, or of a tenant with
  // time budget left. The run ends when none are left (the rest stays pending).
  size_t workable() const;
  // Time until the next attempt may start (0 if one is due now; large if none).
  TimeNs time_to_next_due() const;
  // Tenants whose time budget is spent and that still have deliveries.
  std::vector<SpentTenant> spent_tenants() const;

  const DelivererStats& stats() const { return stats_; }

 private:
  struct Tenant {
    std::multimap<TimeNs, std::string> due;  // next_attempt -> key
    size_t in_flight = 0, blocked = 0;
    TimeNs busy = 0;          // in-flight wall time in the current period (monotonic)
    TimeNs busy_since = 0;    // start of the current stretch with attempts in flight
    TimeNs period_start = 0;
    bool exhausted = false;   // an attempt was cut at the budget in this period
    std::string last_error;
    size_t unsettled() const { return due.size() + in_flight + blocked; }
  };
  struct InFlight {
    std::string key;
    Tenant* tenant = nullptr;    // tenants_ nodes stay put
    bool cut_by_budget = false;  // the attempt's timeout was cut to the tenant's budget
  };
  static std::string order_key(const Delivery& d);
  Tenant& tenant(const std::string& name);
  TimeNs budget_left(Tenant& t, TimeNs mono);
  bool renews(const Tenant& t, TimeNs mono) const;
  bool out_of_budget(const Tenant& t, TimeNs mono) const;
  bool may_start(const Tenant& t) const;
  void schedule(const Delivery& d);
  void track(const Delivery& d);
  void untrack(const Delivery& d);
  void start_due();
  void start(Delivery& d, Tenant& t);
  void attempt_ended(Tenant& t);
  void settle(Delivery& d, const HttpResult& r, bool cut_by_budget);
  void fail(Delivery& d, Outcome o, std::string error, TimeNs duration, bool sent);

  const RuleSet& rules_;
  State& state_;
  HttpClient& http_;
  RetryPolicy policy_;
  const Clock& clock_;
  Report report_;
  TenantShare share_;
  std::map<std::string, Tenant> tenants_;          // by tenant slug
  std::string last_served_;                        // round-robin position
  std::unordered_map<std::uint64_t, InFlight> in_flight_;  // tag -> attempt
  size_t unsettled_ = 0;
  // Window ends of unsettled deliveries per order_key, and keys waiting behind them.
  std::unordered_map<std::string, std::multiset<TimeNs>> unsettled_ends_;
  std::unordered_map<std::string, std::vector<std::string>> blocked_;
  std::uint64_t next_tag_ = 1;
  std::mt19937_64 rng_;
  DelivererStats stats_;
  std::vector<HttpResult> done_;
};

}  // namespace ep::alert
