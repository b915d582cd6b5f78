#include "run.h"

#include <vector>

#include "ep/log.h"
#include "ep/progress.h"
#include "input.h"
#include "output.h"

namespace ep::features {
namespace {

// Routes parsed points to the extractor. Consecutive points of one series (a batch,
// a device's burst) skip the series lookup, and so does a fleet's interleaved stream
// in a stable order: the series that followed the previous one last time is tried
// first (three short compares instead of building a key and hashing it).
class ExtractorFeed final : public PointSink {
 public:
  explicit ExtractorFeed(Extractor& x) : x_(x) {}
  void on_point(std::string_view tenant, std::string_view device, std::string_view metric,
                TimeNs ts, double value) override {
    if (!cached_ || !same(x_.id(handle_), tenant, device, metric)) {
      Extractor::SeriesHandle h;
      if (cached_ && handle_ < next_.size() && next_[handle_] != kNone &&
          same(x_.id(next_[handle_]), tenant, device, metric)) {
        h = next_[handle_];
      } else {
        h = x_.series(tenant, device, metric);
        if (cached_) {
          if (next_.size() <= handle_) next_.resize(handle_ + 1, kNone);
          next_[handle_] = h;
        }
      }
      handle_ = h;
      cached_ = true;
    }
    x_.add(handle_, ts, value);
  }

 private:
  static constexpr Extractor::SeriesHandle kNone = ~Extractor::SeriesHandle{0};
  static bool same(const SeriesId& id, std::string_view tenant, std::string_view device,
                   std::string_view metric) {
    return id.device == device && id.metric == metric && id.tenant == tenant;
  }
  Extractor& x_;
  bool cached_ = false;
  Extractor::SeriesHandle handle_ = 0;
  std::vector<Extractor::SeriesHandle> next_;  // next_[h]: the series that followed h last
};

// Forwards windows and watches for a broken output.
class TeeBroken final : public WindowSink {
 public:
  explicit TeeBroken(WindowSink& s, const NdjsonWindowSink* nd) : s_(s), nd_(nd) {}
  void on_window(const WindowOut& w) override { s_.on_window(w); }
  bool broken() const { return nd_ && nd_->broken(); }

 private:
  WindowSink& s_;
  const NdjsonWindowSink* nd_;
};

Status run_impl(const Options& opts, const StreamOptions& so, LineReader& reader, WindowSink& sink,
                const NdjsonWindowSink* nd, RunSummary& summary) {
  TeeBroken out(sink, nd);
  Extractor extractor(opts, out);
  ExtractorFeed feed(extractor);
  RecordParser parser;
  Progress progress = Progress::bytes(so.progress, so.progress ? reader.input_size() : 0, "lines");
  Status result;
  Line line;
  while (reader.next(line)) {
    ++summary.lines;
    if ((summary.lines & 0xffff) == 0) progress.update(reader.bytes_read(), 0, summary.lines);
    Status st;
    if (line.too_long) st = Status::data("line longer than --max-line-bytes");
    else if (line.text.empty()) continue;
    else st = parser.parse(line.text, feed);
    if (!st) {
      ++summary.rejected;
      log::reject(line.stream, line.number, st.message());
      if (so.strict) {
        result = Status::data(std::string(line.stream) + ":" + std::to_string(line.number) + ": " +
                              st.message() + " (--strict)");
        break;
      }
    }
    if (out.broken()) break;
    if (so.stop && so.stop->load(std::memory_order_relaxed)) {
      summary.interrupted = true;
      break;
    }
  }
  if (result.is_ok() && !reader.status().is_ok()) result = reader.status();
  if (!out.broken()) extractor.finish();
  progress.finish();
  summary.stats = extractor.stats();
  summary.broken_pipe = out.broken();
  return result;
}

}  // namespace

Status run_lines(const Options& opts, const StreamOptions& so, LineReader& reader, WindowSink& sink,
                 RunSummary& summary) {
  return run_impl(opts, so, reader, sink, nullptr, summary);
}

Status run_stream(const Options& opts, const StreamOptions& so, LineReader& reader,
                  RecordWriter& out, RunSummary& summary) {
  NdjsonWindowSink sink(out);
  reader.set_before_read([&out] { out.flush(); });
  return run_impl(opts, so, reader, sink, &sink, summary);
}

std::string format_summary(const RunSummary& s) {
  const ExtractorStats& x = s.stats;
  std::string r = std::to_string(s.lines) + (s.from_db ? " rows, " : " lines, ") + std::to_string(x.points) + " points, " +
                  std::to_string(x.windows) + " windows";
  if (x.empty_windows) r += " (" + std::to_string(x.empty_windows) + " empty)";
  r += ", " + std::to_string(x.series) + " series, " + std::to_string(s.rejected) + " rejected, " +
       std::to_string(x.late) + " late";
  if (x.overflow) r += ", " + std::to_string(x.overflow) + " dropped (--max-buffer)";
  if (x.skipped_windows)
    r += ", " + std::to_string(x.skipped_windows) + " empty windows skipped (--max-empty)";
  if (x.partial_windows)
    r += ", " + std::to_string(x.partial_windows) + " windows cut by the range left out (--partial writes them)";
  if (s.interrupted) r += "; stopped by a signal after flushing open windows";
  return r;
}

}  // namespace ep::features
