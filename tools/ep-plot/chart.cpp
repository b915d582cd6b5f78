#include "chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ep/lttb.h"

namespace ep::plot {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string value_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Axis labels with as many decimals as the axis span needs ("41160", "0.25").
std::string axis_label(double v, double span) {
  char buf[32];
  if (std::fabs(v) >= 1e7 || span < 1e-4) {
    std::snprintf(buf, sizeof buf, "%.4g", v);
  } else {
    int decimals = std::clamp(2 - static_cast<int>(std::floor(std::log10(span))), 0, 6);
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

std::string time_label(TimeNs t, TimeNs span) {
  std::string s = format_rfc3339(t);  // 2026-01-05T10:00:00.000Z
  if (span <= 86400 * kNsPerSec) return s.substr(11, 8);       // 10:00:00
  if (span <= 30 * 86400 * kNsPerSec) return s.substr(5, 11);  // 01-05T10:00
  return s.substr(0, 10);                                       // 2026-01-05
}

}  // namespace

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') out += ' ';
        else out += c;
    }
  }
  return out;
}

std::vector<Region> flagged_regions(std::vector<ScorePoint> scores) {
  std::vector<Region> out;
  std::erase_if(scores, [](const ScorePoint& s) { return !s.anomaly; });
  std::sort(scores.begin(), scores.end(), [](const ScorePoint& a, const ScorePoint& b) {
    return a.start != b.start ? a.start < b.start : a.end < b.end;
  });
  for (const auto& s : scores) {
    if (!out.empty() && s.start <= out.back().end) {
      Region& r = out.back();
      r.end = std::max(r.end, s.end);
      if (s.score > r.score) {
        r.score = s.score;
        r.label = s.label;
      }
    } else {
      out.push_back(Region{s.start, s.end, s.label, s.score});
    }
  }
  return out;
}

std::vector<std::size_t> select_points(const std::vector<ValuePoint>& pts,
                                       const std::vector<Region>& regions, std::size_t target) {
  const std::size_t n = pts.size();
  if (n == 0) return {};
  std::vector<double> x(n), y(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = static_cast<double>(pts[i].ts - pts[0].ts);
    y[i] = pts[i].value;
  }
  std::vector<std::size_t> keep = lttb(x, y, target);
  if (keep.size() == n) return keep;
  auto extremes = [&](std::size_t lo, std::size_t hi) {  // [lo, hi)
    if (lo >= hi) return;
    std::size_t mn = lo, mx = lo;
    for (std::size_t i = lo; i < hi; ++i) {
      if (y[i] < y[mn]) mn = i;
      if (y[i] > y[mx]) mx = i;
    }
    keep.push_back(mn);
    keep.push_back(mx);
  };
  extremes(0, n);
  auto by_ts = [](const ValuePoint& p, TimeNs t) { return p.ts < t; };
  for (const Region& r : regions) {
    auto lo = std::lower_bound(pts.begin(), pts.end(), r.start, by_ts) - pts.begin();
    auto hi = std::lower_bound(pts.begin(), pts.end(), std::max(r.end, r.start + 1), by_ts) - pts.begin();
    if (hi < static_cast<std::ptrdiff_t>(n) && pts[hi].ts == r.end) ++hi;  // window end point
    extremes(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi));
  }
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  return keep;
}

std::string render_svg(ChartData d, const ChartOptions& o) {
  std::stable_sort(d.points.begin(), d.points.end(),
                   [](const ValuePoint& a, const ValuePoint& b) { return a.ts < b.ts; });
  std::stable_sort(d.scores.begin(), d.scores.end(),
                   [](const ScorePoint& a, const ScorePoint& b) { return a.end < b.end; });
  const double W = std::max(o.width, 200), H = std::max(o.height, 120);
  const double left = 64, right = 16, top = 28, bottom = 34, gap = 10;
  const double plot_w = W - left - right;
  const double bands = H - top - bottom - gap;
  const double value_h = bands * 0.75, score_h = bands - value_h;
  const double value_top = top, score_top = top + value_h + gap;
  const std::size_t target = o.max_points ? o.max_points : static_cast<std::size_t>(2 * plot_w);

  TimeNs t0 = 0, t1 = 0;
  bool any = false;
  auto extend = [&](TimeNs a, TimeNs b) {
    if (!any) t0 = a, t1 = b, any = true;
    t0 = std::min(t0, a);
    t1 = std::max(t1, b);
  };
  for (const auto& p : d.points) extend(p.ts, p.ts);
  for (const auto& s : d.scores) extend(s.start, s.end);
  for (const auto& t : d.truths) extend(t.start, t.end);
  if (t1 <= t0) t1 = t0 + kNsPerSec;
  double vmin = 0, vmax = 1;
  if (!d.points.empty()) {
    vmin = vmax = d.points[0].value;
    for (const auto& p : d.points) vmin = std::min(vmin, p.value), vmax = std::max(vmax, p.value);
  }
  if (vmax <= vmin) vmin -= 1, vmax += 1;
  const double pad = (vmax - vmin) * 0.05;
  vmin -= pad;
  vmax += pad;

  auto X = [&](TimeNs t) { return left + plot_w * static_cast<double>(t - t0) / static_cast<double>(t1 - t0); };
  auto YV = [&](double v) { return value_top + value_h * (1 - (v - vmin) / (vmax - vmin)); };
  auto YS = [&](double s) { return score_top + score_h * (1 - std::clamp(s, 0.0, 1.0)); };

  std::string svg;
  svg.reserve(64 * 1024);
  svg += R"(<?xml version="1.0" encoding="UTF-8"?>)" "\n";
  svg += R"(<svg xmlns="http://www.w3.org/2000/svg" width=")" + num(W) + R"(" height=")" + num(H) +
         R"(" viewBox="0 0 )" + num(W) + " " + num(H) + R"(" font-family="sans-serif" font-size="11">)" "\n";
  svg += "<style>.values{fill:none;stroke:#1f77b4;stroke-width:1.2}.score{fill:none;stroke:#ff7f0e;"
         "stroke-width:1}.flag{fill:#d62728;fill-opacity:0.18;stroke:none}.flag-label{fill:#d62728}"
         ".truth{fill:#2ca02c}.axis{stroke:#888;stroke-width:0.6}.grid{stroke:#ddd;stroke-width:0.5}</style>\n";
  svg += R"(<rect x="0" y="0" width=")" + num(W) + R"(" height=")" + num(H) + R"(" fill="#fff"/>)" "\n";
  svg += R"(<text x=")" + num(left) + R"(" y="18" font-size="13">)" + xml_escape(d.title) + "</text>\n";

  // Flagged windows: shaded over both bands, labelled at the top.
  auto regions = flagged_regions(d.scores);
  svg += "<g class=\"flags\">\n";
  double label_free_x = -1;  // labels that would overlap the previous one are left out
  for (const Region& r : regions) {
    double x0 = X(r.start), x1 = std::max(X(r.end), x0 + 1.0);
    svg += R"(<rect class="flag" x=")" + num(x0) + R"(" y=")" + num(value_top) + R"(" width=")" +
           num(x1 - x0) + R"(" height=")" + num(score_top + score_h - value_top) +
           R"(" data-start=")" + format_rfc3339(r.start) + R"(" data-end=")" + format_rfc3339(r.end) +
           R"(" data-label=")" + xml_escape(r.label) + R"("><title>)" + xml_escape(r.label) + " " +
           format_rfc3339(r.start) + " .. " + format_rfc3339(r.end) + " score " + value_label(r.score) +
           "</title></rect>\n";
    if (x0 + 2 >= label_free_x) {
      svg += R"(<text class="flag-label" x=")" + num(x0 + 2) + R"(" y=")" + num(value_top + 11) +
             R"(">)" + xml_escape(r.label) + "</text>\n";
      label_free_x = x0 + 2 + 6.5 * static_cast<double>(r.label.size()) + 4;
    }
  }
  svg += "</g>\n";

  // Truth: marks on the strip between the bands.
  if (!d.truths.empty()) {
    svg += "<g class=\"truths\">\n";
    for (const TruthSpan& t : d.truths) {
      double x0 = X(t.start), x1 = std::max(X(std::max(t.end, t.start)), x0 + 1.0);
      svg += R"(<rect class="truth" x=")" + num(x0) + R"(" y=")" + num(value_top + value_h + 2) +
             R"(" width=")" + num(x1 - x0) + R"(" height=")" + num(gap - 4) + R"(" data-start=")" +
             format_rfc3339(t.start) + R"(" data-end=")" + format_rfc3339(t.end) + R"(" data-type=")" +
             xml_escape(t.type) + R"("><title>truth: )" + xml_escape(t.type) + " " +
             format_rfc3339(t.start) + " .. " + format_rfc3339(t.end) + "</title></rect>\n";
    }
    svg += "</g>\n";
  }

  // Axes and grid.
  for (int k = 0; k <= 4; ++k) {
    double v = vmin + (vmax - vmin) * k / 4.0;
    double y = YV(v);
    svg += R"(<line class="grid" x1=")" + num(left) + R"(" x2=")" + num(left + plot_w) + R"(" y1=")" +
           num(y) + R"(" y2=")" + num(y) + R"("/>)";
    svg += R"(<text x=")" + num(left - 4) + R"(" y=")" + num(y + 4) + R"(" text-anchor="end">)" +
           axis_label(v, vmax - vmin) + "</text>\n";
    TimeNs t = t0 + (t1 - t0) / 4 * k;
    double x = X(t);
    svg += R"(<line class="axis" x1=")" + num(x) + R"(" x2=")" + num(x) + R"(" y1=")" +
           num(score_top + score_h) + R"(" y2=")" + num(score_top + score_h + 4) + R"("/>)";
    svg += R"(<text x=")" + num(x) + R"(" y=")" + num(H - bottom + 18) + R"(" text-anchor=")" +
           (k == 0 ? "start" : k == 4 ? "end" : "middle") + R"(">)" + time_label(t, t1 - t0) + "</text>\n";
  }
  svg += R"(<rect fill="none" class="axis" x=")" + num(left) + R"(" y=")" + num(value_top) +
         R"(" width=")" + num(plot_w) + R"(" height=")" + num(value_h) + R"("/>)" "\n";
  svg += R"(<rect fill="none" class="axis" x=")" + num(left) + R"(" y=")" + num(score_top) +
         R"(" width=")" + num(plot_w) + R"(" height=")" + num(score_h) + R"("/>)" "\n";
  svg += R"(<text x=")" + num(left - 4) + R"(" y=")" + num(score_top + score_h / 2 + 4) +
         R"(" text-anchor="end">score</text>)";
  svg += R"(<text x=")" + num(left - 4) + R"(" y=")" + num(score_top + 8) + R"(" text-anchor="end">1</text>)";
  svg += R"(<text x=")" + num(left - 4) + R"(" y=")" + num(score_top + score_h) +
         R"(" text-anchor="end">0</text>)" "\n";

  // Values, downsampled.
  auto keep = select_points(d.points, regions, target);
  svg += R"(<polyline class="values" data-points=")" + std::to_string(keep.size()) + R"(" points=")";
  for (std::size_t k = 0; k < keep.size(); ++k) {
    const auto& p = d.points[keep[k]];
    if (k) svg += ' ';
    svg += num(X(p.ts)) + "," + num(YV(p.value));
  }
  svg += "\"/>\n";

  // Scores at their window ends, downsampled the same way.
  std::vector<ValuePoint> sp;
  sp.reserve(d.scores.size());
  for (const auto& s : d.scores) sp.push_back(ValuePoint{s.end, s.score});
  auto skeep = select_points(sp, regions, target);
  svg += R"(<polyline class="score" points=")";
  for (std::size_t k = 0; k < skeep.size(); ++k) {
    if (k) svg += ' ';
    svg += num(X(sp[skeep[k]].ts)) + "," + num(YS(sp[skeep[k]].value));
  }
  svg += "\"/>\n</svg>\n";
  return svg;
}

}  // namespace ep::plot
