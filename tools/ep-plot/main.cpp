// ep-plot: point + score (+ truth) records -> an SVG chart (values, flagged windows, score band).
#include "ep/cli.h"
#include "ep/fsutil.h"
#include "ep/log.h"
#include "ep/ndjson.h"
#include "run.h"

int main(int argc, char** argv) {
  ep::ignore_sigpipe();
  ep::Cli cli("ep-plot", "Render a series and its anomaly scores as an SVG chart.",
              "Reads point (or batch), score and truth records of one series (files or stdin);\n"
              "writes SVG to -o FILE or stdout.",
              "cat points.ndjson scores.ndjson | ep-plot --device meter-001 --metric voltage -o chart.svg");
  ep::plot::Options o;
  std::string out_path;
  auto& app = cli.app();
  app.add_option("-o,--output", out_path, "Write the SVG here (atomically) instead of stdout")
      ->type_name("FILE");
  app.add_option("--width", o.chart.width, "Width in pixels")->type_name("PX");
  app.add_option("--height", o.chart.height, "Height in pixels")->type_name("PX");
  app.add_option("--max-points", o.chart.max_points,
                 "Points drawn after LTTB downsampling (0: twice the plot width)")
      ->type_name("N");
  app.add_option("--tenant", o.tenant, "Draw this tenant's series")->type_name("T");
  app.add_option("--device", o.device, "Draw this device's series")->type_name("D");
  app.add_option("--metric", o.metric, "Draw this metric (default: the first series seen)")
      ->type_name("M");
  app.add_option("--title", o.title, "Chart title (default tenant/device/metric)");
  cli.add_inputs();
  if (auto rc = cli.parse(argc, argv)) return *rc;
  o.strict = cli.common().strict;
  o.inputs = cli.common().inputs;

  auto out = ep::plot::run(o);
  if (!out) {
    if (out.status().code() == ep::Code::kUsage) return cli.usage_error(out.status().message());
    ep::log::error(out.status());
    return out.status().exit_code();
  }
  if (out->other_series > 0)
    ep::log::warn("drew " + out->series + "; " + std::to_string(out->other_series) +
                  " records of other series ignored (select with --tenant/--device/--metric)");
  ep::Status st;
  if (out_path.empty() || out_path == "-") {
    ep::RecordWriter w(1);
    w.write(std::string_view(out->svg).substr(0, out->svg.size() - 1));
    st = w.close();
  } else {
    st = ep::fs::write_file_atomic(out_path, out->svg);
  }
  if (!st.is_ok()) {
    ep::log::error(st);
    return st.exit_code();
  }
  if (out->rejected > 0) {
    ep::log::error(ep::Status::data(std::to_string(out->rejected) + " input lines rejected"));
    return 65;
  }
  return 0;
}
