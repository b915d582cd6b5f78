#include "stdin_ingest.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "batch.h"
#include "ep/archive.h"
#include "ep/crypto.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/ndjson.h"
#include "ep/progress.h"
#include "ep/records.h"
#include "samples.h"
#include "text_formats.h"

namespace ep::ingest {

namespace {

// Batches waiting to be archived (when --archive) and written. Flushed before every
// read that may block, so nothing sits in memory while the input is quiet.
class Emitter {
 public:
  Emitter(Archive* archive, RecordWriter& out) : archive_(archive), out_(out) {}

  // Takes a finished batch line. Returns false when the output is gone or broken.
  Status add(std::string_view line, const std::string& tenant, const std::string& batch_id,
             TimeNs received_at) {
    if (!archive_) {
      if (!out_.write(line)) return output_error();
      return Status::ok();
    }
    lines_.emplace_back(line);
    puts_.push_back(ArchivePut{tenant, batch_id, received_at, {}});
    pending_bytes_ += line.size();
    if (lines_.size() >= 256 || pending_bytes_ >= (8u << 20)) return commit();
    return Status::ok();
  }

  // Archives what is pending (one put_many), then writes it and flushes stdout.
  Status commit() {
    if (archive_ && !lines_.empty()) {
      for (size_t i = 0; i < lines_.size(); ++i) puts_[i].bytes = lines_[i];
      std::vector<Result<std::string>> res;
      EP_RETURN_IF_ERROR(archive_->put_many(puts_, res).with_context("archive"));
      for (size_t i = 0; i < lines_.size(); ++i) {
        if (i >= res.size()) return Status::software("archive: no result for a batch");
        if (!res[i]) return res[i].status().with_context("archive: batch " + puts_[i].batch_id);
        if (!out_.write(lines_[i])) return output_error();
      }
      lines_.clear();
      puts_.clear();
      pending_bytes_ = 0;
    }
    if (!out_.flush()) return output_error();
    return Status::ok();
  }

  bool broken_pipe() const { return out_.broken_pipe(); }

 private:
  Status output_error() {
    if (out_.broken_pipe()) return Status::io("stdout: broken pipe");
    return Status::io("stdout: write failed");
  }

  Archive* archive_;
  RecordWriter& out_;
  std::vector<std::string> lines_;
  std::vector<ArchivePut> puts_;
  size_t pending_bytes_ = 0;
};

// Where rejected lines go: --rejects FILE as NDJSON, else stderr diagnostics.
class Rejects {
 public:
  static Result<std::unique_ptr<Rejects>> open(const std::string& path) {
    auto r = std::make_unique<Rejects>();
    if (!path.empty()) {
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return Status::io("--rejects " + path + ": " + std::strerror(errno));
      r->fd_ = fd;
      r->writer_ = std::make_unique<RecordWriter>(fd);
    }
    return r;
  }
  ~Rejects() {
    if (fd_ >= 0) ::close(fd_);
  }
  void add(const Line& line, std::string_view error, std::string_view input) {
    if (!writer_) {
      log::reject(line.stream, line.number, error);
      return;
    }
    JsonWriter w;
    w.start_object();
    w.kv("line", static_cast<std::int64_t>(line.number));
    w.kv("error", error);
    w.kv("input", input);
    if (line.stream != "stdin") w.kv("stream", line.stream);
    w.end_object();
    writer_->write(w.view());
  }
  Status close() {
    if (!writer_) return Status::ok();
    return writer_->close().with_context("--rejects");
  }

 private:
  int fd_ = -1;
  std::unique_ptr<RecordWriter> writer_;
};

// Input lines may contain invalid UTF-8 (CSV) or anything; the reject record's "input"
// must stay valid JSON, so invalid bytes become U+FFFD.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xC2);
    for (int k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xC0) == 0x80;
    if (ok && len == 3) {
      unsigned cp = ((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6);
      ok = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok && len == 4) {
      unsigned cp = ((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12);
      ok = cp >= 0x10000 && cp <= 0x10FFFF;
    }
    if (!ok) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(s.data() + i, static_cast<size_t>(len));
    i += static_cast<size_t>(len);
  }
  return out;
}

// The line parser of a sample format (all but ndjson).
struct LineParser {
  enum Kind { kCsv, kInflux, kProm, kLogfmt, kSyslog } kind;
  TimeUnit time_unit = 0;  // --time-precision (influx: ns when not given)
  KeyValueOptions kv;
  CsvLayout csv;

  Status parse(const Line& line, SampleSink& sink) {
    switch (kind) {
      case kCsv:
        if (line.number == 1) {
          auto header = read_csv_header(line.text, csv.delimiter, csv);
          if (!header) return header.status();
          if (*header) return Status::ok();
        }
        return parse_csv_record(line.text, csv, time_unit, sink);
      case kInflux: return parse_influx_line(line.text, time_unit, sink);
      case kProm: return parse_prom_line(line.text, sink);
      case kLogfmt: return parse_logfmt_line(line.text, kv, sink);
      case kSyslog: return parse_syslog_line(line.text, kv, sink);
    }
    return Status::software("unknown format");
  }
};

Result<LineParser> line_parser(const Options& opts) {
  LineParser p;
  static const std::pair<const char*, LineParser::Kind> kKinds[] = {
      {"csv", LineParser::kCsv},       {"influx", LineParser::kInflux}, {"prom", LineParser::kProm},
      {"logfmt", LineParser::kLogfmt}, {"syslog", LineParser::kSyslog}};
  bool found = false;
  for (const auto& [name, kind] : kKinds)
    if (opts.format == name) p.kind = kind, found = true;
  if (!found) return Status::usage("--format must be ndjson, csv, influx, prom, logfmt or syslog");
  if (!opts.time_precision.empty()) {
    p.time_unit = parse_epoch_unit(opts.time_precision).value_or(0);
    if (p.time_unit == 0) return Status::usage("--time-precision " + opts.time_precision + ": not s, ms, us or ns");
  } else if (p.kind == LineParser::kInflux) {
    p.time_unit = 1;
  }
  p.kv = opts.key_values;
  p.kv.time_unit = p.time_unit;
  std::string_view d = opts.csv_delimiter;
  if (d == "tab" || d == "\\t") d = "\t";
  if (d.size() != 1 || d == "\"" || d == "\n" || d == "\r")
    return Status::usage("--csv-delimiter " + opts.csv_delimiter + ": one character (or tab) other than a quote or newline");
  p.csv.delimiter = d[0];
  return p;
}

// One --stdin run: the input, the sink grouping sample lines per device, and where
// batches go (archive, stdout) and rejected lines go.
class StdinRun {
 public:
  StdinRun(const Options& opts, int in_fd, int out_fd, const Clock& clock, StdinSummary& sum)
      : opts_(opts), clock_(clock), sum_(sum), in_fd_(in_fd), out_(out_fd), progress_(opts.progress, "lines"),
        sink_(opts.mapping, opts.limits), ndjson_(opts.format == "ndjson") {}

  Status open();
  Status run();

 private:
  // A device's points waiting to become a batch: the lines they came from.
  struct Pending {
    std::string raw;  // the lines that gave the group's points, each followed by '\n'
    TimeNs first_seen = 0;
  };

  void handle(const Line& line);
  void sample_line(const Line& line);
  void payload_line(const Line& line);
  void reject(const Line& line, std::string_view error, std::string_view input);
  void before_read();
  Status emit_group(size_t gi);
  Status emit_all_groups();
  Status finish();

  const Options& opts_;
  const Clock& clock_;
  StdinSummary& sum_;
  int in_fd_;
  RecordWriter out_;
  Progress progress_;
  SampleSink sink_;
  const bool ndjson_;
  LineParser parser_{};
  std::unique_ptr<Archive> archive_;
  std::unique_ptr<Emitter> emitter_;
  std::unique_ptr<Rejects> rejects_;
  std::unique_ptr<LineReader> reader_;
  bool watch_stdin_ = false;  // stdin is among the inputs: idle periods close batches
  std::string w_;             // one batch record at a time
  Payload payload_;
  std::vector<Pending> pending_;  // by group index
  size_t pending_points_ = 0;
  Status fatal_;
  bool strict_stop_ = false;
};

Status StdinRun::open() {
  if (opts_.tenant.empty()) return Status::usage("--stdin needs --tenant T");
  if (!valid_tenant(opts_.tenant)) return Status::usage("--tenant " + opts_.tenant + ": " + kInvalidTenant);
  if (!ndjson_) {
    auto p = line_parser(opts_);
    if (!p) return p.status();
    parser_ = *p;
  }
  if (!opts_.archive_uri.empty()) {
    auto a = Archive::open(opts_.archive_uri, opts_.archive_options);
    if (!a) return a.status().with_context("--archive " + opts_.archive_uri);
    archive_ = std::move(a).value();
  }
  auto rejects = Rejects::open(opts_.rejects_path);
  if (!rejects) return rejects.status();
  rejects_ = std::move(rejects).value();
  emitter_ = std::make_unique<Emitter>(archive_.get(), out_);
  bool from_stdin = opts_.inputs.empty() || (opts_.inputs.size() == 1 && opts_.inputs[0] == "-");
  reader_ = from_stdin ? std::make_unique<LineReader>(in_fd_, "stdin", opts_.limits.max_body_bytes)
                       : std::make_unique<LineReader>(opts_.inputs, opts_.limits.max_body_bytes);
  watch_stdin_ = from_stdin || std::find(opts_.inputs.begin(), opts_.inputs.end(), "-") != opts_.inputs.end();
  if (!from_stdin) in_fd_ = 0;  // "-" among files reads fd 0
  sink_.reset(clock_.now());
  reader_->set_before_read([this] { before_read(); });
  return Status::ok();
}

Status StdinRun::run() {
  Line line;
  while (fatal_.is_ok() && reader_->next(line)) {
    sum_.lines++;
    progress_.update(sum_.lines);
    handle(line);
    if (strict_stop_) break;
  }
  progress_.finish();
  return finish();
}

void StdinRun::handle(const Line& line) {
  if (line.too_long) {
    reject(line, "line: longer than " + std::to_string(opts_.limits.max_body_bytes) + " bytes", "");
  } else if (line.text.empty() || (!ndjson_ && parser_.kind == LineParser::kCsv && line.text.front() == '#')) {
    sum_.lines--;  // blank lines and CSV comments are not records
  } else if (ndjson_) {
    payload_line(line);
  } else {
    sample_line(line);
  }
}

// A line of a sample format: its points join their devices' pending batches, which are
// emitted when full (--csv-batch-points) or when too much is pending (--csv-pending-points).
void StdinRun::sample_line(const Line& line) {
  TimeNs now = clock_.now();
  sink_.set_now(now);
  sink_.clear_rejects();
  size_t before = sink_.accepted();
  Status s = parser_.parse(line, sink_);
  const auto& touched = sink_.take_touched();
  if (!s) {
    reject(line, s.message(), line.text);
  } else if (sink_.accepted() == before && sink_.rejected() == 0) {
    sum_.lines--;  // a header, comment or blank line
  }
  for (size_t gi : touched) {
    if (pending_.size() <= gi) pending_.resize(gi + 1);
    Pending& pg = pending_[gi];
    if (pg.first_seen == 0) pg.first_seen = now;
    pg.raw.append(line.text).push_back('\n');
  }
  pending_points_ += sink_.accepted() - before;
  if (s && sink_.rejected() > 0) {
    std::string reasons;
    for (const auto& r : sink_.reasons()) reasons += (reasons.empty() ? "" : "; ") + r;
    reject(line, reasons, line.text);
  }
  for (size_t gi : touched)
    if (fatal_.is_ok() && sink_.groups()[gi].points.size() >= opts_.csv_batch_points) fatal_ = emit_group(gi);
  if (fatal_.is_ok() && sink_.accepted() >= opts_.csv_pending_points) fatal_ = emit_all_groups();
}

// An NDJSON line: one payload, one batch.
void StdinRun::payload_line(const Line& line) {
  TimeNs now = clock_.now();
  if (Status s = parse_payload(line.text, opts_.limits, now, payload_); !s) return reject(line, s.message(), line.text);
  std::string batch_id = crypto::uuid_v7();
  w_.clear();
  write_batch(w_, BatchMeta{batch_id, opts_.tenant, payload_.device, "stdin", now, {}, {}, false}, payload_.points,
              line.text);
  sum_.batches++;
  sum_.points += payload_.points.size();
  fatal_ = emitter_->add(w_, opts_.tenant, batch_id, now);
}

void StdinRun::reject(const Line& line, std::string_view error, std::string_view input) {
  sum_.rejected++;
  rejects_->add(line, error, printable(input));
  if (opts_.strict) strict_stop_ = true;
}

// Before a read that may block: if nothing more is waiting, close open batches; then
// archive and flush everything so downstream sees it now.
void StdinRun::before_read() {
  if (!fatal_.is_ok()) return;
  if (!ndjson_ && watch_stdin_ && pending_points_ > 0) {
    pollfd p{in_fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) fatal_ = emit_all_groups();
  }
  if (fatal_.is_ok()) fatal_ = emitter_->commit();
}

Status StdinRun::emit_group(size_t gi) {
  const SampleSink::Group& g = sink_.groups()[gi];
  if (g.points.empty()) return Status::ok();
  Pending& pg = pending_[gi];
  std::string batch_id = crypto::uuid_v7();
  w_.clear();
  write_batch(w_, BatchMeta{batch_id, opts_.tenant, g.device, "stdin", pg.first_seen, {}, {}, false}, g.points,
              pg.raw);
  sum_.batches++;
  sum_.points += g.points.size();
  pending_points_ -= g.points.size();
  TimeNs at = pg.first_seen;
  sink_.clear_group(gi);
  pg.raw.clear();
  pg.first_seen = 0;
  return emitter_->add(w_, opts_.tenant, batch_id, at);
}

Status StdinRun::emit_all_groups() {
  for (size_t gi = 0; gi < sink_.groups().size(); ++gi) EP_RETURN_IF_ERROR(emit_group(gi));
  sink_.reset(clock_.now());  // bounded by the devices and metrics of one idle period
  pending_.clear();
  return Status::ok();
}

// The end of the input (or of --strict): what is pending goes out, then the outcome.
Status StdinRun::finish() {
  Status fatal = fatal_;
  if (fatal.is_ok() && !strict_stop_ && !reader_->status().is_ok()) fatal = reader_->status();
  if (fatal.is_ok() || !emitter_->broken_pipe()) {
    if (Status s = emit_all_groups(); fatal.is_ok()) fatal = s;
    if (Status s = emitter_->commit(); fatal.is_ok()) fatal = s;
  }
  // s3:// format 2: what the spool holds goes up before the run ends (kept there, and
  // uploaded by the next run, when the store is down).
  if (archive_ && fatal.is_ok())
    if (Status s = archive_->flush(); !s) fatal = s.with_context("archive upload (the batches are in the spool)");
  Status closed = out_.close();
  Status rclosed = rejects_->close();
  if (emitter_->broken_pipe() || out_.broken_pipe()) return Status::ok();  // downstream is gone: end quietly
  if (!fatal.is_ok()) return fatal;
  if (!closed.is_ok()) return closed;
  if (!rclosed.is_ok()) return rclosed;
  if (strict_stop_) return Status::data("stopped at the first rejected line (--strict)");
  if (sum_.rejected > 0)
    return Status::data(std::to_string(sum_.rejected) + " of " + std::to_string(sum_.lines) + " lines rejected");
  return Status::ok();
}

}  // namespace

Status run_stdin(const Options& opts, int in_fd, int out_fd, const Clock& clock, StdinSummary& sum) {
  StdinRun run(opts, in_fd, out_fd, clock, sum);
  EP_RETURN_IF_ERROR(run.open());
  return run.run();
}

}  // namespace ep::ingest
