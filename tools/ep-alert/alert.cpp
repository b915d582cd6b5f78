#include "alert.h"

#include <rapidjson/document.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine.h"
#include "pg_store.h"
#include "ep/fsutil.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/progress.h"
#include "ep/records.h"
#include "state.h"
#include "store.h"
#include "webhook.h"

namespace ep::alert {
namespace {

Delivery make_delivery(const Event& e, const Webhook& w, TimeNs now) {
  const Score& s = *e.score;
  Delivery d;
  d.alert_id = e.alert_id;
  d.webhook = w.name;
  d.type = event_type_name(e.type);
  d.rule = e.rule->name;
  d.tenant = s.tenant;
  d.device = s.device;
  d.metric = s.metric;
  d.label = s.label;
  d.severity = severity_name(e.rule->severity);
  d.start = s.start;
  d.end = s.end;
  d.score = s.score;
  d.created = now;
  d.next_attempt = now;
  return d;
}

// One alert record (docs/architecture.md §3) plus ep-alert's extra fields, which readers may ignore.
struct Extra {
  TimeNs next_attempt = 0;
  TimeNs duration = -1;
  std::string_view url, body;  // dry-run: what would be sent
};

std::string alert_record(const Delivery& d, std::string_view status, const Extra& x = {}) {
  Alert a;
  a.alert_id = d.alert_id;
  a.rule = d.rule;
  a.tenant = d.tenant;
  a.device = d.device;
  a.metric = d.metric;
  a.start = d.start;
  a.end = d.end;
  a.score = d.score;
  a.label = d.label;
  a.webhook = d.webhook;
  a.status = std::string(status);
  a.type = d.type;
  a.severity = d.severity;
  a.error = d.error;
  a.attempts = d.attempts;
  a.http_status = d.http_status;
  std::string line = to_ndjson(a);
  if (x.next_attempt == 0 && x.duration < 0 && x.url.empty()) return line;
  JsonWriter w;  // the extra members, spliced in before the closing brace
  w.start_object();
  if (x.next_attempt) w.kv_time("next_attempt", x.next_attempt);
  if (x.duration >= 0) w.kv("duration_ms", static_cast<double>(x.duration) / kNsPerMs);
  if (!x.url.empty()) {
    w.kv("url", x.url);
    w.key("body");
    w.raw(x.body);
  }
  w.end_object();
  line.pop_back();
  line += ',';
  line.append(w.view().substr(1));
  return line;
}

struct Counters {
  std::uint64_t lines = 0, scores = 0, rejected = 0, duplicates = 0, suppressed = 0, dry_run = 0;
  std::uint64_t pending_at_exit = 0, abandoned = 0;
  std::uint64_t skipped_scores = 0;  // of tenants another run holds (Postgres mode)
};

// The per-tenant shares with the defaults filled in.
TenantShare tenant_share(const Options& opts) {
  TenantShare s = opts.share;
  if (s.max_in_flight == 0) s.max_in_flight = std::max<size_t>(1, opts.http.max_in_flight / 4);
  s.default_timeout = opts.http.total_timeout;
  return s;
}

// Everything one run needs, wired together.
class Session {
 public:
  Session(const Options& opts, RecordWriter& out, const Clock& clock, const RuleSet& rules,
          State& state, Store* store)
      : opts_(opts),
        out_(out),
        clock_(clock),
        rules_(rules),
        state_(state),
        store_(store),
        http_(opts.http),
        deliverer_(rules, state, http_, opts.retry, clock,
                   [this](const AttemptReport& r) { on_attempt(r); }, tenant_share(opts)),
        engine_(rules, state) {}

  Deliverer& deliverer() { return deliverer_; }
  Engine& engine() { return engine_; }
  Counters& counters() { return counters_; }

  bool stopping() const { return opts_.stop && opts_.stop->load(); }

  void on_attempt(const AttemptReport& r) {
    dirty_ = true;
    Extra x;
    x.duration = r.sent ? r.duration : -1;
    if (r.outcome == Outcome::kRetrying) x.next_attempt = r.delivery->next_attempt;
    out_.write(alert_record(*r.delivery, outcome_name(r.outcome), x));
    if (store_) store_->on_attempt(r, clock_.now());
    if (r.outcome == Outcome::kDisabled && r.sent)
      log::warn("webhook " + r.delivery->webhook + ": endpoint disabled by HTTP 410; its "
                "deliveries fail until `ep-alert retry --webhook " + r.delivery->webhook + "`");
  }

  void on_event(const Event& e) {
    dirty_ = true;
    TimeNs now = clock_.now();
    std::string body;
    for (size_t idx : e.rule->webhooks) {
      const Webhook& w = rules_.webhooks[idx];
      Delivery d = make_delivery(e, w, now);
      if (!e.suppressed.empty()) {
        d.error = e.suppressed;
        ++counters_.suppressed;
        out_.write(alert_record(d, "suppressed"));
        if (store_ && !opts_.dry_run) store_->on_suppressed(d, now);
        continue;
      }
      if (body.empty()) body = build_body(e, now);
      if (opts_.dry_run) {
        ++counters_.dry_run;
        Extra x;
        x.url = w.url;
        x.body = body;
        out_.write(alert_record(d, "dry-run", x));
        continue;
      }
      d.body = body;
      if (!deliverer_.add(std::move(d))) ++counters_.duplicates;
    }
  }

  Status maybe_save(bool force) {
    if (!store_ || opts_.dry_run || (!dirty_ && !force)) return Status::ok();
    TimeNs t = monotonic_ns();
    if (!force && t - last_save_ < opts_.state_interval) return Status::ok();
    EP_RETURN_IF_ERROR(store_->save(state_, clock_.now()));
    last_save_ = t;
    dirty_ = false;
    return Status::ok();
  }

  // After the input: retry until everything settled or the drain timeout; then wait
  // for attempts in flight; then keep what is left (state) or give it up (no state).
  Status drain() {
    TimeNs deadline = monotonic_ns() + opts_.drain_timeout;
    while (deliverer_.workable() > 0 && !stopping()) {
      TimeNs left = deadline - monotonic_ns();
      if (left <= 0) break;
      EP_RETURN_IF_ERROR(deliverer_.pump(std::min(left, kNsPerSec)));
      out_.flush();
      EP_RETURN_IF_ERROR(maybe_save(false));
    }
    while (http_.in_flight() > 0) EP_RETURN_IF_ERROR(deliverer_.pump(kNsPerSec, -1, nullptr, false));
    report_spent_tenants();
    for (auto& [key, d] : state_.deliveries) {
      if (d.failed) continue;
      if (!store_) {
        d.failed = true;
        d.error = "not delivered within --drain-timeout " + format_duration(opts_.drain_timeout) +
                  " and no --state to keep it" + (d.error.empty() ? "" : "; last error: " + d.error);
        ++counters_.abandoned;
        out_.write(alert_record(d, "failed"));
      } else {
        ++counters_.pending_at_exit;
        Extra x;
        x.next_attempt = d.next_attempt;
        out_.write(alert_record(d, "pending", x));
      }
    }
    return maybe_save(true);
  }

  // Tenants that used up their time budget: their deliveries wait for the next run.
  void report_spent_tenants() const {
    for (const SpentTenant& t : deliverer_.spent_tenants())
      log::warn("tenant " + t.tenant + ": time budget spent (--tenant-budget " +
                format_duration(opts_.share.budget) + " of attempts in flight); " +
                std::to_string(t.left) + " deliveries left pending for the next run" +
                (t.last_error.empty() ? "" : "; last error: " + t.last_error));
  }

  void summarise(std::string_view what) const {
    const auto& e = engine_.stats();
    const auto& d = deliverer_.stats();
    std::string s = std::string(what) + ": " + std::to_string(counters_.scores) + " scores";
    if (counters_.rejected) s += " (" + std::to_string(counters_.rejected) + " rejected)";
    if (e.replayed) s += ", " + std::to_string(e.replayed) + " already seen";
    s += "; " + std::to_string(e.detected) + " detected, " + std::to_string(e.resolved) +
         " resolved, " + std::to_string(counters_.suppressed) + " suppressed";
    if (opts_.dry_run) s += "; dry run: " + std::to_string(counters_.dry_run) + " would be sent";
    else
      s += "; " + std::to_string(d.attempts) + " attempts: " + std::to_string(d.delivered) +
           " delivered, " + std::to_string(d.retried) + " retried, " +
           std::to_string(d.failed + counters_.abandoned) + " failed, " +
           std::to_string(d.disabled) + " disabled";
    if (counters_.pending_at_exit)
      s += ", " + std::to_string(counters_.pending_at_exit) + " pending in " + store_->where();
    log::info(s);
  }

  // The exit class: I/O errors are returned directly; then 69, 65, 75.
  Status verdict() const {
    const auto& d = deliverer_.stats();
    std::uint64_t failed = d.failed + d.disabled + counters_.abandoned;
    if (failed)
      return Status::unavailable(std::to_string(failed) + " deliveries failed (see the alert "
                                 "records; `ep-alert retry` re-sends them)");
    if (counters_.rejected)
      return Status::data(std::to_string(counters_.rejected) + " input lines rejected");
    if (counters_.pending_at_exit)
      return Status::temporary(std::to_string(counters_.pending_at_exit) +
                               " deliveries still pending; kept in " + store_->where());
    if (!skipped_.empty()) {
      std::string names;
      for (const auto& t : skipped_) names += (names.empty() ? "" : ", ") + t;
      return Status::temporary(
          "tenants skipped because another run holds their lock: " + names +
          (counters_.skipped_scores
               ? " (" + std::to_string(counters_.skipped_scores) + " of their scores not evaluated)"
               : std::string()) +
          "; run again for them");
    }
    return Status::ok();
  }

  void mark_dirty() { dirty_ = true; }
  void set_skipped_tenants(std::vector<std::string> t) { skipped_ = std::move(t); }

 private:
  const Options& opts_;
  RecordWriter& out_;
  const Clock& clock_;
  const RuleSet& rules_;
  State& state_;
  Store* store_;  // null: nothing survives the run
  HttpClient http_;
  Deliverer deliverer_;
  Engine engine_;
  Counters counters_;
  bool dirty_ = false;
  TimeNs last_save_ = 0;
  std::vector<std::string> skipped_;  // tenants another run holds (Postgres mode)
};

bool reads_only_stdin(const std::vector<std::string>& inputs) {
  return inputs.empty() || (inputs.size() == 1 && inputs[0] == "-");
}

// Rules, state and where the state is saved, for files mode or Postgres mode.
struct Setup {
  RuleSet rules;
  State state;
  std::unique_ptr<Store> store;  // null: files mode without --state
  PgStore* pg = nullptr;         // Postgres mode: the store, as a PgStore
};

Result<Setup> open_setup(const Options& opts, bool need_state) {
  Setup s;
  if (opts.use_db) {
    auto pg = PgStore::open(opts.db_url, opts.tenant, need_state);
    if (!pg) return pg.status();
    auto rules = (*pg)->load_rules();
    if (!rules) return rules.status();
    s.rules = std::move(rules).value();
    if (need_state) {
      auto state = (*pg)->load_state();
      if (!state) return state.status();
      s.state = std::move(state).value();
    }
    s.pg = pg->get();
    s.store = std::move(pg).value();
    return s;
  }
  auto rules = load_rules(opts.rules_path);
  if (!rules) return rules.status();
  s.rules = std::move(rules).value();
  if (need_state && !opts.state_path.empty()) {
    auto state = load_state(opts.state_path);
    if (!state) return state.status();
    s.state = std::move(state).value();
    s.store = std::make_unique<FileStore>(opts.state_path);
  }
  return s;
}

}  // namespace

Status run(const Options& opts, RecordWriter& out, const Clock& clock) {
  auto setup = open_setup(opts, true);
  if (!setup) return setup.status();
  Session session(opts, out, clock, setup->rules, setup->state, setup->store.get());
  if (setup->pg) session.set_skipped_tenants(setup->pg->skipped_tenants());
  Deliverer& deliverer = session.deliverer();
  Counters& counters = session.counters();
  if (!opts.dry_run) deliverer.resume_pending();

  LineReader reader(opts.inputs, opts.max_line_bytes);
  const bool wait_on_stdin = reads_only_stdin(opts.inputs);
  Status loop_status;
  // Before a read that may block: flush records, drive deliveries, and (stdin) wait for
  // input while retries come due, so a quiet pipe never stalls deliveries.
  reader.set_before_read([&] {
    out.flush();
    if (!loop_status) return;
    if (opts.dry_run) return;
    if (!wait_on_stdin) {  // files never block: just drive the transfers
      loop_status = deliverer.pump(0);
      if (loop_status) loop_status = session.maybe_save(false);
      return;
    }
    bool ready = false;
    do {
      loop_status = deliverer.pump(kNsPerSec, 0, &ready);
      out.flush();  // outcomes of retries reach the pipe while the input is quiet
      if (loop_status) loop_status = session.maybe_save(false);
    } while (loop_status && !ready && !session.stopping());
    if (session.stopping() || !loop_status) {
      // Stop reading without blocking: the reader's next read(2) sees end of file.
      int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (null_fd >= 0) {
        ::dup2(null_fd, 0);
        ::close(null_fd);
      }
    }
  });

  Progress progress(opts.progress, "scores");
  std::vector<Event> events;
  rapidjson::Document doc;
  Score score;
  // One input line; false: stop reading.
  auto handle = [&](const Line& line) -> bool {
    if ((++counters.lines & 1023) == 0) progress.update(counters.lines);
    auto reject = [&](std::string_view reason) {
      ++counters.rejected;
      log::reject(line.stream, line.number, reason);
    };
    if (line.too_long) {
      reject("line longer than " + std::to_string(opts.max_line_bytes) + " bytes");
    } else if (line.text.empty()) {
      return true;
    } else if (Status st = parse_json(line.text, doc); !st) {
      reject(st.message());
    } else if (Kind k = kind_of(doc); k != Kind::kScore) {
      reject(std::string("kind: expected \"score\", got \"") + kind_name(k) + "\"");
    } else if (Status ps = parse_record(doc, score); !ps) {
      reject(ps.message());
    } else {
      ++counters.scores;
      if (setup->pg && setup->pg->skipped(score.tenant)) ++counters.skipped_scores;
      events.clear();
      session.engine().evaluate(score, events);
      for (const Event& e : events) session.on_event(e);
      if (!events.empty()) session.mark_dirty();
      if (!opts.dry_run && (!events.empty() || (counters.scores & 1023) == 0))
        loop_status = deliverer.pump(0);
      while (loop_status && deliverer.unsettled() >= opts.max_queue && !session.stopping())
        loop_status = deliverer.pump(kNsPerSec);
    }
    if (opts.strict && counters.rejected) return false;
    return !out.broken_pipe();
  };
  if (opts.since_last) {
    // New anomaly_scores rows, page by page; between pages, drive deliveries and save.
    Status read = setup->pg->read_new_scores([&](std::string_view json, std::int64_t n) {
      if (!loop_status || session.stopping()) return false;
      bool go_on = handle(Line{json, "anomaly_scores", n, false});
      if (go_on && (n & 1023) == 0 && !opts.dry_run) {
        out.flush();
        loop_status = deliverer.pump(0);
        if (loop_status) loop_status = session.maybe_save(false);
      }
      return go_on && loop_status.is_ok();
    });
    if (!read && loop_status) loop_status = read;
  } else {
    Line line;
    while (loop_status && !session.stopping() && reader.next(line))
      if (!handle(line)) break;
  }
  progress.finish();
  if (!reader.status()) loop_status = reader.status();
  if (counters.scores) session.mark_dirty();
  Status drained = opts.dry_run ? Status::ok() : session.drain();
  session.summarise(opts.dry_run ? "dry run" : "run");
  if (!loop_status) return loop_status;
  if (!drained) return drained;
  // The cursor moves once the state of what was read is committed (drain saved it).
  if (opts.since_last && !opts.dry_run) EP_RETURN_IF_ERROR(setup->pg->advance_cursors());
  if (opts.strict && counters.rejected)
    return Status::data("stopped at the first rejected line (--strict)");
  return session.verdict();
}

Status retry(const Options& opts, RecordWriter& out, const Clock& clock) {
  if (opts.state_path.empty() && !opts.use_db)
    return Status::usage("retry: --state FILE or --db is required (failed deliveries live there)");
  auto setup = open_setup(opts, true);
  if (!setup) return setup.status();
  RuleSet* rules = &setup->rules;
  State* state = &setup->state;
  if (!opts.rule_filter.empty() && !rules->rule(opts.rule_filter))
    log::warn("retry: --rule " + opts.rule_filter + ": no such rule in " +
              (opts.use_db ? std::string("Postgres") : opts.rules_path));
  Session session(opts, out, clock, *rules, *state, setup->store.get());
  if (setup->pg) session.set_skipped_tenants(setup->pg->skipped_tenants());
  TimeNs after = opts.since > 0 ? clock.now() - opts.since : INT64_MIN;
  session.deliverer().resume_pending();
  size_t skipped = 0;
  size_t n = session.deliverer().requeue_failed(after, opts.rule_filter, opts.webhook_filter,
                                                &skipped);
  log::info("retry: re-sending " + std::to_string(n) + " failed deliveries (" +
            std::to_string(session.deliverer().unsettled() - n) + " pending)");
  if (skipped) {
    std::string names;
    for (const auto& [name, d] : state->disabled) names += (names.empty() ? "" : ", ") + name;
    log::warn("retry: " + std::to_string(skipped) + " failed deliveries go to endpoints disabled "
              "by HTTP 410 (" + names + "); name one with --webhook to re-enable it");
  }
  session.mark_dirty();
  Status drained = session.drain();
  session.summarise("retry");
  if (!drained) return drained;
  return session.verdict();
}

Result<std::string> check(const Options& opts) {
  auto setup = open_setup(opts, false);
  if (!setup) return setup.status();
  const RuleSet& rules = setup->rules;
  return (opts.use_db ? std::string("Postgres") : opts.rules_path) + ": ok: " +
         std::to_string(rules.rules.size()) + " rules, " + std::to_string(rules.webhooks.size()) +
         " webhooks, " + std::to_string(rules.silences.size()) + " silences";
}

Result<std::pair<bool, std::string>> verify_request(const VerifyOptions& opts,
                                                    const Clock& clock) {
  if (opts.secrets.empty()) return Status::usage("verify: --secret is required");
  std::vector<std::string> keys;
  for (size_t i = 0; i < opts.secrets.size(); ++i) {
    auto k = resolve_secret(opts.secrets[i], "--secret");
    if (!k) return k.status();
    keys.push_back(std::move(k).value());
  }
  std::string text;
  if (reads_only_stdin(opts.inputs)) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::io(std::string("stdin: ") + std::strerror(errno));
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > (64u << 20)) return Status::data("stdin: request dump larger than 64 MiB");
    }
  } else {
    if (opts.inputs.size() != 1) return Status::usage("verify: one request dump at a time");
    auto t = fs::read_file(opts.inputs[0]);
    if (!t) return Status::io(t.status().message());
    text = std::move(t).value();
  }
  std::string source = reads_only_stdin(opts.inputs) ? "stdin" : opts.inputs[0];
  auto req = parse_request_dump(text);
  if (!req) return std::pair{false, "invalid: " + source + ": " + req.status().message()};
  Verdict v = verify(*req, keys, clock.now(), opts.tolerance);
  if (!v.valid) return std::pair{false, "invalid: " + v.reason};
  std::string type;
  rapidjson::Document doc;
  if (parse_json(req->body, doc) && doc.IsObject())
    if (auto t = opt_string(doc, "type")) type = " type=" + std::string(*t);
  return std::pair{true, "valid: webhook-id=" + req->id + " timestamp=" +
                             format_rfc3339(std::stoll(req->timestamp) * kNsPerSec) + type +
                             " (" + v.reason + ")"};
}

}  // namespace ep::alert
