// ep-plot: LTTB, flagged regions, SVG structure (the process-level check parses the SVG
// with python3's xml.etree in svg_check.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "chart.h"
#include "ep/lttb.h"

using namespace ep;
using namespace ep::plot;

TEST(Lttb, KeepsFirstLastAndTargetCount) {
  std::vector<double> x, y;
  for (int i = 0; i < 1000; ++i) x.push_back(i), y.push_back(std::sin(i / 30.0));
  auto keep = lttb(x, y, 100);
  ASSERT_EQ(keep.size(), 100u);
  EXPECT_EQ(keep.front(), 0u);
  EXPECT_EQ(keep.back(), 999u);
  EXPECT_TRUE(std::is_sorted(keep.begin(), keep.end()));
  EXPECT_EQ(std::adjacent_find(keep.begin(), keep.end()), keep.end());  // no duplicates
}

TEST(Lttb, SmallInputsAreKeptWhole) {
  std::vector<double> x{0, 1, 2}, y{1, 5, 1};
  EXPECT_EQ(lttb(x, y, 10).size(), 3u);
  EXPECT_EQ(lttb(x, y, 2).size(), 3u);  // target < 3: no downsampling
}

TEST(Lttb, KeepsASingleSpikeAndDip) {
  std::vector<double> x, y;
  for (int i = 0; i < 100000; ++i) {
    x.push_back(i);
    y.push_back(10 + 0.1 * std::sin(i * 0.7));
  }
  y[31337] = 100;  // spike
  y[77777] = -50;  // dip
  auto keep = lttb(x, y, 500);
  EXPECT_TRUE(std::binary_search(keep.begin(), keep.end(), 31337u));
  EXPECT_TRUE(std::binary_search(keep.begin(), keep.end(), 77777u));
}

TEST(SelectPoints, KeepsExtremesInsideEveryFlaggedRegion) {
  std::vector<ValuePoint> pts;
  for (int i = 0; i < 50000; ++i) pts.push_back({i * kNsPerSec, static_cast<double>(i % 7)});
  // A modest bump inside a flagged region that LTTB alone may smooth away.
  pts[20000].value = 7.5;
  std::vector<Region> regions{{19990 * kNsPerSec, 20010 * kNsPerSec, "spike", 0.9}};
  auto keep = select_points(pts, regions, 100);
  EXPECT_TRUE(std::binary_search(keep.begin(), keep.end(), 20000u));
  EXPECT_LT(keep.size(), 110u);
}

TEST(FlaggedRegions, MergesOverlappingAndTouchingWindows) {
  std::vector<ScorePoint> s = {
      {0, 10, 0.9, true, "spike"},  {10, 20, 0.95, true, "drop"}, {20, 30, 0.1, false, "normal"},
      {40, 50, 0.8, true, "drift"}, {45, 55, 0.7, true, "drift"},
  };
  auto r = flagged_regions(s);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].start, 0);
  EXPECT_EQ(r[0].end, 20);
  EXPECT_EQ(r[0].label, "drop");  // the highest-scoring window names the region
  EXPECT_EQ(r[1].start, 40);
  EXPECT_EQ(r[1].end, 55);
}

TEST(RenderSvg, OneShadedRectPerFlaggedRegionAndEscapedText) {
  ChartData d;
  d.title = "acme/<meter>&1/voltage";
  for (int i = 0; i < 1000; ++i) d.points.push_back({i * kNsPerSec, 230.0 + (i % 10)});
  d.scores.push_back({100 * kNsPerSec, 110 * kNsPerSec, 0.9, true, "spike"});
  d.scores.push_back({500 * kNsPerSec, 510 * kNsPerSec, 0.8, true, "drop"});
  d.scores.push_back({600 * kNsPerSec, 610 * kNsPerSec, 0.2, false, "normal"});
  std::string svg = render_svg(d, ChartOptions{800, 300, 0});
  auto count = [&](const std::string& needle) {
    std::size_t n = 0;
    for (auto p = svg.find(needle); p != std::string::npos; p = svg.find(needle, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("class=\"flag\""), 2u);
  EXPECT_EQ(count("data-label=\"spike\""), 1u);
  EXPECT_EQ(count("data-label=\"drop\""), 1u);
  EXPECT_NE(svg.find("acme/&lt;meter&gt;&amp;1/voltage"), std::string::npos);
  EXPECT_EQ(svg.find("<meter>"), std::string::npos);
}

TEST(RenderSvg, EmptyAndConstantSeriesStillRender) {
  ChartData d;
  d.points.push_back({0, 5.0});
  std::string svg = render_svg(d, ChartOptions{});
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(XmlEscape, EscapesMarkupAndDropsControlCharacters) {
  EXPECT_EQ(xml_escape("a<b>&\"'\x01"), "a&lt;b&gt;&amp;&quot;&apos; ");
}

TEST(RenderSvg, TruthRecordsAreMarkedBetweenTheBands) {
  ChartData d;
  for (int i = 0; i < 100; ++i) d.points.push_back({i * kNsPerSec, static_cast<double>(i)});
  d.truths.push_back({10 * kNsPerSec, 20 * kNsPerSec, "spike"});
  d.truths.push_back({50 * kNsPerSec, 50 * kNsPerSec, "drop"});  // an instant: still 1 px wide
  std::string svg = render_svg(d, ChartOptions{800, 300, 0});
  std::size_t n = 0;
  for (auto p = svg.find("class=\"truth\""); p != std::string::npos; p = svg.find("class=\"truth\"", p + 1)) ++n;
  EXPECT_EQ(n, 2u);
  EXPECT_NE(svg.find("data-type=\"drop\""), std::string::npos);
  EXPECT_EQ(svg.find("class=\"flag\""), std::string::npos);  // truth is not a detection
}
