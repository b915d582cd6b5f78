// ep-features: window records from point/batch records or Postgres datapoints.
// Steps: parse the command line → build the options → open input and output → run →
// print the summary → map the result to an exit code.
#include <string>

#include "cli_options.h"
#include "ep/log.h"
#include "ep/ndjson.h"
#include "ep/signals.h"
#include "pg_io.h"
#include "run.h"

int main(int argc, char** argv) {
  ep::features::CliOptions cli;
  if (auto code = cli.parse(argc, argv)) return *code;
  ep::ignore_sigpipe();
  // SIGTERM/SIGINT: finish the current line, write every open window, exit 0. A read
  // blocked on a live upstream continues until its next line or EOF (under systemd the
  // upstream stage is stopped too and closes the pipe).
  ep::install_stop_signals();

  ep::RecordWriter out(1);
  ep::features::RunSummary summary;
  ep::Status status;
  if (cli.db_mode()) {
    status = ep::features::run_db(cli.options(), cli.db(), out, summary);
  } else {
    ep::LineReader reader(cli.inputs(), cli.max_line_bytes());
    ep::features::StreamOptions stream = cli.stream();
    stream.stop = &ep::stop_requested();
    status = ep::features::run_stream(cli.options(), stream, reader, out, summary);
  }
  ep::Status closed = out.close();
  if (!status.is_ok()) ep::log::error(status);
  if (status.is_ok() || summary.lines > 0)
    ep::log::info("summary: " + ep::features::format_summary(summary));
  if (!status.is_ok()) return status.exit_code();
  if (!closed.is_ok()) {
    ep::log::error(closed);
    return closed.exit_code();
  }
  return summary.rejected > 0 ? ep::exit_code(ep::Code::kData) : 0;
}
