// ep-archive: the immutable raw archive — write (default), replay, verify, ls, prune.
#include <signal.h>
#include <sys/stat.h>

#include "archive_tool.h"
#include "ep/log.h"

namespace {

using ep::archive_tool::Command;

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

// `ep-archive repaly` would otherwise be read as `write` of a file named "repaly".
std::optional<int> check_command(const ep::Cli& cli, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return std::nullopt;
  std::string word = argv[1];
  struct stat st;
  if (::stat(word.c_str(), &st) == 0) return std::nullopt;  // an input file
  for (const auto& c : ep::archive_tool::commands()) {
    if (word == c.name) return std::nullopt;
    if (edit_distance(word, c.name) <= 2)
      return cli.usage_error("unknown command '" + word + "'; did you mean '" + c.name + "'?");
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  ep::Cli cli("ep-archive",
              "Immutable raw archive of batch records (file:// or S3-compatible): write, replay, "
              "verify, get, ls, prune, compact.",
              "Reads: batch records (write: FILE... or stdin). Writes: batch records with \"raw\" "
              "replaced by \"archive\" (write), replayed batch records (replay), NDJSON reports "
              "(verify, ls, prune).",
              "ep-ingest --stdin --tenant demo < log.ndjson | ep-archive --archive "
              "file:///var/lib/edgepulse/archive | ep-load --db postgresql:///edgepulse");
  ep::archive_tool::Options opts;
  std::vector<CLI::App*> subs;
  ep::archive_tool::register_commands(cli, opts, subs);
  if (auto code = check_command(cli, argc, argv)) return *code;
  if (auto code = cli.parse(argc, argv)) return *code;

  const Command* cmd = &ep::archive_tool::commands().front();  // write
  for (size_t i = 0; i < subs.size(); ++i)
    if (subs[i]->parsed()) cmd = &ep::archive_tool::commands()[i];
  std::string name = cmd->name;
  if (opts.archive.empty()) return cli.usage_error("--archive URI is required (file:///path or s3://bucket/prefix)");
  if (name != "write" && !cli.common().inputs.empty())
    return cli.usage_error(name + " reads the archive, not input files (see --expect for verify)");
  if (ep::Status st = ep::archive_tool::resolve(opts, ep::SystemClock::instance(), name == "prune"); !st)
    return cli.usage_error(st.message());

  ep::ArchiveOptions ao;
  ao.s3_endpoint = opts.s3_endpoint;
  ao.s3_region = opts.s3_region;
  ao.create = !cmd->reads_only;
  ao.create_format = opts.format;
  // A new s3:// archive is format 2 only when asked for: it needs a spool (ep-ingest's
  // s3:// archives are format 2 by default).
  if (opts.archive.starts_with("s3://") && !cli.app().get_option("--format")->count()) ao.create_format = 1;
  ao.spool_dir = opts.spool;
  auto archive = ep::Archive::open(opts.archive, ao);
  if (!archive) {
    if (archive.status().code() == ep::Code::kUsage) return cli.usage_error(archive.status().message());
    ep::log::error(archive.status());
    return archive.status().exit_code();
  }

  ep::ignore_sigpipe();
  if (name == "write") {
    // In a pipeline every stage gets SIGTERM at once (systemd stops the whole unit);
    // upstream then drains and closes our stdin. So the first SIGTERM lets write run to
    // the end of its input (everything received is archived and passed on); a second
    // one terminates at once, which is safe too: nothing unarchived was passed on.
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigaction(SIGTERM, &sa, nullptr);
  }
  ep::RecordWriter out(1);
  ep::archive_tool::Io io;
  io.inputs = cli.common().inputs;
  io.out = &out;
  io.progress = cli.common().progress();
  io.strict = cli.common().strict;
  ep::archive_tool::Summary summary;
  ep::Status st = cmd->run(opts, **archive, io, summary);
  ep::Status closed = out.close();
  ep::log::info(cmd->summary(summary));
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
