// ep-load: batch/point records on stdin (or files) -> Postgres, idempotently.
#include <signal.h>

#include <atomic>

#include "ep/cli.h"
#include "ep/log.h"
#include "ep/ndjson.h"
#include "follow.h"
#include "load.h"

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) { g_stop.store(true); }

void install_signals() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking read returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

class LogReporter final : public ep::load::Reporter {
 public:
  void reject(std::string_view stream, std::int64_t line, std::string_view reason) override {
    ep::log::reject(stream, line, reason);
  }
};

}  // namespace

int main(int argc, char** argv) {
  ep::Cli cli("ep-load", "Load batch and point records into Postgres with COPY, idempotently.",
              "Reads: batch and point records (NDJSON) from FILEs or stdin. Writes: Postgres "
              "(devices, metrics, ingest_batches, datapoints, rollups_1m/1h/1d, usage_daily); with --emit, the points "
              "it loaded as point records on stdout.",
              "ep-ingest --listen 127.0.0.1:8787 --db | ep-archive --archive file:///var/lib/ep | ep-load --db");
  ep::load::Options o;
  ep::load::FollowOptions fo;
  std::string flush_interval = "1s", max_wait = "60s", poll_interval = "200ms";
  CLI::App& app = cli.app();
  app.add_option("--db", o.db, "Postgres URL; without a value $DATABASE_URL, then the libpq environment")
      ->expected(0, 1)
      ->type_name("[URL]");
  app.add_flag("--emit", o.emit, "Write the points loaded (not those already present) as point records on stdout");
  app.add_option("--batch-size", o.batch_size, "Records (batches or points) per transaction")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-points", o.max_points, "Points per transaction")->check(CLI::PositiveNumber);
  app.add_option("--flush-interval", flush_interval, "Load a partial group after the input is idle this long");
  app.add_option("--max-wait", max_wait, "Give up (exit 69) when Postgres stays unavailable this long");
  app.add_flag("--create-tenants", o.create_tenants, "Create unknown tenants (default plan) instead of rejecting their records");
  app.add_option("--copy-mode", o.copy_mode, "auto: COPY new points straight into datapoints, staging on conflict; "
                 "direct; staging")
      ->check(CLI::IsMember({"auto", "direct", "staging"}));
  bool no_rollups = false;
  app.add_flag("--no-rollups", no_rollups, "Do not keep the 1-minute/hour/day rollups (for bulk loads and "
               "benchmarks; run 'ep-admin rollup rebuild' afterwards)");
  app.add_option("--max-line-bytes", o.max_line_bytes, "Longest accepted input line");
  app.add_option("--follow", fo.archive, "Run as a service that follows the archive's segment log (file:// root of "
                 "format 2) and loads it, its cursor committed with the rows; no input is read")
      ->type_name("ARCHIVE");
  app.add_option("--consumer", fo.consumer, "--follow: the name the cursor is kept under (default ep-load); "
                 "loaders with different names follow the log independently");
  app.add_option("--tenant", fo.tenant, "--follow: only this tenant's segments");
  app.add_option("--poll-interval", poll_interval, "--follow: look for new records this often (default 200ms)");
  app.add_option("--metrics-listen", fo.metrics_listen, "--follow: serve Prometheus metrics (lag) on "
                 "http://HOST:PORT/metrics")
      ->type_name("HOST:PORT");
  cli.add_inputs();
  if (auto code = cli.parse(argc, argv)) return *code;

  auto fi = ep::parse_duration(flush_interval);
  if (!fi || *fi <= 0) return cli.usage_error("--flush-interval: '" + flush_interval + "' is not a positive duration");
  auto mw = ep::parse_duration(max_wait);
  if (!mw || *mw < 0) return cli.usage_error("--max-wait: '" + max_wait + "' is not a duration");
  o.flush_interval = *fi;
  o.max_wait = *mw;
  o.inputs = cli.common().inputs;
  o.strict = cli.common().strict;
  o.progress = cli.common().progress();
  o.rollups = !no_rollups;
  if (!fo.archive.empty()) {
    auto pi = ep::parse_duration(poll_interval);
    if (!pi || *pi <= 0) return cli.usage_error("--poll-interval: '" + poll_interval + "' is not a positive duration");
    fo.poll_interval = *pi;
    if (o.emit) return cli.usage_error("--emit: not with --follow");
    if (!o.inputs.empty()) return cli.usage_error("--follow reads the archive, not FILEs");
    if (fo.consumer.empty()) return cli.usage_error("--consumer: empty name");
    o.max_wait = 36500LL * 86400 * ep::kNsPerSec;  // a service: wait for Postgres as long as it takes
    o.schema_version = ep::load::kFollowSchemaVersion;
    o.strict = false;
  } else if (!fo.tenant.empty() || !fo.metrics_listen.empty()) {
    return cli.usage_error("--tenant and --metrics-listen need --follow");
  }

  ep::ignore_sigpipe();
  install_signals();
  LogReporter reporter;
  ep::RecordWriter out(1);
  ep::load::RunContext ctx;
  ctx.reporter = &reporter;
  ctx.stop = &g_stop;
  ctx.emit = o.emit ? &out : nullptr;
  ctx.notice = [](const std::string& m) { ep::log::warn(m); };
  ep::load::Summary summary;
  ep::Status st = fo.archive.empty() ? ep::load::run(o, ctx, summary) : ep::load::follow(o, fo, ctx, summary);
  ep::Status closed = out.close();
  ep::log::info("summary: " + summary.line());
  if (!st) {
    ep::log::error(st);
    if (st.code() == ep::Code::kUnavailable && summary.records_not_loaded > 0)
      ep::log::warn("nothing was loaded partially; load the rest again (e.g. ep-archive replay | ep-load)");
    return st.exit_code();
  }
  if (!closed && !summary.output_closed) {
    ep::log::error(closed);
    return closed.exit_code();
  }
  if (summary.read.rejected + summary.write.rejected > 0) return 65;
  return 0;
}
