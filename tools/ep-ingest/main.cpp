// ep-ingest: authenticate, validate, limit and stamp telemetry; emit batch records.
#include "cli_options.h"
#include "ep/log.h"
#include "ep/ndjson.h"
#include "http_ingest.h"
#include "stdin_ingest.h"

int main(int argc, char** argv) {
  ep::ignore_sigpipe();
  ep::Cli cli("ep-ingest", "Receive telemetry over HTTP (or stdin) and emit batch records.",
              "Reads ingest payloads from HTTP POST /v1/ingest (X-API-Key), or one payload per\n"
              "line (or CSV) with --stdin; writes batch records (NDJSON) to stdout. With --archive,\n"
              "each batch is durable before it is acknowledged and emitted.",
              "ep-ingest --listen 127.0.0.1:8787 --keys keys.ndjson --archive file:///var/lib/edgepulse/archive | ep-load --db\n"
              "  ep-sim --devices 10 --duration 1d | ep-ingest --stdin --tenant demo | ep-archive --archive file:///tmp/a");
  ep::ingest::Options opts;
  ep::ingest::Flags flags;
  ep::ingest::register_flags(cli, opts, flags);
  if (auto rc = cli.parse(argc, argv)) return *rc;
  if (ep::Status s = ep::ingest::resolve(cli, flags, opts); !s) return cli.usage_error(s.message());

  ep::Status result;
  if (opts.stdin_mode) {
    ep::ingest::StdinSummary sum;
    result = ep::ingest::run_stdin(opts, 0, 1, ep::SystemClock::instance(), sum);
    ep::log::info("stdin: " + std::to_string(sum.lines) + " lines, " + std::to_string(sum.batches) +
                  " batches, " + std::to_string(sum.points) + " points, " +
                  std::to_string(sum.rejected) + " rejected");
  } else {
    result = ep::ingest::run_http(opts, 1);
  }
  if (!result.is_ok()) {
    if (result.code() == ep::Code::kUsage) return cli.usage_error(result.message());
    ep::log::error(result);
  }
  return result.exit_code();
}
