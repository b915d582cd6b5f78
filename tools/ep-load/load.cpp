#include "load.h"

#include <fcntl.h>
#include <unistd.h>

#include <thread>

#include "ep/progress.h"
#include "ep/records.h"

namespace ep::load {

std::string Summary::line() const {
  std::string s = "read " + std::to_string(read.records) + " records (" + std::to_string(read.batches) +
                  " batches, " + std::to_string(read.points) + " points); loaded " +
                  std::to_string(write.batches_loaded) + " batches and " + std::to_string(write.points_inserted) +
                  " points in " + std::to_string(write.transactions) + " transactions; skipped " +
                  std::to_string(write.batches_skipped) + " batches already loaded and " +
                  std::to_string(write.points_skipped) + " points already present; rejected " +
                  std::to_string(read.rejected + write.rejected);
  if (write.retries) s += "; " + std::to_string(write.retries) + " retries";
  if (write.in_doubt) s += "; " + std::to_string(write.in_doubt) + " in-doubt commits resolved";
  if (records_not_loaded) s += "; " + std::to_string(records_not_loaded) + " records NOT loaded";
  return s;
}

namespace {

void emit_points(const Group& g, RecordWriter& out) {
  Point p;
  for (const auto& ip : g.points) {
    if (!ip.inserted) continue;
    const Entry& e = g.entries[ip.entry];
    p.tenant = e.tenant;
    p.device = e.device;
    p.metric = ip.metric;
    p.ts = ip.ts;
    p.value = ip.value;
    p.unit = ip.unit;
    p.batch_id = e.batch_id;
    if (!out.write(to_ndjson(p))) return;
  }
  out.flush();
}

}  // namespace

Status run(const Options& o, RunContext& ctx, Summary& summary) {
  Writer writer(o, *ctx.reporter);
  writer.notice = ctx.notice;
  writer.fault = ctx.fault;
  EP_RETURN_IF_ERROR(writer.open());

  LineReader reader(o.inputs, o.max_line_bytes);
  GroupQueue queue(2);
  std::atomic<bool>& stop = *ctx.stop;
  Status read_status;
  std::thread reader_thread([&] {
    read_status = read_groups(o, reader, queue, *ctx.reporter, stop, summary.read);
  });

  Progress progress(o.progress, "points");
  Status result;
  Group g;
  while (queue.pop(g)) {
    Status s = writer.write(g);
    if (!s) {
      result = s;
      summary.records_not_loaded += g.entries.size();
      break;
    }
    if (ctx.emit && !summary.output_closed) {
      emit_points(g, *ctx.emit);
      if (ctx.emit->broken_pipe()) {
        summary.output_closed = true;
        stop = true;  // nobody reads the points any more: end cleanly
      }
    }
    const auto& ws = writer.stats();
    progress.update(ws.points_inserted + ws.points_skipped);
  }
  if (!result.is_ok()) {
    // Stop the reader: it may be waiting to push a group or polling stdin.
    stop = true;
    queue.close();
  }
  reader_thread.join();
  progress.finish();
  summary.write = writer.stats();
  if (!result.is_ok()) return result;
  return read_status;
}

}  // namespace ep::load
