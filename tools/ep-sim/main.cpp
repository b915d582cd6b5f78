// ep-sim: a seeded synthetic fleet with labelled anomalies, as ingest payload lines.
#include "ep/cli.h"
#include "ep/log.h"
#include "run.h"

int main(int argc, char** argv) {
  ep::Cli cli("ep-sim",
              "Simulated fleet: seeded telemetry with injected spike, drop, drift, stuck and "
              "missingness anomalies, and their truth records.",
              "Reads: arguments. Writes: ingest payload lines (docs/architecture.md §4) on stdout, or POSTs "
              "them to --url; truth records to --truth FILE.",
              "ep-sim --devices 10 --duration 1d --seed 7 --truth truth.ndjson | ep-ingest --stdin "
              "--tenant demo | ep-archive --archive file:///tmp/arch | ep-features | ep-score");
  ep::sim::RunOptions ro;
  auto& o = ro.sim;
  std::string duration = "1d", interval = "60s", start, max_warmup = "1d";
  CLI::App& app = cli.app();
  const char* kFleet = "Fleet";
  app.add_option("--devices", o.devices, "Number of devices")->group(kFleet);
  app.add_option("--metrics", o.metrics,
                 "Metrics per device, NAME[:INTERVAL],... (profiles: temp, temperature, humidity, "
                 "voltage, current, power, pressure, cpu, rpm; other names get a derived shape)")
      ->group(kFleet);
  app.add_option("--duration", duration, "Simulated time span (300s, 5m, 24h, 7d)")->group(kFleet);
  app.add_option("--interval", interval, "Base sampling interval; profiles may sample slower")
      ->group(kFleet);
  app.add_option("--seed", o.seed, "Random seed: the same seed and options give byte-identical output")
      ->group(kFleet);
  app.add_option("--start", start,
                 "First timestamp (RFC 3339 or date; default: --duration before now, rounded up to the minute)")
      ->group(kFleet);
  app.add_option("--device-prefix", o.device_prefix, "Device names are PREFIX001, PREFIX002, ...")
      ->group(kFleet);
  const char* kAnom = "Anomalies";
  app.add_option("--truth", ro.truth_path, "Write truth records (docs/architecture.md §3) of every anomaly to FILE")
      ->group(kAnom);
  app.add_option("--tenant", o.tenant, "Tenant named in the truth records")->group(kAnom);
  app.add_option("--anomaly-rate", o.anomaly_rate, "Anomalies per series per day (0 = clean data)")
      ->group(kAnom);
  app.add_option("--max-warmup", max_warmup,
                 "Anomaly-free head of the run: a quarter of --duration, at most this")
      ->group(kAnom);
  const char* kPost = "Send to ep-ingest";
  app.add_option("--url", ro.post.url, "POST each payload to this ep-ingest (http://HOST:PORT)")
      ->group(kPost);
  app.add_option("--key", ro.post.key, "API key for --url")->envname("EDGEPULSE_API_KEY")->group(kPost);
  app.add_option("--rate", ro.post.rate, "Payloads per second for --url (0 = as fast as accepted)")
      ->group(kPost);
  if (auto code = cli.parse(argc, argv)) return *code;

  auto dur = ep::parse_duration(duration);
  auto ivl = ep::parse_duration(interval);
  auto warm = ep::parse_duration(max_warmup);
  if (!dur) return cli.usage_error("--duration " + duration + ": expected a duration (24h, 7d)");
  if (!ivl) return cli.usage_error("--interval " + interval + ": expected a duration (60s)");
  if (!warm) return cli.usage_error("--max-warmup " + max_warmup + ": expected a duration");
  o.duration = *dur;
  o.interval = *ivl;
  o.max_warmup = *warm;
  if (!start.empty()) {
    ep::ParseTimeOptions po;
    po.assume_utc = true;
    po.allow_date_only = true;
    auto t = ep::parse_rfc3339(start, po);
    if (!t) return cli.usage_error("--start " + start + ": expected an RFC 3339 time or a date");
    o.start = *t;
  } else {
    o.start = ep::sim::default_start(ep::now_ns(), o.duration);
  }
  ro.progress = cli.common().progress() && !ro.post.url.empty();
  ro.strict = cli.common().strict;

  ep::ignore_sigpipe();
  ep::RecordWriter out(1, 1 << 20);
  ep::sim::RunSummary summary;
  ep::Status st = ep::sim::run(ro, out, summary);
  ep::Status closed = out.close();
  if (st.code() == ep::Code::kUsage) return cli.usage_error(st.message());
  ep::log::info(summary.text());
  if (!st) {
    ep::log::error(st);
    return st.exit_code();
  }
  if (!closed) {
    ep::log::error(closed);
    return closed.exit_code();
  }
  return 0;
}
