#include "run.h"

#include "ep/fsutil.h"
#include "ep/log.h"
#include "ep/progress.h"

namespace ep::sim {

std::string RunSummary::text() const {
  std::string s = std::to_string(stats.payloads) + " payloads, " + std::to_string(stats.points) +
                  " points, " + std::to_string(anomalies) + " anomalies (";
  for (int l = 0; l < kLabelCount; ++l) {
    if (l) s += ", ";
    s += label_name(static_cast<Label>(l));
    s += " " + std::to_string(per_label[l]);
  }
  s += ")";
  if (rejected) s += ", " + std::to_string(rejected) + " payloads rejected by the server";
  return s;
}

Status run(const RunOptions& o, RecordWriter& out, RunSummary& summary) {
  auto fleet = Fleet::make(o.sim);
  if (!fleet) return fleet.status();
  for (const auto& a : fleet->anomalies()) {
    summary.anomalies++;
    summary.per_label[static_cast<int>(a.label)]++;
  }
  if (!o.truth_path.empty()) {
    std::string truth;
    for (const auto& a : fleet->anomalies()) {
      truth += fleet->truth_line(a);
      truth += '\n';
    }
    EP_RETURN_IF_ERROR(fs::write_file_atomic(o.truth_path, truth).with_context("--truth"));
  }

  Progress progress(o.progress, "payloads");
  Status fatal;
  std::unique_ptr<Poster> poster;
  if (!o.post.url.empty()) {
    auto p = Poster::make(o.post);
    if (!p) return p.status();
    poster = std::move(p).value();
  }
  std::uint64_t n = 0;
  auto sink = [&](std::string_view line) {
    if ((++n & 1023) == 0 || poster) progress.update(n);
    if (!poster) return out.write(line);  // false on a broken pipe: stop quietly
    Status st = poster->send(line);
    if (st) return true;
    if (st.code() == Code::kData && !o.strict) {
      summary.rejected++;
      log::emit(log::Level::kError, "payload " + std::to_string(n), st.message(), -1, Code::kData);
      return true;
    }
    fatal = st;
    return false;
  };
  fleet->generate(sink, summary.stats);
  progress.finish();
  if (!fatal.is_ok()) return fatal;
  if (summary.rejected)
    return Status::data(std::to_string(summary.rejected) + " payloads rejected by the server");
  return Status::ok();
}

}  // namespace ep::sim
