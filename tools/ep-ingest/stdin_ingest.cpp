#include "stdin_ingest.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <map>

#include "batch.h"
#include "ep/archive.h"
#include "ep/crypto.h"
#include "ep/json.h"
#include "ep/log.h"
#include "ep/ndjson.h"
#include "ep/progress.h"
#include "ep/records.h"

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

// CSV rows of one device, waiting to become a batch.
struct CsvGroup {
  struct Row {
    std::string metric, unit;
    TimeNs ts;
    double value;
  };
  std::string raw;  // the rows' lines, each followed by '\n'
  std::vector<Row> rows;
  TimeNs first_seen = 0;
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

}  // namespace

Status run_stdin(const Options& opts, int in_fd, int out_fd, const Clock& clock, StdinSummary& sum) {
  if (opts.tenant.empty()) return Status::usage("--stdin needs --tenant T");
  if (!valid_tenant(opts.tenant))
    return Status::usage("--tenant " + opts.tenant + ": " + kInvalidTenant);
  if (opts.format != "ndjson" && opts.format != "csv")
    return Status::usage("--format must be ndjson or csv");
  const bool csv = opts.format == "csv";

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
  CsvRow row;
  std::map<std::string, CsvGroup> groups;  // ordered: batches come out in device order
  size_t pending_points = 0;
  std::vector<PayloadPoint> points;
  Status fatal;

  auto emit_group = [&](const std::string& device, CsvGroup& g) -> Status {
    if (g.rows.empty()) return Status::ok();
    points.clear();
    for (const auto& r : g.rows) points.push_back(PayloadPoint{r.metric, r.ts, r.value, r.unit});
    std::string batch_id = crypto::uuid_v7();
    w.clear();
    write_batch(w, BatchMeta{batch_id, opts.tenant, device, "stdin", g.first_seen, {}, {}, false}, points, g.raw);
    sum.batches++;
    sum.points += g.rows.size();
    pending_points -= g.rows.size();
    g.rows.clear();
    g.raw.clear();
    return emitter.add(w, opts.tenant, batch_id, g.first_seen);
  };
  auto emit_all_groups = [&]() -> Status {
    for (auto& [device, g] : groups) EP_RETURN_IF_ERROR(emit_group(device, g));
    groups.clear();  // bounded by the devices of one idle period, not of the whole stream
    return Status::ok();
  };

  // Before a read that may block: if nothing more is waiting, close open CSV batches;
  // then archive and flush everything so downstream sees it now.
  reader->set_before_read([&] {
    if (!fatal.is_ok()) return;
    if (csv && watch_stdin && pending_points > 0) {
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
    } else if (line.text.empty() || (csv && line.text.front() == '#')) {
      sum.lines--;  // blank lines and CSV comments are not records
      continue;
    } else if (csv) {
      if (line.number == 1 && is_csv_header(line.text)) {
        sum.lines--;
        continue;
      }
      TimeNs now = clock.now();
      if (Status s = parse_csv_line(line.text, opts.limits, now, row); !s) {
        rejected(s.message(), line.text);
      } else {
        auto [it, fresh] = groups.try_emplace(std::string(row.device));
        CsvGroup& g = it->second;
        if (g.rows.empty()) g.first_seen = now;
        g.rows.push_back(CsvGroup::Row{std::string(row.metric), std::string(row.unit), row.ts, row.value});
        g.raw.append(line.text).push_back('\n');
        pending_points++;
        if (g.rows.size() >= opts.csv_batch_points) fatal = emit_group(it->first, g);
        if (fatal.is_ok() && pending_points >= opts.csv_pending_points) fatal = emit_all_groups();
      }
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
