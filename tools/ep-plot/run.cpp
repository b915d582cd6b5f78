#include "run.h"

#include "ep/log.h"
#include "ep/record_input.h"
#include "ep/records.h"

namespace ep::plot {

Result<Outcome> run(const Options& o) {
  if (o.chart.width < 200 || o.chart.height < 120)
    return Status::usage("--width must be >= 200 and --height >= 120");
  Outcome out;
  ChartData data;
  std::optional<SeriesKey> chosen;
  auto wanted = [&](const std::string& t, const std::string& d, const std::string& m) {
    if ((!o.tenant.empty() && t != o.tenant) || (!o.device.empty() && d != o.device) ||
        (!o.metric.empty() && m != o.metric))
      return false;
    SeriesKey k{t, d, m};
    if (!chosen) chosen = k;  // the first matching series is drawn
    if (*chosen == k) return true;
    ++out.other_series;
    return false;
  };
  Point p;
  Batch b;
  Score s;
  Truth t;
  InputStats stats;
  EP_RETURN_IF_ERROR(read_records(
      o.inputs, o.strict, stats, [&](const rapidjson::Value& obj, Kind kind) -> Status {
        switch (kind) {
          case Kind::kPoint:
            EP_RETURN_IF_ERROR(parse_record(obj, p));
            if (wanted(p.tenant, p.device, p.metric)) data.points.push_back({p.ts, p.value});
            return Status::ok();
          case Kind::kBatch:
            EP_RETURN_IF_ERROR(parse_record(obj, b));
            for (const auto& bp : b.points)
              if (wanted(b.tenant, b.device, bp.metric)) data.points.push_back({bp.ts, bp.value});
            return Status::ok();
          case Kind::kScore:
            EP_RETURN_IF_ERROR(parse_record(obj, s));
            if (wanted(s.tenant, s.device, s.metric))
              data.scores.push_back({s.start, s.end, s.score, s.anomaly, s.label});
            return Status::ok();
          case Kind::kTruth:
            EP_RETURN_IF_ERROR(parse_record(obj, t));
            if (wanted(t.tenant, t.device, t.metric)) data.truths.push_back({t.start, t.end, t.type});
            return Status::ok();
          case Kind::kUnknown:
            return Status::data("kind: expected \"point\", \"batch\", \"score\" or \"truth\"");
          default:
            return kIgnoredRecord;
        }
      }));
  if (!chosen) return Status::data("no point or score records" +
                                   std::string(o.tenant.empty() && o.device.empty() && o.metric.empty()
                                                   ? ""
                                                   : " of the selected series") +
                                   " to plot");
  out.series = chosen->to_string();
  data.title = o.title.empty() ? out.series : o.title;
  out.svg = render_svg(std::move(data), o.chart);
  out.rejected = stats.rejected;
  return out;
}

}  // namespace ep::plot
