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

namespace {

// Where things go: the two bands (values above, score below), the time range and the
// value range, and the maps from data to pixels.
struct Layout {
  double W = 0, H = 0;
  double left = 64, right = 16, top = 28, bottom = 34, gap = 10;
  double plot_w = 0, value_h = 0, score_h = 0, value_top = 0, score_top = 0;
  TimeNs t0 = 0, t1 = 0;
  double vmin = 0, vmax = 1;

  double X(TimeNs t) const { return left + plot_w * static_cast<double>(t - t0) / static_cast<double>(t1 - t0); }
  double YV(double v) const { return value_top + value_h * (1 - (v - vmin) / (vmax - vmin)); }
  double YS(double s) const { return score_top + score_h * (1 - std::clamp(s, 0.0, 1.0)); }
};

// The time range covers every point, window and truth span; the value range every point,
// with 5% room above and below.
Layout layout_of(const ChartData& d, const ChartOptions& o) {
  Layout l;
  l.W = std::max(o.width, 200);
  l.H = std::max(o.height, 120);
  l.plot_w = l.W - l.left - l.right;
  const double bands = l.H - l.top - l.bottom - l.gap;
  l.value_h = bands * 0.75;
  l.score_h = bands - l.value_h;
  l.value_top = l.top;
  l.score_top = l.top + l.value_h + l.gap;
  bool any = false;
  auto extend = [&](TimeNs a, TimeNs b) {
    if (!any) l.t0 = a, l.t1 = b, any = true;
    l.t0 = std::min(l.t0, a);
    l.t1 = std::max(l.t1, b);
  };
  for (const auto& p : d.points) extend(p.ts, p.ts);
  for (const auto& s : d.scores) extend(s.start, s.end);
  for (const auto& t : d.truths) extend(t.start, t.end);
  if (l.t1 <= l.t0) l.t1 = l.t0 + kNsPerSec;
  if (!d.points.empty()) {
    l.vmin = l.vmax = d.points[0].value;
    for (const auto& p : d.points) l.vmin = std::min(l.vmin, p.value), l.vmax = std::max(l.vmax, p.value);
  }
  if (l.vmax <= l.vmin) l.vmin -= 1, l.vmax += 1;
  const double pad = (l.vmax - l.vmin) * 0.05;
  l.vmin -= pad;
  l.vmax += pad;
  return l;
}

void header(std::string& svg, const Layout& l, const std::string& title) {
  svg += R"(<?xml version="1.0" encoding="UTF-8"?>)" "\n";
  svg += R"(<svg xmlns="http://www.w3.org/2000/svg" width=")" + num(l.W) + R"(" height=")" + num(l.H) +
         R"(" viewBox="0 0 )" + num(l.W) + " " + num(l.H) + R"(" font-family="sans-serif" font-size="11">)" "\n";
  svg += "<style>.values{fill:none;stroke:#1f77b4;stroke-width:1.2}.score{fill:none;stroke:#ff7f0e;"
         "stroke-width:1}.flag{fill:#d62728;fill-opacity:0.18;stroke:none}.flag-label{fill:#d62728}"
         ".truth{fill:#2ca02c}.axis{stroke:#888;stroke-width:0.6}.grid{stroke:#ddd;stroke-width:0.5}</style>\n";
  svg += R"(<rect x="0" y="0" width=")" + num(l.W) + R"(" height=")" + num(l.H) + R"(" fill="#fff"/>)" "\n";
  svg += R"(<text x=")" + num(l.left) + R"(" y="18" font-size="13">)" + xml_escape(title) + "</text>\n";
}

// Flagged windows: shaded over both bands, labelled at the top (a label that would
// overlap the previous one is left out).
void flags(std::string& svg, const Layout& l, const std::vector<Region>& regions) {
  svg += "<g class=\"flags\">\n";
  double label_free_x = -1;
  for (const Region& r : regions) {
    double x0 = l.X(r.start), x1 = std::max(l.X(r.end), x0 + 1.0);
    svg += R"(<rect class="flag" x=")" + num(x0) + R"(" y=")" + num(l.value_top) + R"(" width=")" +
           num(x1 - x0) + R"(" height=")" + num(l.score_top + l.score_h - l.value_top) +
           R"(" data-start=")" + format_rfc3339(r.start) + R"(" data-end=")" + format_rfc3339(r.end) +
           R"(" data-label=")" + xml_escape(r.label) + R"("><title>)" + xml_escape(r.label) + " " +
           format_rfc3339(r.start) + " .. " + format_rfc3339(r.end) + " score " + value_label(r.score) +
           "</title></rect>\n";
    if (x0 + 2 >= label_free_x) {
      svg += R"(<text class="flag-label" x=")" + num(x0 + 2) + R"(" y=")" + num(l.value_top + 11) + R"(">)" +
             xml_escape(r.label) + "</text>\n";
      label_free_x = x0 + 2 + 6.5 * static_cast<double>(r.label.size()) + 4;
    }
  }
  svg += "</g>\n";
}

// Truth: marks on the strip between the bands.
void truths(std::string& svg, const Layout& l, const std::vector<TruthSpan>& spans) {
  if (spans.empty()) return;
  svg += "<g class=\"truths\">\n";
  for (const TruthSpan& t : spans) {
    double x0 = l.X(t.start), x1 = std::max(l.X(std::max(t.end, t.start)), x0 + 1.0);
    svg += R"(<rect class="truth" x=")" + num(x0) + R"(" y=")" + num(l.value_top + l.value_h + 2) +
           R"(" width=")" + num(x1 - x0) + R"(" height=")" + num(l.gap - 4) + R"(" data-start=")" +
           format_rfc3339(t.start) + R"(" data-end=")" + format_rfc3339(t.end) + R"(" data-type=")" +
           xml_escape(t.type) + R"("><title>truth: )" + xml_escape(t.type) + " " + format_rfc3339(t.start) +
           " .. " + format_rfc3339(t.end) + "</title></rect>\n";
  }
  svg += "</g>\n";
}

// Five value grid lines with labels, five time ticks, the band frames and the score scale.
void axes(std::string& svg, const Layout& l) {
  const double bottom_y = l.score_top + l.score_h;
  for (int k = 0; k <= 4; ++k) {
    double v = l.vmin + (l.vmax - l.vmin) * k / 4.0;
    double y = l.YV(v);
    svg += R"(<line class="grid" x1=")" + num(l.left) + R"(" x2=")" + num(l.left + l.plot_w) + R"(" y1=")" + num(y) +
           R"(" y2=")" + num(y) + R"("/>)";
    svg += R"(<text x=")" + num(l.left - 4) + R"(" y=")" + num(y + 4) + R"(" text-anchor="end">)" +
           axis_label(v, l.vmax - l.vmin) + "</text>\n";
    TimeNs t = l.t0 + (l.t1 - l.t0) / 4 * k;
    double x = l.X(t);
    svg += R"(<line class="axis" x1=")" + num(x) + R"(" x2=")" + num(x) + R"(" y1=")" + num(bottom_y) +
           R"(" y2=")" + num(bottom_y + 4) + R"("/>)";
    svg += R"(<text x=")" + num(x) + R"(" y=")" + num(l.H - l.bottom + 18) + R"(" text-anchor=")" +
           (k == 0 ? "start" : k == 4 ? "end" : "middle") + R"(">)" + time_label(t, l.t1 - l.t0) + "</text>\n";
  }
  svg += R"(<rect fill="none" class="axis" x=")" + num(l.left) + R"(" y=")" + num(l.value_top) + R"(" width=")" +
         num(l.plot_w) + R"(" height=")" + num(l.value_h) + R"("/>)" "\n";
  svg += R"(<rect fill="none" class="axis" x=")" + num(l.left) + R"(" y=")" + num(l.score_top) + R"(" width=")" +
         num(l.plot_w) + R"(" height=")" + num(l.score_h) + R"("/>)" "\n";
  svg += R"(<text x=")" + num(l.left - 4) + R"(" y=")" + num(l.score_top + l.score_h / 2 + 4) +
         R"(" text-anchor="end">score</text>)";
  svg += R"(<text x=")" + num(l.left - 4) + R"(" y=")" + num(l.score_top + 8) + R"(" text-anchor="end">1</text>)";
  svg += R"(<text x=")" + num(l.left - 4) + R"(" y=")" + num(bottom_y) + R"(" text-anchor="end">0</text>)" "\n";
}

// The points of keep as "x,y x,y …".
template <typename ToXY>
void coordinates(std::string& svg, const std::vector<ValuePoint>& pts, const std::vector<std::size_t>& keep,
                 ToXY to_xy) {
  for (std::size_t k = 0; k < keep.size(); ++k) {
    if (k) svg += ' ';
    auto [x, y] = to_xy(pts[keep[k]]);
    svg += num(x) + "," + num(y);
  }
}

}  // namespace

std::string render_svg(ChartData d, const ChartOptions& o) {
  std::stable_sort(d.points.begin(), d.points.end(),
                   [](const ValuePoint& a, const ValuePoint& b) { return a.ts < b.ts; });
  std::stable_sort(d.scores.begin(), d.scores.end(),
                   [](const ScorePoint& a, const ScorePoint& b) { return a.end < b.end; });
  const Layout l = layout_of(d, o);
  const std::size_t target = o.max_points ? o.max_points : static_cast<std::size_t>(2 * l.plot_w);
  std::string svg;
  svg.reserve(64 * 1024);
  header(svg, l, d.title);
  auto regions = flagged_regions(d.scores);
  flags(svg, l, regions);
  truths(svg, l, d.truths);
  axes(svg, l);
  // Values, downsampled.
  auto keep = select_points(d.points, regions, target);
  svg += R"(<polyline class="values" data-points=")" + std::to_string(keep.size()) + R"(" points=")";
  coordinates(svg, d.points, keep, [&](const ValuePoint& p) { return std::pair(l.X(p.ts), l.YV(p.value)); });
  svg += "\"/>\n";
  // Scores at their window ends, downsampled the same way.
  std::vector<ValuePoint> sp;
  sp.reserve(d.scores.size());
  for (const auto& s : d.scores) sp.push_back(ValuePoint{s.end, s.score});
  auto skeep = select_points(sp, regions, target);
  svg += R"(<polyline class="score" points=")";
  coordinates(svg, sp, skeep, [&](const ValuePoint& p) { return std::pair(l.X(p.ts), l.YS(p.value)); });
  svg += "\"/>\n</svg>\n";
  return svg;
}

}  // namespace ep::plot
