#include "deliverer.h"

#include <algorithm>

#include "ep/crypto.h"
#include "webhook.h"

namespace ep::alert {

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kDelivered: return "delivered";
    case Outcome::kRetrying: return "retrying";
    case Outcome::kFailed: return "failed";
    case Outcome::kDisabled: return "disabled";
  }
  return "failed";
}

TimeNs backoff_cap(const RetryPolicy& p, int attempts) {
  TimeNs cap = p.backoff_base;
  for (int i = 1; i < attempts && cap < p.backoff_max; ++i) cap *= 2;
  return std::min(cap, p.backoff_max);
}

namespace {
std::uint64_t random_seed() {
  std::uint64_t s = 0;
  crypto::random_bytes(reinterpret_cast<unsigned char*>(&s), sizeof s);
  return s;
}

std::string describe(const HttpResult& r) {
  if (r.status == 0) return r.timed_out ? "timeout: " + r.error : "connection: " + r.error;
  std::string s = "HTTP " + std::to_string(r.status);
  std::string_view body = r.body_prefix;
  if (!body.empty()) {
    std::string clean;
    for (char c : body.substr(0, 200)) clean += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    s += ": " + clean;
  }
  return s;
}
}  // namespace

Deliverer::Deliverer(const RuleSet& rules, State& state, HttpClient& http, RetryPolicy policy,
                     const Clock& clock, Report report, TenantShare share)
    : rules_(rules),
      state_(state),
      http_(http),
      policy_(policy),
      clock_(clock),
      report_(std::move(report)),
      share_(share),
      rng_(random_seed()) {}

bool Deliverer::add(Delivery d) {
  std::string key = d.key();
  auto [it, inserted] = state_.deliveries.emplace(key, std::move(d));
  if (!inserted) return false;
  track(it->second);
  schedule(it->second);
  return true;
}

std::string Deliverer::order_key(const Delivery& d) {
  return State::series_key(d.rule, d.tenant, d.device, d.metric) + '\x1f' + d.webhook;
}

Deliverer::Tenant& Deliverer::tenant(const std::string& name) {
  auto [it, inserted] = tenants_.try_emplace(name);
  if (inserted) it->second.period_start = monotonic_ns();
  return it->second;
}

bool Deliverer::renews(const Tenant& t, TimeNs mono) const {
  return share_.period > 0 && mono - t.period_start >= share_.period;
}

// Whether the tenant has used up its time budget (and the period does not renew yet).
bool Deliverer::out_of_budget(const Tenant& t, TimeNs mono) const {
  if (share_.budget <= 0 || renews(t, mono)) return false;
  return t.exhausted || t.busy + (t.in_flight ? mono - t.busy_since : 0) >= share_.budget;
}

// What is left of the tenant's time budget in the current period (renewing it first).
TimeNs Deliverer::budget_left(Tenant& t, TimeNs mono) {
  if (share_.budget <= 0) return INT64_MAX;
  if (renews(t, mono)) {
    t.period_start = mono;
    t.busy = 0;
    t.exhausted = false;
    if (t.in_flight) t.busy_since = mono;
  }
  if (t.exhausted) return 0;
  return share_.budget - t.busy - (t.in_flight ? mono - t.busy_since : 0);
}

bool Deliverer::may_start(const Tenant& t) const {
  return share_.max_in_flight == 0 || t.in_flight < share_.max_in_flight;
}

void Deliverer::schedule(const Delivery& d) { tenant(d.tenant).due.emplace(d.next_attempt, d.key()); }

void Deliverer::track(const Delivery& d) {
  unsettled_ends_[order_key(d)].insert(d.end);
  ++unsettled_;
}

void Deliverer::untrack(const Delivery& d) {
  --unsettled_;
  std::string ok = order_key(d);
  auto it = unsettled_ends_.find(ok);
  if (it != unsettled_ends_.end()) {
    auto e = it->second.find(d.end);
    if (e != it->second.end()) it->second.erase(e);
    if (it->second.empty()) unsettled_ends_.erase(it);
  }
  // Whatever waited behind it may go now (start() re-checks the order).
  auto b = blocked_.find(ok);
  if (b == blocked_.end()) return;
  TimeNs now = clock_.now();
  Tenant& t = tenant(d.tenant);  // the order key includes the tenant
  for (auto& key : b->second) t.due.emplace(now, std::move(key));
  t.blocked -= b->second.size();
  blocked_.erase(b);
}

void Deliverer::resume_pending() {
  for (auto& [key, d] : state_.deliveries)
    if (!d.failed) {
      track(d);
      schedule(d);
    }
}

size_t Deliverer::requeue_failed(TimeNs created_after, const std::string& rule,
                                 const std::string& webhook, size_t* skipped_disabled) {
  size_t n = 0;
  TimeNs now = clock_.now();
  if (!webhook.empty()) state_.disabled.erase(webhook);  // named explicitly: re-enable
  for (auto& [key, d] : state_.deliveries) {
    if (!d.failed || d.created < created_after) continue;
    if (!rule.empty() && d.rule != rule) continue;
    if (!webhook.empty() && d.webhook != webhook) continue;
    if (state_.disabled.count(d.webhook)) {
      if (skipped_disabled) ++*skipped_disabled;
      continue;
    }
    d.failed = false;
    d.attempts = 0;
    d.created = now;  // a fresh max-age budget
    d.next_attempt = now;
    track(d);
    schedule(d);
    ++n;
  }
  return n;
}

TimeNs Deliverer::time_to_next_due() const {
  TimeNs next = INT64_MAX, mono = monotonic_ns();
  for (const auto& [name, t] : tenants_) {
    if (t.due.empty() || !may_start(t)) continue;
    if (out_of_budget(t, mono)) {
      // Spent: the next chance is when the period renews.
      if (share_.period > 0) next = std::min(next, t.period_start + share_.period - mono);
      continue;
    }
    next = std::min(next, t.due.begin()->first - clock_.now());
  }
  return std::max<TimeNs>(0, next);
}

size_t Deliverer::workable() const {
  size_t n = 0;
  TimeNs mono = monotonic_ns();
  for (const auto& [name, t] : tenants_) {
    n += out_of_budget(t, mono) ? t.in_flight : t.unsettled();
  }
  return n;
}

std::vector<SpentTenant> Deliverer::spent_tenants() const {
  std::vector<SpentTenant> out;
  TimeNs mono = monotonic_ns();
  for (const auto& [name, t] : tenants_)
    if (t.unsettled() > 0 && out_of_budget(t, mono))
      out.push_back({name, t.unsettled(), t.last_error});
  return out;
}

void Deliverer::fail(Delivery& d, Outcome o, std::string error, TimeNs duration, bool sent) {
  d.failed = true;
  d.error = std::move(error);
  if (o == Outcome::kDisabled) ++stats_.disabled;
  else ++stats_.failed;
  report_({&d, o, duration, sent});
  untrack(d);
}

void Deliverer::start(Delivery& d, Tenant& t) {
  std::string ok = order_key(d);
  if (auto it = unsettled_ends_.find(ok); it != unsettled_ends_.end() && *it->second.begin() < d.end) {
    blocked_[ok].push_back(d.key());  // an earlier event of this series goes first
    ++t.blocked;
    return;
  }
  if (auto dis = state_.disabled.find(d.webhook); dis != state_.disabled.end()) {
    fail(d, Outcome::kDisabled,
         "endpoint disabled since " + format_rfc3339(dis->second.since) + " (" +
             dis->second.reason + "); re-send with `ep-alert retry`",
         0, false);
    return;
  }
  const Webhook* w = rules_.webhook(d.webhook);
  if (!w) {
    fail(d, Outcome::kFailed,
         "webhook \"" + d.webhook + "\" is not defined (or not enabled) in " + rules_.source, 0,
         false);
    return;
  }
  TimeNs now = clock_.now();
  std::int64_t ts = now / kNsPerSec;
  HttpRequest req;
  req.tag = next_tag_++;
  req.url = w->url;
  req.headers = {"webhook-id: " + d.alert_id, "webhook-timestamp: " + std::to_string(ts),
                 "webhook-signature: " + sign(w->keys, d.alert_id, ts, d.body)};
  req.body = d.body;
  // The attempt may use what is left of its tenant's time budget, never more.
  TimeNs mono = monotonic_ns();
  TimeNs timeout = w->timeout > 0 ? w->timeout : share_.default_timeout;
  TimeNs left = budget_left(t, mono);
  bool cut = left < timeout;
  req.timeout = cut ? std::max<TimeNs>(left, kNsPerMs) : w->timeout;
  ++d.attempts;
  ++stats_.attempts;
  Status st = http_.submit(std::move(req));
  if (!st) {
    fail(d, Outcome::kFailed, st.message(), 0, false);
    return;
  }
  if (t.in_flight++ == 0) t.busy_since = mono;
  in_flight_.emplace(next_tag_ - 1, InFlight{d.key(), &t, cut});
}

void Deliverer::attempt_ended(Tenant& t) {
  TimeNs mono = monotonic_ns();
  budget_left(t, mono);  // renews the period first, if it is over
  if (--t.in_flight == 0) t.busy += mono - t.busy_since;
}

void Deliverer::settle(Delivery& d, const HttpResult& r, bool cut_by_budget) {
  d.http_status = r.status;
  d.error = r.status >= 200 && r.status < 300 ? "" : describe(r);
  if (cut_by_budget && r.timed_out)
    d.error = "cut at the tenant's time budget (--tenant-budget " +
              format_duration(share_.budget) + " per run): " + d.error;
  if (!d.error.empty()) tenant(d.tenant).last_error = d.error;
  if (r.status >= 200 && r.status < 300) {
    ++stats_.delivered;
    report_({&d, Outcome::kDelivered, r.duration, true});
    Delivery done = std::move(d);
    state_.deliveries.erase(done.key());
    untrack(done);
    return;
  }
  if (r.status == 410) {
    state_.disabled[d.webhook] = {clock_.now(), "HTTP 410 Gone"};
    fail(d, Outcome::kDisabled, "endpoint disabled: " + d.error, r.duration, true);
    return;
  }
  bool retryable = (r.status == 0 && !r.egress_denied) || r.status >= 500 || r.status == 408 ||
                   r.status == 429;
  if (!retryable) {
    fail(d, Outcome::kFailed, "permanent: " + d.error, r.duration, true);
    return;
  }
  const Webhook* w = rules_.webhook(d.webhook);
  int max_attempts = w && w->max_attempts > 0 ? w->max_attempts : policy_.max_attempts;
  if (d.attempts >= max_attempts) {
    fail(d, Outcome::kFailed,
         "gave up after " + std::to_string(d.attempts) + " attempts: " + d.error, r.duration, true);
    return;
  }
  TimeNs delay;
  if (r.retry_after) {
    delay = *r.retry_after;
  } else {
    std::uniform_int_distribution<TimeNs> jitter(0, backoff_cap(policy_, d.attempts));
    delay = jitter(rng_);
  }
  TimeNs now = clock_.now();
  if (now + delay > d.created + policy_.max_age) {
    fail(d, Outcome::kFailed,
         "gave up: next attempt in " + format_duration(delay) + " would pass the max age of " +
             format_duration(policy_.max_age) + ": " + d.error,
         r.duration, true);
    return;
  }
  d.next_attempt = now + delay;
  ++stats_.retried;
  report_({&d, Outcome::kRetrying, r.duration, true});
  schedule(d);
}

Status Deliverer::pump(TimeNs max_wait, int extra_fd, bool* extra_ready, bool start_new) {
  if (start_new) start_due();
  TimeNs wait = max_wait;
  if (start_new && !http_.full()) wait = std::min(wait, time_to_next_due());
  done_.clear();
  EP_RETURN_IF_ERROR(http_.poll(wait, done_, extra_fd, extra_ready));
  for (const HttpResult& r : done_) {
    auto tag = in_flight_.find(r.tag);
    if (tag == in_flight_.end()) continue;
    InFlight f = std::move(tag->second);
    in_flight_.erase(tag);
    attempt_ended(*f.tenant);
    // Cut at the budget: spent, even if the timer fired a hair early.
    if (f.cut_by_budget && r.timed_out) f.tenant->exhausted = true;
    auto it = state_.deliveries.find(f.key);
    if (it != state_.deliveries.end()) settle(it->second, r, f.cut_by_budget);
  }
  return Status::ok();
}

// Due deliveries, one tenant at a time round-robin (starting after the tenant served
// last), skipping tenants at their in-flight cap or out of time budget.
void Deliverer::start_due() {
  TimeNs now = clock_.now(), mono = monotonic_ns();
  for (bool started = true; started && !http_.full();) {
    started = false;
    auto first = tenants_.upper_bound(last_served_);
    for (size_t i = 0; i < tenants_.size() && !http_.full(); ++i, ++first) {
      if (first == tenants_.end()) first = tenants_.begin();
      Tenant& t = first->second;
      if (t.due.empty() || t.due.begin()->first > now || !may_start(t) ||
          budget_left(t, mono) <= 0)
        continue;
      std::string key = std::move(t.due.begin()->second);
      t.due.erase(t.due.begin());
      last_served_ = first->first;
      started = true;
      auto it = state_.deliveries.find(key);
      if (it == state_.deliveries.end() || it->second.failed) continue;
      start(it->second, t);
    }
  }
}

}  // namespace ep::alert
