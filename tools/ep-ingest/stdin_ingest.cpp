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

}  // namespace

Status run_stdin(const Options& opts, int in_fd, int out_fd, const Clock& clock, StdinSummary& sum) {
  if (opts.tenant.empty()) return Status::usage("--stdin needs --tenant T");
  if (!valid_tenant(opts.tenant))
    return Status::usage("--tenant " + opts.tenant + ": " + kInvalidTenant);
  const bool ndjson = opts.format == "ndjson";
  LineParser parser{};
  if (!ndjson) {
    auto p = line_parser(opts);
    if (!p) return p.status();
    parser = *p;
  }

  std::unique_ptr<Archive> archive;
  if (!opts.archive_uri.empty()) {
    auto a = Archive::open(opts.archive_uri, opts.archive_options);
    if (!a) return a.status().with_context("--archive " + opts.archive_uri);
    archive = std::move(a).value();
  }
  auto rejects_r = Rejects::open(opts.rejects_path);
  if (!rejects_r) return rejects_r.status();
  Rejects& rejects = **rejects_r;

  bool from_stdin = opts.inputs.empty() || (opts.inputs.size() == 1 && opts.inputs[0] == "-");
  std::unique_ptr<LineReader> reader =
      from_stdin ? std::make_unique<LineReader>(in_fd, "stdin", opts.limits.max_body_bytes)
                 : std::make_unique<LineReader>(opts.inputs, opts.limits.max_body_bytes);
  bool watch_stdin = from_stdin || std::find(opts.inputs.begin(), opts.inputs.end(), "-") != opts.inputs.end();
  int idle_fd = from_stdin ? in_fd : 0;

  RecordWriter out(out_fd);
  Emitter emitter(archive.get(), out);
  Progress progress(opts.progress, "lines");
  std::string w;  // one batch record at a time
  Payload payload;
  // Sample formats: one sink for the stream, grouped per device; a device's points become
  // a batch when it has --csv-batch-points, when the input goes idle and at the end.
  SampleSink sink(opts.mapping, opts.limits);
  sink.reset(clock.now());
  struct Pending {
    std::string raw;  // the lines that gave the group's points, each followed by '\n'
    TimeNs first_seen = 0;
  };
  std::vector<Pending> pending;  // by group index
  size_t pending_points = 0;
  Status fatal;

  auto emit_group = [&](size_t gi) -> Status {
    const SampleSink::Group& g = sink.groups()[gi];
    if (g.points.empty()) return Status::ok();
    Pending& pg = pending[gi];
    std::string batch_id = crypto::uuid_v7();
    w.clear();
    write_batch(w, BatchMeta{batch_id, opts.tenant, g.device, "stdin", pg.first_seen, {}, {}, false},
                g.points, pg.raw);
    sum.batches++;
    sum.points += g.points.size();
    pending_points -= g.points.size();
    TimeNs at = pg.first_seen;
    sink.clear_group(gi);
    pg.raw.clear();
    pg.first_seen = 0;
    return emitter.add(w, opts.tenant, batch_id, at);
  };
  auto emit_all_groups = [&]() -> Status {
    for (size_t gi = 0; gi < sink.groups().size(); ++gi) EP_RETURN_IF_ERROR(emit_group(gi));
    sink.reset(clock.now());  // bounded by the devices and metrics of one idle period
    pending.clear();
    return Status::ok();
  };

  // Before a read that may block: if nothing more is waiting, close open batches; then
  // archive and flush everything so downstream sees it now.
  reader->set_before_read([&] {
    if (!fatal.is_ok()) return;
    if (!ndjson && watch_stdin && pending_points > 0) {
      pollfd p{idle_fd, POLLIN, 0};
      if (::poll(&p, 1, 0) == 0) fatal = emit_all_groups();
    }
    if (fatal.is_ok()) fatal = emitter.commit();
  });

  Line line;
  bool strict_stop = false;
  while (fatal.is_ok() && reader->next(line)) {
    sum.lines++;
    progress.update(sum.lines);
    auto rejected = [&](std::string_view error, std::string_view input) {
      sum.rejected++;
      rejects.add(line, error, printable(input));
      if (opts.strict) strict_stop = true;
    };
    if (line.too_long) {
      rejected("line: longer than " + std::to_string(opts.limits.max_body_bytes) + " bytes", "");
    } else if (line.text.empty() || (parser.kind == LineParser::kCsv && !ndjson && line.text.front() == '#')) {
      sum.lines--;  // blank lines and CSV comments are not records
      continue;
    } else if (!ndjson) {
      TimeNs now = clock.now();
      sink.set_now(now);
      sink.clear_rejects();
      size_t before = sink.accepted();
      Status s = parser.parse(line, sink);
      const auto& touched = sink.take_touched();
      if (!s) {
        rejected(s.message(), line.text);
      } else if (sink.accepted() == before && sink.rejected() == 0) {
        sum.lines--;  // a header, comment or blank line
      }
      for (size_t gi : touched) {
        if (pending.size() <= gi) pending.resize(gi + 1);
        Pending& pg = pending[gi];
        if (pg.first_seen == 0) pg.first_seen = now;
        pg.raw.append(line.text).push_back('\n');
      }
      pending_points += sink.accepted() - before;
      if (s && sink.rejected() > 0) {
        std::string reasons;
        for (const auto& r : sink.reasons()) reasons += (reasons.empty() ? "" : "; ") + r;
        rejected(reasons, line.text);
      }
      for (size_t gi : touched)
        if (fatal.is_ok() && sink.groups()[gi].points.size() >= opts.csv_batch_points) fatal = emit_group(gi);
      if (fatal.is_ok() && sink.accepted() >= opts.csv_pending_points) fatal = emit_all_groups();
    } else {
      TimeNs now = clock.now();
      if (Status s = parse_payload(line.text, opts.limits, now, payload); !s) {
        rejected(s.message(), line.text);
      } else {
        std::string batch_id = crypto::uuid_v7();
        w.clear();
        write_batch(w, BatchMeta{batch_id, opts.tenant, payload.device, "stdin", now, {}, {}, false}, payload.points,
                    line.text);
        sum.batches++;
        sum.points += payload.points.size();
        fatal = emitter.add(w, opts.tenant, batch_id, now);
      }
    }
    if (strict_stop) break;
  }
  progress.finish();
  if (fatal.is_ok() && !strict_stop && !reader->status().is_ok()) fatal = reader->status();
  if (fatal.is_ok() || !emitter.broken_pipe()) {
    if (Status s = emit_all_groups(); fatal.is_ok()) fatal = s;
    if (Status s = emitter.commit(); fatal.is_ok()) fatal = s;
  }
  // s3:// format 2: what the spool holds goes up before the run ends (kept there, and
  // uploaded by the next run, when the store is down).
  if (archive && fatal.is_ok())
    if (Status s = archive->flush(); !s) fatal = s.with_context("archive upload (the batches are in the spool)");
  Status closed = out.close();
  Status rclosed = rejects.close();
  if (emitter.broken_pipe() || out.broken_pipe()) return Status::ok();  // downstream is gone: end quietly
  if (!fatal.is_ok()) return fatal;
  if (!closed.is_ok()) return closed;
  if (!rclosed.is_ok()) return rclosed;
  if (strict_stop) return Status::data("stopped at the first rejected line (--strict)");
  if (sum.rejected > 0)
    return Status::data(std::to_string(sum.rejected) + " of " + std::to_string(sum.lines) +
                        " lines rejected");
  return Status::ok();
}

}  // namespace ep::ingest
