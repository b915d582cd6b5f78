#include "cli_options.h"

#include <thread>

#include "ep/http_cli.h"
#include "ep/keys.h"
#include "ep/pg.h"

namespace ep::ingest {

void register_flags(Cli& cli, Options& o, Flags& f) {
  auto& app = cli.app();
  o.server.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const char* kHttp = "HTTP server";
  app.add_option("--listen", o.server.listen, "Listen on HOST:PORT (port 0: any free port)")
      ->type_name("HOST:PORT")->group(kHttp);
  app.add_option("--keys", o.keys_path, "API keys file (ep-admin key issue --keys-file); SIGHUP reloads it")
      ->type_name("FILE")->group(kHttp);
  f.db_option = app.add_option("--db", f.db,
                                "Keys and plans from Postgres instead of --keys (URL, else $DATABASE_URL, else libpq's PG* variables)")
                    ->expected(0, 1)->type_name("[URL]")->group(kHttp);
  app.add_option("--key-refresh", f.key_refresh, "--db: reload keys this often (and on SIGHUP)")
      ->type_name("DUR")->group(kHttp);
  app.add_option("--threads", o.server.threads, "Server threads (default: number of CPUs)")
      ->type_name("N")->check(CLI::Range(1, 256))->group(kHttp);
  http::add_server_flags(app, o.server, f.server, kHttp);
  app.add_option("--body-timeout", f.body_timeout, "Deadline for a request's body after its header")
      ->type_name("DUR")->group(kHttp);
  app.add_option("--idle-timeout", f.idle_timeout, "Keep-alive: close a connection idle this long")
      ->type_name("DUR")->group(kHttp);
  app.add_option("--drain-timeout", f.drain_timeout,
                 "SIGTERM: longest wait for in-flight requests before cutting connections")
      ->type_name("DUR")->group(kHttp);
  app.add_option("--points-per-minute", o.default_points_per_minute,
                 "Quota for tenants whose keys carry no plan quota (0: unlimited)")
      ->type_name("N")->check(CLI::NonNegativeNumber)->group(kHttp);
  app.add_option("--idempotency-window", f.idempotency_window,
                 "How long an Idempotency-Key is remembered")
      ->type_name("DUR")->group(kHttp);
  app.add_option("--idempotency-max-keys", o.idempotency_max_keys, "Idempotency-Keys remembered at most")
      ->type_name("N")->group(kHttp);

  const char* kStdin = "stdin mode";
  app.add_flag("--stdin", o.stdin_mode, "Read payloads from stdin or FILEs instead of HTTP")->group(kStdin);
  app.add_option("--tenant", o.tenant, "Tenant of every stdin payload")->type_name("T")->group(kStdin);
  app.add_option("--format", o.format,
                 "stdin lines: ndjson (one payload a line), csv, influx (line protocol), prom (Prometheus text), "
                 "logfmt or syslog")
      ->check(CLI::IsMember({"ndjson", "csv", "influx", "prom", "logfmt", "syslog"}))->group(kStdin);
  app.add_option("--time-precision", o.time_precision,
                 "Timestamps are epoch integers in this unit (csv, logfmt, syslog: default RFC 3339; influx: default ns)")
      ->check(CLI::IsMember({"s", "ms", "us", "ns"}))->type_name("s|ms|us|ns")->group(kStdin);
  app.add_option("--csv-delimiter", o.csv_delimiter, "CSV: the field delimiter (one character, or tab)")
      ->type_name("C")->group(kStdin);
  app.add_option("--device-key", o.key_values.device_key,
                 "logfmt, syslog: the key naming the device (default: the first --device-label present; syslog: HOSTNAME)")
      ->type_name("KEY")->group(kStdin);
  app.add_option("--metric-key", o.key_values.metric_key,
                 "logfmt, syslog: the key naming the metric, its value in --value-key (default: every numeric key is a metric)")
      ->type_name("KEY")->group(kStdin);
  app.add_option("--value-key", o.key_values.value_key, "logfmt, syslog: with --metric-key, the key of the value")
      ->type_name("KEY")->group(kStdin);
  app.add_option("--unit-key", o.key_values.unit_key, "logfmt, syslog: with --metric-key, the key of the unit")
      ->type_name("KEY")->group(kStdin);
  app.add_option("--time-key", o.key_values.time_key,
                 "logfmt, syslog: the key of the timestamp (default: ts, time or timestamp; syslog: the header's)")
      ->type_name("KEY")->group(kStdin);
  app.add_option("--rejects", o.rejects_path,
                 "Write rejected lines here as {\"line\",\"error\",\"input\"} (default: stderr)")
      ->type_name("FILE")->group(kStdin);
  app.add_option("--csv-batch-points", o.csv_batch_points, "CSV: points per device batch at most")
      ->type_name("N")->check(CLI::Range(1, 1000000))->group(kStdin);
  cli.add_inputs();

  const char* kLimits = "Validation and durability";
  const char* kProtocols = "Protocols (remote write, OTLP, Influx, collectd)";
  app.add_option("--archive", o.archive_uri,
                 "Store each batch durably here before acknowledging it (file:///DIR or s3://BUCKET/PREFIX)")
      ->type_name("URI")->group(kLimits);
  app.add_option("--archive-writers", o.archive_writers,
                 "HTTP: batches synced to the archive concurrently (group commit per writer)")
      ->type_name("N")->check(CLI::Range(1, 1024))->group(kLimits);
  app.add_option("--archive-segment-size", o.archive_options.segment_bytes,
                 "Format 2 archive (file://, or the s3:// spool): seal the active segment of a tenant-day at this many bytes")
      ->type_name("BYTES")->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 40))->group(kLimits);
  app.add_option("--archive-segment-age", f.archive_segment_age,
                 "Format 2 archive (file://, or the s3:// spool): seal the active segment of a tenant-day at this age")
      ->type_name("DUR")->group(kLimits);
  app.add_option("--archive-spool", o.archive_options.spool_dir,
                 std::string("s3:// archive: batches are durable in this local format 2 spool before the 202; "
                             "sealed segments upload from it (default ") + kDefaultSpool + ")")
      ->type_name("DIR")->group(kLimits);
  app.add_option("--archive-spool-budget", o.archive_options.spool_budget,
                 "s3:// archive: bytes the spool may hold (active + not yet uploaded); when full, 503 until uploads free space")
      ->type_name("BYTES")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50))->group(kLimits);
  app.add_option("--s3-multipart-size", o.archive_options.s3_multipart_bytes,
                 "s3:// archive: segments larger than this upload in parts of this size (at least 5 MiB)")
      ->type_name("BYTES")->check(CLI::Range(std::uint64_t{5} << 20, std::uint64_t{5} << 30))->group(kLimits);
  app.add_option("--s3-endpoint", o.archive_options.s3_endpoint, "S3-compatible endpoint URL")
      ->type_name("URL")->group(kLimits);
  app.add_option("--max-body-bytes", o.limits.max_body_bytes, "Largest HTTP body or stdin line")
      ->type_name("N")->check(CLI::Range(size_t{64}, size_t{1} << 30))->group(kLimits);
  app.add_option("--max-points", o.limits.max_points, "Most metrics in one payload")
      ->type_name("N")->check(CLI::Range(size_t{1}, size_t{10000000}))->group(kLimits);
  app.add_option("--max-samples", o.limits.max_samples,
                 "Most samples in one request of another protocol (remote write, OTLP, …)")
      ->type_name("N")->check(CLI::Range(size_t{1}, size_t{100000000}))->group(kLimits);
  app.add_option("--max-decoded-bytes", o.limits.max_decoded_bytes,
                 "Largest body after Content-Encoding (gzip, deflate, zstd, snappy)")
      ->type_name("N")->check(CLI::Range(size_t{64}, size_t{1} << 32))->group(kLimits);
  app.add_option("--max-metric-bytes", o.limits.max_metric_bytes,
                 "Longest metric with its labels, name{k=\"v\",…}")
      ->type_name("N")->check(CLI::Range(size_t{16}, size_t{65536}))->group(kLimits);
  app.add_option("--device-label", o.mapping.device_labels,
                 "Labels that name the device, first present wins (default: device, instance, host, "
                 "host.name, service.instance.id)")
      ->type_name("NAME")->delimiter(',')->group(kProtocols);
  app.add_option("--default-device", o.mapping.default_device,
                 "Device of samples without a device label (default: reject them)")
      ->type_name("NAME")->group(kProtocols);
  app.add_flag("--no-time-bounds", f.no_time_bounds, "Accept any ts (backfill)")->group(kLimits);
  app.add_option("--max-age", f.max_age, "Oldest accepted ts, before now")->type_name("DUR")->group(kLimits);
  app.add_option("--max-skew", f.max_skew, "Newest accepted ts, after now")->type_name("DUR")->group(kLimits);
  app.add_option("--api-key-hash-salt", f.api_key_hash_salt)
      ->envname("")->group("");  // config file only (never type a secret on a command line)
}

namespace {
Status duration(const std::string& flag, const std::string& v, TimeNs& out) {
  auto d = parse_duration(v);
  if (!d || *d <= 0) return Status::usage(flag + " " + v + ": not a positive duration (e.g. 30s, 5m)");
  out = *d;
  return Status::ok();
}
}  // namespace

Status resolve(Cli& cli, const Flags& f, Options& o) {
  EP_RETURN_IF_ERROR(http::resolve_server_flags(f.server, o.server));
  EP_RETURN_IF_ERROR(duration("--body-timeout", f.body_timeout, o.server.body_timeout));
  EP_RETURN_IF_ERROR(duration("--idle-timeout", f.idle_timeout, o.server.idle_timeout));
  EP_RETURN_IF_ERROR(duration("--drain-timeout", f.drain_timeout, o.server.drain_timeout));
  EP_RETURN_IF_ERROR(duration("--idempotency-window", f.idempotency_window, o.idempotency_window));
  EP_RETURN_IF_ERROR(duration("--max-age", f.max_age, o.limits.max_age));
  EP_RETURN_IF_ERROR(duration("--max-skew", f.max_skew, o.limits.max_skew));
  EP_RETURN_IF_ERROR(duration("--key-refresh", f.key_refresh, o.key_refresh));
  EP_RETURN_IF_ERROR(duration("--archive-segment-age", f.archive_segment_age, o.archive_options.segment_age));
  o.limits.time_bounds = !f.no_time_bounds;
  o.server.max_body_bytes = o.limits.max_body_bytes;
  o.server.server_name = "ep-ingest";
  o.inputs = cli.common().inputs;
  o.strict = cli.common().strict;
  o.progress = cli.common().progress();
  if (o.stdin_mode) {
    if (o.tenant.empty()) return Status::usage("--stdin needs --tenant T");
    return Status::ok();
  }
  if (!o.inputs.empty()) return Status::usage("FILE arguments need --stdin");
  // --keys wins over a db = … that the config file may set for every tool.
  o.use_db = o.keys_path.empty() && f.db_option && f.db_option->count() > 0;
  if (o.use_db) o.db_url = pg::resolve_url(f.db);
  if (o.keys_path.empty() && !o.use_db)
    return Status::usage("--keys FILE or --db [URL] is required (or use --stdin)");
  auto pepper = keys::pepper_from_env(f.api_key_hash_salt);
  if (!pepper) return Status::usage(pepper.status().message());
  o.pepper = *pepper;
  return Status::ok();
}

}  // namespace ep::ingest
