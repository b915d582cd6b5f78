// ep-alert: score records -> alert rules -> signed webhooks (Standard Webhooks).
// Thin main: options -> one ep::alert command -> exit code.
#include <csignal>
#include <iostream>

#include "alert.h"
#include "ep/cli.h"
#include "ep/log.h"
#include "ep/ndjson.h"

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

void install_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  ep::ignore_sigpipe();
}

// Duration flags are kept as text and parsed once, so errors name the flag.
struct DurationFlag {
  const char* name;
  std::string text;
  ep::TimeNs* out;
};

int finish(const ep::Status& st) {
  if (!st && !st.message().empty()) ep::log::error(st);
  return st.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
  ep::alert::Options opts;
  ep::alert::VerifyOptions vopts;
  ep::Cli cli("ep-alert", "Turns score records into signed webhook alerts (Standard Webhooks).",
              "Reads score records (NDJSON) from FILEs or stdin; writes one alert record per\n"
              "delivery outcome to stdout. Commands: (none) run, retry, check, verify.",
              "ep-features | ep-score --models /var/lib/edgepulse/models | "
              "ep-alert --rules /etc/edgepulse/alert-rules.toml --state /var/lib/edgepulse/alert-state.json");
  CLI::App& app = cli.app();
  app.fallthrough();
  app.require_subcommand(0, 1);
  const char* kRun = "Alerting";
  app.add_option("--rules", opts.rules_path, "Rules file (TOML): [[webhooks]], [[rules]], [[silences]]")
      ->type_name("FILE")->group(kRun);
  CLI::Option* db = app.add_option("--db", opts.db_url,
                 "Postgres mode: rules, webhooks and state in the database; without a value "
                 "$DATABASE_URL, then the libpq environment")
      ->expected(0, 1)
      ->type_name("[URL]")
      ->group(kRun);
  app.add_option("--tenant", opts.tenant, "With --db: only this tenant's rules and deliveries")
      ->type_name("SLUG")->group(kRun);
  app.add_flag("--since-last", opts.since_last,
               "With --db: read the anomaly_scores rows new since the last run (cursor "
               "\"ep-alert\") instead of FILEs/stdin")
      ->group(kRun);
  app.add_option("--state", opts.state_path,
                 "State file: alert state and undelivered webhooks survive restarts")
      ->type_name("FILE")->group(kRun);
  app.add_flag("--dry-run", opts.dry_run, "Evaluate rules and print what would be sent; send nothing")
      ->group(kRun);
  const char* kDelivery = "Delivery";
  app.add_option("--max-in-flight", opts.http.max_in_flight, "Concurrent webhook requests")
      ->check(CLI::Range(1, 4096))->group(kDelivery);
  app.add_option("--tenant-max-in-flight", opts.share.max_in_flight,
                 "Concurrent webhook requests per tenant (0 = a quarter of --max-in-flight, "
                 "at least 1): a tenant with a dead endpoint never holds all connections")
      ->check(CLI::Range(0, 4096))->group(kDelivery);
  app.add_option("--ca-bundle", opts.http.ca_bundle,
                 "Extra CA certificates (PEM) to verify TLS; verification is always on")
      ->type_name("FILE")->group(kDelivery);
  std::vector<std::string> allow_egress;
  cli.add_allow_egress(allow_egress)->group(kDelivery);
  app.add_option("--resolve", opts.http.resolve,
                 "Connect to ADDR for HOST:PORT instead of resolving HOST (as curl --resolve); "
                 "the egress policy still applies to ADDR")
      ->type_name("HOST:PORT:ADDR")
      ->allow_extra_args(false)
      ->group(kDelivery);
  app.add_option("--max-attempts", opts.retry.max_attempts, "Attempts before a delivery fails")
      ->check(CLI::Range(1, 100))->group(kDelivery);
  app.add_option("--max-queue", opts.max_queue,
                 "Undelivered webhooks held before input reading pauses (bounds memory)")
      ->check(CLI::Range(1, 10'000'000))->group(kDelivery);
  app.add_option("--max-line-bytes", opts.max_line_bytes, "Longest accepted input line")
      ->group(kRun);
  std::vector<DurationFlag> durations = {
      {"--connect-timeout", "5s", &opts.http.connect_timeout},
      {"--timeout", "15s", &opts.http.total_timeout},
      {"--backoff-base", "1s", &opts.retry.backoff_base},
      {"--backoff-max", "10m", &opts.retry.backoff_max},
      {"--max-age", "24h", &opts.retry.max_age},
      {"--drain-timeout", "60s", &opts.drain_timeout},
      {"--state-interval", "1s", &opts.state_interval},
      {"--tenant-budget", "30s", &opts.share.budget},
      {"--tenant-budget-period", "10m", &opts.share.period},
  };
  const char* help[] = {"Connect timeout per attempt", "Total timeout per attempt",
                        "First retry delay bound (doubles per attempt, full jitter)",
                        "Largest retry delay bound", "Give up on a delivery this long after the event",
                        "After the input ends, keep retrying this long (then keep the rest in --state)",
                        "Rewrite the state file at most this often",
                        "Wall time a tenant's requests may be in flight per run (per period); "
                        "attempts are cut to what is left, the rest stays pending (0 = no limit)",
                        "A run longer than this renews every tenant's --tenant-budget"};
  for (size_t i = 0; i < durations.size(); ++i)
    app.add_option(durations[i].name, durations[i].text, help[i])
        ->type_name("DUR")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->group(kDelivery);
  cli.add_inputs();

  CLI::App* retry = app.add_subcommand("retry", "Re-send failed deliveries kept in --state or Postgres (dead letters)");
  std::string since;
  retry->add_option("--since", since, "Only deliveries whose event is at most this old")->type_name("DUR");
  retry->add_option("--rule", opts.rule_filter, "Only this rule");
  retry->add_option("--webhook", opts.webhook_filter, "Only this webhook (also re-enables it after a 410)");
  CLI::App* check = app.add_subcommand("check", "Validate the --rules file and exit");
  CLI::App* verify = app.add_subcommand(
      "verify", "Check a received webhook (HTTP request dump: headers + body) against a secret");
  verify->add_option("--secret", vopts.secrets,
                     "whsec_… secret, env:NAME or file:PATH; repeat during a rotation")
      ->required()
      ->allow_extra_args(false);  // one value per --secret; the dump file is positional
  std::string tolerance = "5m";
  verify->add_option("--tolerance", tolerance, "Accepted webhook-timestamp skew")->type_name("DUR");
  verify->add_option("dump", vopts.inputs, "Request dump; none or - means stdin")->type_name("FILE");

  if (auto rc = cli.parse(argc, argv)) return *rc;
  for (auto& d : durations) {
    auto v = ep::parse_duration(d.text);
    if (!v || *v < 0) return cli.usage_error(std::string(d.name) + ": not a duration: " + d.text);
    *d.out = *v;
  }
  if (opts.http.connect_timeout <= 0 || opts.http.total_timeout <= 0)
    return cli.usage_error("--connect-timeout and --timeout must be positive");
  auto policy = ep::egress::Policy::from_strings(allow_egress);
  if (!policy) return cli.usage_error(policy.status().message());
  opts.http.egress = std::move(policy).value();
  for (const auto& r : opts.http.resolve)
    if (ep::Status st = ep::alert::check_resolve(r); !st) return cli.usage_error(st.message());
  opts.strict = cli.common().strict;
  opts.progress = cli.common().progress();
  opts.inputs = cli.common().inputs;
  opts.stop = &g_stop;
  install_signals();
  const ep::Clock& clock = ep::SystemClock::instance();

  if (verify->parsed()) {
    auto tol = ep::parse_duration(tolerance);
    if (!tol || *tol < 0) return cli.usage_error("--tolerance: not a duration: " + tolerance);
    vopts.tolerance = *tol;
    auto verdict = ep::alert::verify_request(vopts, clock);
    if (!verdict) return finish(verdict.status());
    std::cout << verdict->second << '\n' << std::flush;
    return verdict->first ? 0 : ep::exit_code(ep::Code::kData);
  }
  opts.use_db = db->count() > 0;
  if (opts.use_db && !opts.rules_path.empty())
    return cli.usage_error("--rules and --db are exclusive: rules come from a file or from Postgres");
  if (opts.use_db && !opts.state_path.empty())
    return cli.usage_error("--state is for files mode; with --db the state is kept in Postgres");
  if (!opts.use_db && !opts.tenant.empty()) return cli.usage_error("--tenant needs --db");
  if (opts.since_last && !opts.use_db) return cli.usage_error("--since-last needs --db");
  if (opts.since_last && !cli.common().inputs.empty())
    return cli.usage_error("--since-last reads anomaly_scores; give no input FILEs");
  if (!opts.use_db && opts.rules_path.empty())
    return cli.usage_error("--rules FILE or --db [URL] is required");
  if (check->parsed()) {
    auto summary = ep::alert::check(opts);
    if (!summary) return finish(summary.status());
    std::cout << *summary << '\n';
    return 0;
  }
  ep::RecordWriter out(1);
  ep::Status st;
  if (retry->parsed()) {
    if (!since.empty()) {
      auto s = ep::parse_duration(since);
      if (!s || *s <= 0) return cli.usage_error("--since: not a duration: " + since);
      opts.since = *s;
    }
    st = ep::alert::retry(opts, out, clock);
  } else {
    st = ep::alert::run(opts, out, clock);
  }
  ep::Status closed = out.close();
  if (!closed && st.code() != ep::Code::kUsage) st = closed;
  return finish(st);
}
