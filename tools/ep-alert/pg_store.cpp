#include "pg_store.h"

#include <algorithm>
#include <cmath>

#include "ep/log.h"

namespace ep::alert {
namespace {

constexpr const char* kLabels[] = {"normal", "spike", "drop", "drift", "missingness", "stuck"};

bool same(const SeriesState& a, const SeriesState& b) {
  return a.last_end == b.last_end && a.consecutive == b.consecutive && a.firing == b.firing &&
         a.notified == b.notified && a.last_notified == b.last_notified && a.held == b.held &&
         a.normal_since == b.normal_since && a.fires == b.fires;
}

// Times are stored with microsecond precision; the engine's state is rounded the same
// way on load, so an unchanged series compares equal after a restart.
TimeNs to_us(TimeNs t) { return t == kNever ? t : t - (((t % 1000) + 1000) % 1000); }

TimeNs seconds_to_ns(double s) { return static_cast<TimeNs>(std::llround(s * 1e9)); }

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  if (s.empty()) return out;
  size_t pos = 0;
  for (;;) {
    size_t next = s.find(sep, pos);
    out.push_back(s.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return out;
}

std::string ts_array(const std::vector<TimeNs>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += '"' + pg::format_ts_us(v[i]) + '"';
  }
  return s + "}";
}

bool same_disabled(const std::map<std::string, DisabledWebhook>& a,
                   const std::map<std::string, DisabledWebhook>& b) {
  if (a.size() != b.size()) return false;
  for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j)
    if (i->first != j->first || i->second.since != j->second.since) return false;
  return true;
}

// Temporary tables the rows of one save are copied into (COPY) before one
// INSERT ... SELECT ... ON CONFLICT per table; created once per connection.
constexpr const char* kTempTables =
    "CREATE TEMP TABLE ep_alert_ev (ord int, tenant_id uuid, alert_id text, webhook_id uuid, "
    "  rule_id uuid, device text, metric text, window_end timestamptz, score float8, "
    "  label text, status text, attempts int, http_status int, error text, body text, "
    "  next_attempt_at timestamptz, budget_from timestamptz, type text, rule text, "
    "  severity text, window_start timestamptz) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE ep_alert_at (ord int, tenant_id uuid, alert_id text, webhook_id uuid, "
    "  attempted_at timestamptz, http_status int, error text, duration_ms int) "
    "  ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE ep_alert_st (tenant_id uuid, rule_id uuid, device text, metric text, "
    "  last_end timestamptz, consecutive int, firing bool, notified bool, "
    "  last_notified timestamptz, held bool, normal_since timestamptz, fires timestamptz[]) "
    "  ON COMMIT DELETE ROWS";

// One COPY text row, field by field.
class CopyRow {
 public:
  explicit CopyRow(std::string& out) : out_(out) {}
  ~CopyRow() { out_ += '\n'; }
  CopyRow& text(std::string_view v) {
    sep();
    pg::append_copy_text(out_, v);
    return *this;
  }
  CopyRow& null() {
    sep();
    out_ += "\\N";
    return *this;
  }
  CopyRow& opt(std::string_view v) { return v.empty() ? null() : text(v); }
  CopyRow& num(std::int64_t v) { return text(std::to_string(v)); }
  CopyRow& num_or_null(std::int64_t v) { return v ? num(v) : null(); }
  CopyRow& dbl(double v) { return text(*pg::Param(v).value()); }
  CopyRow& boolean(bool v) { return text(v ? "t" : "f"); }
  CopyRow& ts(TimeNs t) { return t == kNever ? null() : text(pg::format_ts_us(t)); }

 private:
  void sep() {
    if (!first_) out_ += '\t';
    first_ = false;
  }
  std::string& out_;
  bool first_ = true;
};

std::vector<std::string_view> split_series_key(std::string_view k) {
  auto parts = split(k, '\x1f');
  parts.resize(4);
  return parts;
}

}  // namespace

std::int64_t tenant_lock_key(const std::string& tenant_id) {
  return pg::lock_key("ep-alert:" + tenant_id);
}

Result<std::unique_ptr<PgStore>> PgStore::open(const std::string& url, const std::string& tenant,
                                               bool lock) {
  std::string resolved = pg::resolve_url(url);
  auto c = pg::Conn::connect(resolved, "ep-alert");
  if (!c) return c.status();
  EP_RETURN_IF_ERROR(c->run(kTempTables));
  std::unique_ptr<PgStore> s(new PgStore(std::move(c).value(), resolved, tenant));
  auto rows = s->conn_.exec(
      "SELECT slug, tenant_id FROM tenants WHERE NOT disabled AND ($1::text IS NULL OR slug = $1) "
      "ORDER BY slug",
      {tenant.empty() ? pg::Param(nullptr) : pg::Param(tenant)});
  if (!rows) return rows.status();
  if (!tenant.empty() && rows->empty())
    return Status::usage("--tenant " + tenant + ": no such enabled tenant");
  for (int i = 0; i < rows->size(); ++i) {
    std::string slug = rows->str(i, 0), id = rows->str(i, 1);
    if (lock) {
      auto locked = s->conn_.try_advisory_lock(tenant_lock_key(id));
      if (!locked) return locked.status();
      if (!*locked && !tenant.empty())
        return Status::temporary("another ep-alert --db holds tenant " + slug +
                                 "'s alerting lock on " + pg::redact_url(resolved) +
                                 "; try again when it has finished");
      if (!*locked) {
        log::warn("tenant " + slug + ": skipped: another ep-alert --db holds its alerting lock; "
                  "its scores in this run are not evaluated and its deliveries wait for the "
                  "next run");
        s->skipped_.push_back(slug);
        continue;
      }
    }
    s->tenant_ids_[slug] = id;
  }
  return s;
}

Status PgStore::reconnect() {
  auto c = pg::Conn::connect(url_, "ep-alert");
  if (!c) return c.status();
  for (const auto& [slug, id] : tenant_ids_) {
    auto locked = c->try_advisory_lock(tenant_lock_key(id));
    if (!locked) return locked.status();
    if (!*locked)
      return Status::temporary("reconnected, but another ep-alert holds tenant " + slug +
                               "'s alerting lock");
  }
  EP_RETURN_IF_ERROR(c->run(kTempTables));
  conn_ = std::move(c).value();
  return Status::ok();
}

bool PgStore::skipped(std::string_view slug) const {
  return std::find(skipped_.begin(), skipped_.end(), slug) != skipped_.end();
}

// The tenants this run holds the lock of, as a uuid[] parameter.
pg::Param PgStore::tenants_param() const {
  std::string a = "{";
  for (const auto& [slug, id] : tenant_ids_) a += (a.size() > 1 ? "," : "") + id;
  return pg::Param(a + "}");
}

const std::string* PgStore::tenant_id(const std::string& slug) const {
  auto it = tenant_ids_.find(slug);
  return it == tenant_ids_.end() ? nullptr : &it->second;
}

const std::string* PgStore::webhook_id(const std::string& name) const {
  auto it = webhook_ids_.find(name);
  return it == webhook_ids_.end() ? nullptr : &it->second;
}

Result<RuleSet> PgStore::load_rules() {
  RuleSet set;
  set.source = "Postgres";
  const pg::Param tenant = tenants_param();

  auto hooks = conn_.exec(
      "SELECT t.slug, w.webhook_id, w.name, w.url, w.secret, w.enabled, w.timeout_ms, "
      "  w.max_attempts "
      "FROM webhooks w JOIN tenants t ON t.tenant_id = w.tenant_id "
      "WHERE NOT t.disabled AND t.tenant_id = ANY($1::uuid[]) ORDER BY t.slug, w.name",
      {tenant});
  if (!hooks) return hooks.status();
  for (int i = 0; i < hooks->size(); ++i) {
    std::string name = hooks->str(i, 0) + "/" + hooks->str(i, 2);
    webhook_ids_[name] = hooks->str(i, 1);
    if (!hooks->get_bool(i, 5)) continue;
    std::string what = "webhooks \"" + name + "\"";
    Webhook w;
    w.name = name;
    w.url = hooks->str(i, 3);
    w.timeout = hooks->get_int(i, 6) * kNsPerMs;
    w.max_attempts = static_cast<int>(hooks->get_int(i, 7));
    if (w.url.rfind("https://", 0) != 0 && w.url.rfind("http://", 0) != 0)
      return Status::data(what + ": url: must start with https:// or http://");
    auto secrets = split(hooks->get(i, 4), ' ');
    size_t n = 0;
    for (std::string_view ref : secrets) {
      if (ref.empty()) continue;
      auto key = resolve_secret(ref, what + ": secret[" + std::to_string(n++) + "]");
      if (!key) return key.status();
      w.keys.push_back(std::move(key).value());
    }
    if (w.keys.empty() || w.keys.size() > 2)
      return Status::data(what + ": secret: one whsec_ secret, or two separated by a space "
                          "during a rotation");
    set.webhooks.push_back(std::move(w));
  }

  auto rules = conn_.exec(
      "SELECT t.slug, r.rule_id, r.name, r.device, r.metric, r.min_score, "
      "  array_to_string(r.labels, ','), r.consecutive, extract(epoch FROM r.cooldown)::float8, "
      "  r.resolve, r.severity, r.flap_threshold, extract(epoch FROM r.flap_window)::float8, "
      "  w.name, w.enabled "
      "FROM alert_rules r JOIN tenants t ON t.tenant_id = r.tenant_id "
      "LEFT JOIN webhooks w ON w.tenant_id = r.tenant_id AND w.webhook_id = r.webhook_id "
      "WHERE r.enabled AND NOT t.disabled AND t.tenant_id = ANY($1::uuid[]) "
      "ORDER BY t.slug, r.name",
      {tenant});
  if (!rules) return rules.status();
  for (int i = 0; i < rules->size(); ++i) {
    std::string slug = rules->str(i, 0);
    Rule r;
    r.name = rules->str(i, 2);
    std::string what = "alert_rules \"" + slug + "/" + r.name + "\"";
    if (!valid_rule_name(r.name))
      return Status::data(what + ": name: must match [A-Za-z0-9._:-]{1,64}");
    r.selector.tenant = slug;
    r.selector.device = rules->str(i, 3);
    r.selector.metric = rules->str(i, 4);
    r.min_score = rules->get_double(i, 5);
    for (std::string_view l : split(rules->get(i, 6), ',')) {
      if (std::find(std::begin(kLabels), std::end(kLabels), l) == std::end(kLabels))
        return Status::data(what + ": labels: unknown label \"" + std::string(l) +
                            "\" (normal, spike, drop, drift, missingness, stuck)");
      r.labels.emplace_back(l);
    }
    r.consecutive = static_cast<int>(rules->get_int(i, 7));
    r.cooldown = seconds_to_ns(rules->get_double(i, 8));
    if (r.cooldown < 0) return Status::data(what + ": cooldown: must not be negative");
    r.resolve = rules->get_bool(i, 9);
    std::string_view sev = rules->get(i, 10);
    r.severity = sev == "info" ? Severity::kInfo
                 : sev == "critical" ? Severity::kCritical : Severity::kWarning;
    r.flap_threshold = static_cast<int>(rules->get_int(i, 11));
    r.flap_window = seconds_to_ns(rules->get_double(i, 12));
    if (r.flap_threshold > 0 && r.flap_window <= 0)
      return Status::data(what + ": flap_window: must be positive when flap_threshold is set");
    if (rules->is_null(i, 13)) {
      log::warn(what + ": no webhook (webhook_id is NULL): events are evaluated, nothing is sent");
    } else {
      std::string hook = slug + "/" + rules->str(i, 13);
      auto it = std::find_if(set.webhooks.begin(), set.webhooks.end(),
                             [&](const Webhook& w) { return w.name == hook; });
      if (it == set.webhooks.end())
        log::warn(what + ": webhook \"" + hook + "\" is not enabled: nothing is sent");
      else
        r.webhooks.push_back(static_cast<size_t>(it - set.webhooks.begin()));
    }
    rule_ids_[slug + '\x1f' + r.name] = rules->str(i, 1);
    set.rules.push_back(std::move(r));
  }

  auto silences = conn_.exec(
      "SELECT t.slug, s.name, s.rule, s.device, s.metric, s.starts_at, s.ends_at "
      "FROM alert_silences s JOIN tenants t ON t.tenant_id = s.tenant_id "
      "WHERE NOT t.disabled AND t.tenant_id = ANY($1::uuid[]) ORDER BY t.slug, s.name",
      {tenant});
  if (!silences) return silences.status();
  for (int i = 0; i < silences->size(); ++i) {
    Silence s;
    s.name = silences->str(i, 0) + "/" + silences->str(i, 1);
    s.rule = silences->str(i, 2);
    s.selector.tenant = silences->str(i, 0);
    s.selector.device = silences->str(i, 3);
    s.selector.metric = silences->str(i, 4);
    if (auto start = silences->opt_ts(i, 5)) s.start = *start;
    s.end = silences->get_ts(i, 6);
    set.silences.push_back(std::move(s));
  }
  return set;
}

Result<State> PgStore::load_state() {
  State st;
  const pg::Param tenant = tenants_param();
  auto series = conn_.exec(
      "SELECT t.slug, r.name, s.device, s.metric, s.last_end, s.consecutive, s.firing, "
      "  s.notified, s.last_notified, s.held, s.normal_since, array_to_string(s.fires, ',') "
      "FROM alert_state s JOIN tenants t ON t.tenant_id = s.tenant_id "
      "JOIN alert_rules r ON r.tenant_id = s.tenant_id AND r.rule_id = s.rule_id "
      "WHERE NOT t.disabled AND t.tenant_id = ANY($1::uuid[])",
      {tenant});
  if (!series) return series.status();
  auto ts_or_never = [](const pg::Rows& rows, int i, int c) {
    auto t = rows.opt_ts(i, c);
    return t ? *t : kNever;
  };
  for (int i = 0; i < series->size(); ++i) {
    SeriesState s;
    s.last_end = ts_or_never(*series, i, 4);
    s.consecutive = static_cast<int>(series->get_int(i, 5));
    s.firing = series->get_bool(i, 6);
    s.notified = series->get_bool(i, 7);
    s.last_notified = ts_or_never(*series, i, 8);
    s.held = series->get_bool(i, 9);
    s.normal_since = ts_or_never(*series, i, 10);
    for (std::string_view f : split(series->get(i, 11), ','))
      if (auto t = pg::parse_pg_ts(f)) s.fires.push_back(*t);
    std::string key = State::series_key(series->get(i, 1), series->get(i, 0), series->get(i, 2),
                                        series->get(i, 3));
    saved_series_[key] = s;
    st.series[key] = std::move(s);
  }

  auto events = conn_.exec(
      "SELECT e.alert_id, t.slug || '/' || coalesce(w.name, 'deleted:' || e.webhook_id::text), "
      "  e.webhook_id, e.type, e.rule, t.slug, e.device, e.metric, e.label, e.severity, "
      "  e.window_start, e.window_end, e.score, e.body, coalesce(e.budget_from, e.created_at), "
      "  e.attempts, coalesce(e.next_attempt_at, now()), e.status = 'failed', "
      "  coalesce(e.http_status, 0), coalesce(e.error, '') "
      "FROM alert_events e JOIN tenants t ON t.tenant_id = e.tenant_id "
      "LEFT JOIN webhooks w ON w.tenant_id = e.tenant_id AND w.webhook_id = e.webhook_id "
      "WHERE e.status IN ('pending', 'failed') AND e.body <> '' AND NOT t.disabled "
      "  AND t.tenant_id = ANY($1::uuid[])",
      {tenant});
  if (!events) return events.status();
  for (int i = 0; i < events->size(); ++i) {
    Delivery d;
    d.alert_id = events->str(i, 0);
    d.webhook = events->str(i, 1);
    webhook_ids_.emplace(d.webhook, events->str(i, 2));
    d.type = events->str(i, 3);
    d.rule = events->str(i, 4);
    d.tenant = events->str(i, 5);
    d.device = events->str(i, 6);
    d.metric = events->str(i, 7);
    d.label = events->str(i, 8);
    d.severity = events->str(i, 9);
    d.start = events->get_ts(i, 10);
    d.end = events->get_ts(i, 11);
    d.score = events->get_double(i, 12);
    d.body = events->str(i, 13);
    d.created = events->get_ts(i, 14);
    d.attempts = static_cast<int>(events->get_int(i, 15));
    d.next_attempt = events->get_ts(i, 16);
    d.failed = events->get_bool(i, 17);
    d.http_status = static_cast<int>(events->get_int(i, 18));
    d.error = events->str(i, 19);
    saved_deliveries_[d.key()] = {d.failed, d.attempts, d.http_status, d.next_attempt, d.created,
                                  d.error};
    st.deliveries[d.key()] = std::move(d);
  }

  auto disabled = conn_.exec(
      "SELECT t.slug || '/' || w.name, w.disabled_at, coalesce(w.disabled_reason, '') "
      "FROM webhooks w JOIN tenants t ON t.tenant_id = w.tenant_id "
      "WHERE w.disabled_at IS NOT NULL AND t.tenant_id = ANY($1::uuid[])",
      {tenant});
  if (!disabled) return disabled.status();
  for (int i = 0; i < disabled->size(); ++i)
    st.disabled[disabled->str(i, 0)] = {disabled->get_ts(i, 1), disabled->str(i, 2)};
  saved_disabled_ = st.disabled;
  return st;
}

Status PgStore::read_new_scores(
    const std::function<bool(std::string_view json, std::int64_t n)>& fn) {
  constexpr int kPage = 5000;
  const pg::Param tenant = tenants_param();
  std::optional<std::string> k_scored, k_tenant, k_metric, k_end, k_start;  // keyset
  std::int64_t n = 0;
  for (;;) {
    auto rows = conn_.exec(
        "SELECT s.tenant_id, s.scored_at, s.metric_id, s.window_end, s.window_start, "
        "  json_build_object('kind', 'score', 'tenant', t.slug, 'device', d.external_id, "
        "    'metric', m.name, "
        "    'start', to_char(s.window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "    'end', to_char(s.window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "    'score', s.score, 'anomaly', s.anomaly, 'label', s.label, 'model', s.model, "
        "    'explanation', s.explanation)::text "
        "FROM anomaly_scores s JOIN tenants t ON t.tenant_id = s.tenant_id "
        "JOIN metrics m ON m.tenant_id = s.tenant_id AND m.metric_id = s.metric_id "
        "JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id "
        "LEFT JOIN cursors c ON c.tenant_id = s.tenant_id AND c.name = 'ep-alert' AND c.scope = '' "
        "WHERE NOT t.disabled AND t.tenant_id = ANY($1::uuid[]) "
        "  AND (c.position IS NULL OR s.scored_at > c.position - interval '5 minutes') "
        "  AND ($2::timestamptz IS NULL OR (s.scored_at, s.tenant_id, s.metric_id, s.window_end, "
        "       s.window_start) > ($2::timestamptz, $3::uuid, $4::uuid, $5::timestamptz, "
        "       $6::timestamptz)) "
        "ORDER BY s.scored_at, s.tenant_id, s.metric_id, s.window_end, s.window_start "
        "LIMIT " + std::to_string(kPage),
        {tenant, k_scored, k_tenant, k_metric, k_end, k_start});
    if (!rows) return rows.status();
    for (int i = 0; i < rows->size(); ++i) {
      if (!fn(rows->get(i, 5), ++n)) return Status::ok();
      read_up_to_[rows->str(i, 0)] = rows->str(i, 1);
    }
    if (rows->size() < kPage) return Status::ok();
    int last = rows->size() - 1;
    k_scored = rows->str(last, 1);
    k_tenant = rows->str(last, 0);
    k_metric = rows->str(last, 2);
    k_end = rows->str(last, 3);
    k_start = rows->str(last, 4);
  }
}

Status PgStore::advance_cursors() {
  for (const auto& [tid, at] : read_up_to_)
    EP_RETURN_IF_ERROR(conn_.run(
        "INSERT INTO cursors (tenant_id, name, scope, position) VALUES ($1, 'ep-alert', '', $2) "
        "ON CONFLICT (tenant_id, name, scope) DO UPDATE "
        "SET position = GREATEST(cursors.position, EXCLUDED.position), updated_at = now()",
        {tid, at}));
  read_up_to_.clear();
  return Status::ok();
}

void PgStore::on_suppressed(const Delivery& d, TimeNs) {
  events_[d.key()] = {d, "suppressed"};
}

void PgStore::on_attempt(const AttemptReport& r, TimeNs now) {
  const Delivery& d = *r.delivery;
  std::string status = r.outcome == Outcome::kDelivered  ? "delivered"
                       : r.outcome == Outcome::kRetrying ? "pending"
                                                         : "failed";
  events_[d.key()] = {d, status};
  if (r.sent)
    attempts_.push_back({d.tenant, d.alert_id, d.webhook, now, r.duration, d.http_status, d.error});
  if (r.outcome == Outcome::kDelivered) {
    std::string day = format_rfc3339(now).substr(0, 10);
    ++sent_[{d.tenant, day}];
  }
}

Status PgStore::copy(const char* table, const std::string& rows) {
  if (rows.empty()) return Status::ok();
  EP_RETURN_IF_ERROR(conn_.copy_start(std::string("COPY ") + table + " FROM STDIN"));
  EP_RETURN_IF_ERROR(conn_.copy_put(rows));
  auto n = conn_.copy_finish();
  return n ? Status::ok() : n.status();
}

Status PgStore::write(const std::vector<const EventRow*>& events, const State& s,
                      const std::vector<std::pair<const std::string*, const SeriesState*>>& series,
                      TimeNs now) {
  std::string ev, at, st;
  int ord = 0;
  for (const EventRow* e : events) {
    const Delivery& d = e->d;
    const std::string* tid = tenant_id(d.tenant);
    const std::string* wid = webhook_id(d.webhook);
    if (!tid || !wid) {
      log::warn("alert " + d.alert_id + ": tenant \"" + d.tenant + "\" or webhook \"" +
                d.webhook + "\" unknown to the database; not recorded");
      continue;
    }
    auto rule = rule_ids_.find(d.tenant + '\x1f' + d.rule);
    bool waiting = e->status == "pending";
    CopyRow r(ev);
    r.num(ord++).text(*tid).text(d.alert_id).text(*wid);
    if (rule == rule_ids_.end()) r.null();
    else r.text(rule->second);
    r.text(d.device).text(d.metric).ts(d.end).dbl(d.score).text(d.label).text(e->status)
        .num(d.attempts).num_or_null(d.http_status).opt(d.error).text(d.body)
        .ts(waiting ? d.next_attempt : kNever).ts(d.created).text(d.type).text(d.rule)
        .text(d.severity).ts(d.start);
  }
  ord = 0;
  for (const AttemptRow& a : attempts_) {
    const std::string* tid = tenant_id(a.tenant);
    const std::string* wid = webhook_id(a.webhook);
    if (!tid || !wid) continue;
    CopyRow(at).num(ord++).text(*tid).text(a.alert_id).text(*wid).ts(a.at)
        .num_or_null(a.http_status).opt(a.error).num((a.duration + kNsPerMs / 2) / kNsPerMs);
  }
  for (const auto& [key, ss] : series) {
    auto p = split_series_key(*key);
    const std::string* tid = tenant_id(std::string(p[1]));
    auto rule = rule_ids_.find(std::string(p[1]) + '\x1f' + std::string(p[0]));
    if (!tid || rule == rule_ids_.end()) continue;
    CopyRow(st).text(*tid).text(rule->second).text(p[2]).text(p[3]).ts(ss->last_end)
        .num(ss->consecutive).boolean(ss->firing).boolean(ss->notified).ts(ss->last_notified)
        .boolean(ss->held).ts(ss->normal_since).text(ts_array(ss->fires));
  }

  pg::Transaction tx(conn_);
  EP_RETURN_IF_ERROR(tx.begin());
  EP_RETURN_IF_ERROR(copy("ep_alert_ev", ev));
  EP_RETURN_IF_ERROR(copy("ep_alert_at", at));
  EP_RETURN_IF_ERROR(copy("ep_alert_st", st));
  if (!ev.empty())
    EP_RETURN_IF_ERROR(conn_.run(
        "INSERT INTO alert_events (tenant_id, alert_id, webhook_id, rule_id, metric_id, "
        "  window_end, score, label, status, attempts, http_status, error, payload, "
        "  next_attempt_at, budget_from, type, rule, device, metric, severity, window_start, body) "
        "SELECT e.tenant_id, e.alert_id, e.webhook_id, e.rule_id, m.metric_id, e.window_end, "
        "  e.score, e.label, e.status, e.attempts, e.http_status, e.error, "
        "  CASE WHEN e.body = '' THEN '{}'::jsonb ELSE e.body::jsonb END, e.next_attempt_at, "
        "  e.budget_from, e.type, e.rule, e.device, e.metric, e.severity, e.window_start, e.body "
        "FROM ep_alert_ev e LEFT JOIN LATERAL (SELECT mt.metric_id FROM metrics mt "
        "  JOIN devices dv ON dv.tenant_id = mt.tenant_id AND dv.device_id = mt.device_id "
        "  WHERE mt.tenant_id = e.tenant_id AND dv.external_id = e.device "
        "    AND mt.name = e.metric) m ON true "
        "ORDER BY e.ord "
        "ON CONFLICT (tenant_id, alert_id, webhook_id) DO UPDATE SET status = EXCLUDED.status, "
        "  attempts = EXCLUDED.attempts, http_status = EXCLUDED.http_status, "
        "  error = EXCLUDED.error, next_attempt_at = EXCLUDED.next_attempt_at, "
        "  budget_from = EXCLUDED.budget_from, updated_at = now()"));
  // Attempts are numbered on from what is recorded (across `retry` budgets).
  if (!at.empty())
    EP_RETURN_IF_ERROR(conn_.run(
        "INSERT INTO alert_attempts (tenant_id, alert_id, webhook_id, attempt, attempted_at, "
        "  http_status, error, duration_ms) "
        "SELECT a.tenant_id, a.alert_id, a.webhook_id, "
        "  coalesce((SELECT max(x.attempt) FROM alert_attempts x WHERE x.tenant_id = a.tenant_id "
        "    AND x.alert_id = a.alert_id AND x.webhook_id = a.webhook_id), 0) "
        "  + row_number() OVER (PARTITION BY a.tenant_id, a.alert_id, a.webhook_id ORDER BY a.ord), "
        "  a.attempted_at, a.http_status, a.error, a.duration_ms "
        "FROM ep_alert_at a"));
  if (!st.empty())
    EP_RETURN_IF_ERROR(conn_.run(
        "INSERT INTO alert_state (tenant_id, rule_id, device, metric, last_end, consecutive, "
        "  firing, notified, last_notified, held, normal_since, fires) "
        "SELECT tenant_id, rule_id, device, metric, last_end, consecutive, firing, notified, "
        "  last_notified, held, normal_since, fires FROM ep_alert_st "
        "ON CONFLICT (tenant_id, rule_id, device, metric) DO UPDATE SET "
        "  last_end = EXCLUDED.last_end, consecutive = EXCLUDED.consecutive, "
        "  firing = EXCLUDED.firing, notified = EXCLUDED.notified, "
        "  last_notified = EXCLUDED.last_notified, held = EXCLUDED.held, "
        "  normal_since = EXCLUDED.normal_since, fires = EXCLUDED.fires, updated_at = now()"));
  for (const auto& [k, n] : sent_) {
    const std::string* tid = tenant_id(k.first);
    if (!tid) continue;
    EP_RETURN_IF_ERROR(conn_.run(
        "INSERT INTO usage_daily (tenant_id, day, alerts_sent) VALUES ($1, $2::date, $3) "
        "ON CONFLICT (tenant_id, day) DO UPDATE "
        "SET alerts_sent = usage_daily.alerts_sent + EXCLUDED.alerts_sent",
        {*tid, k.second, n}));
  }
  // Endpoints disabled by HTTP 410, and those re-enabled by `retry --webhook`.
  for (const auto& [name, d] : s.disabled) {
    auto old = saved_disabled_.find(name);
    if (old != saved_disabled_.end() && old->second.since == d.since) continue;
    const std::string* wid = webhook_id(name);
    if (!wid) continue;
    EP_RETURN_IF_ERROR(conn_.run(
        "UPDATE webhooks SET disabled_at = $2, disabled_reason = $3 WHERE webhook_id = $1",
        {*wid, pg::ts_param(d.since), d.reason}));
  }
  for (const auto& [name, d] : saved_disabled_) {
    if (s.disabled.count(name)) continue;
    const std::string* wid = webhook_id(name);
    if (!wid) continue;
    EP_RETURN_IF_ERROR(conn_.run(
        "UPDATE webhooks SET disabled_at = NULL, disabled_reason = NULL WHERE webhook_id = $1",
        {*wid}));
  }
  (void)now;
  return tx.commit();
}

Status PgStore::save(const State& s, TimeNs now) {
  // What changed since the last save: reported events, deliveries whose state moved,
  // series whose state moved.
  std::map<std::string, EventRow> changed;
  for (const auto& [key, d] : s.deliveries) {
    DeliverySnap snap{d.failed, d.attempts, d.http_status, d.next_attempt, d.created, d.error};
    auto it = saved_deliveries_.find(key);
    if (it != saved_deliveries_.end() && it->second == snap && !events_.count(key)) continue;
    changed[key] = {d, d.failed ? "failed" : "pending"};
  }
  std::vector<const EventRow*> rows;
  for (const auto& [key, e] : events_)
    if (!changed.count(key)) rows.push_back(&e);
  for (const auto& [key, e] : changed) rows.push_back(&e);
  std::vector<std::pair<const std::string*, const SeriesState*>> series;
  for (const auto& [key, st] : s.series) {
    auto it = saved_series_.find(key);
    SeriesState rounded = st;
    rounded.last_end = to_us(st.last_end);
    rounded.last_notified = to_us(st.last_notified);
    rounded.normal_since = to_us(st.normal_since);
    for (TimeNs& f : rounded.fires) f = to_us(f);
    if (it != saved_series_.end() && same(it->second, rounded)) continue;
    series.emplace_back(&key, &st);
  }
  if (rows.empty() && attempts_.empty() && sent_.empty() && series.empty() &&
      same_disabled(s.disabled, saved_disabled_))
    return Status::ok();

  pg::RetryPolicy policy;
  policy.max_wait = 30 * kNsPerSec;
  pg::RetryHooks hooks;
  hooks.on_retry = [](const Status& st, int attempt, TimeNs wait) {
    log::warn("saving alert state (attempt " + std::to_string(attempt) + "): " + st.message() +
              "; retrying in " + format_duration(wait));
  };
  EP_RETURN_IF_ERROR(pg::retry(
      policy,
      [&](int attempt) -> Status {
        if (attempt > 1 && (conn_.broken() || !conn_.connected())) EP_RETURN_IF_ERROR(reconnect());
        return write(rows, s, series, now);
      },
      hooks));

  // Committed: remember what the database now holds.
  for (const auto& [key, st] : series) {
    SeriesState& saved = saved_series_[*key];
    saved = *st;
    saved.last_end = to_us(st->last_end);
    saved.last_notified = to_us(st->last_notified);
    saved.normal_since = to_us(st->normal_since);
    for (TimeNs& f : saved.fires) f = to_us(f);
  }
  for (const EventRow* e : rows) {
    const Delivery& d = e->d;
    if (e->status == "pending" || e->status == "failed")
      saved_deliveries_[d.key()] = {d.failed, d.attempts, d.http_status, d.next_attempt,
                                    d.created, d.error};
    else
      saved_deliveries_.erase(d.key());
  }
  // A delivery reported (say, retrying) and then changed again before this save is
  // written from the State, which is newer; the snapshot above follows the State.
  for (const auto& [key, e] : changed) {
    const Delivery& d = e.d;
    saved_deliveries_[key] = {d.failed, d.attempts, d.http_status, d.next_attempt, d.created,
                              d.error};
  }
  saved_disabled_ = s.disabled;
  events_.clear();
  attempts_.clear();
  sent_.clear();
  return Status::ok();
}

}  // namespace ep::alert
