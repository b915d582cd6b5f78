#!/usr/bin/python3
"""Process-level ep-plot test: renders a 1M-point series with three injected anomalies
and checks the SVG with xml.etree: well-formed, one shaded rect per flagged window, the
spike kept in the downsampled line, few points drawn; bad input lines exit 65.
Also checks that every option of --help is in the man page.
Usage: svg_check.py EP_PLOT_BINARY MAN_PAGE
"""
import re
import json
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def ts(i):
    # one point per second from 2026-01-05T00:00:00Z
    s = 1767571200 + i
    h, m, sec = (s // 3600) % 24, (s // 60) % 60, s % 60
    day = 5 + (s - 1767571200 + 0) // 86400
    return "2026-01-%02dT%02d:%02d:%02dZ" % (day, h, m, sec)


def main():
    ep_plot = sys.argv[1]
    n = 1_000_000
    flagged = [(200_000, 200_060, "spike"), (500_000, 500_600, "drift"), (900_000, 900_010, "drop")]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in.ndjson")
        with open(path, "w") as f:
            for i in range(n):
                v = 100 + math.sin(i / 5000.0)
                if i == 200_030:
                    v = 180.0  # the spike
                f.write('{"kind":"point","tenant":"t","device":"d","metric":"m","ts":"%s","value":%r}\n' % (ts(i), v))
            for i in range(0, n, 60):  # one score per minute
                lab = next((l for a, b, l in flagged if a <= i < b or (i <= a < i + 60)), None)
                f.write(json.dumps({"kind": "score", "tenant": "t", "device": "d", "metric": "m",
                                    "start": ts(i), "end": ts(i + 60), "score": 0.9 if lab else 0.1,
                                    "anomaly": bool(lab), "label": lab or "normal"}) + "\n")
            f.write('{"kind":"point","tenant":"t","device":"d","metric":"m","ts":"later"}\n')
        out = os.path.join(tmp, "chart.svg")
        p = subprocess.run([ep_plot, "-o", out, "--width", "1000", "--height", "360", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.returncode == 65, (p.returncode, p.stderr)
        assert "in.ndjson:%d: ts" % (n + (n + 59) // 60 + 1) in p.stderr, p.stderr
        root = ET.parse(out).getroot()  # raises on malformed XML
        assert root.tag == NS + "svg" and root.get("width") == "1000.0", root.attrib
        rects = [r for r in root.iter(NS + "rect") if r.get("class") == "flag"]
        labels = sorted(r.get("data-label") for r in rects)
        assert labels == ["drift", "drop", "spike"], labels
        for r in rects:
            assert float(r.get("width")) >= 1.0
        line = next(e for e in root.iter(NS + "polyline") if e.get("class") == "values")
        pts = [tuple(map(float, xy.split(","))) for xy in line.get("points").split()]
        assert len(pts) < 2500, len(pts)
        ys = [y for _, y in pts]
        top = min(ys)  # the spike is the highest value: smallest y
        xs = [x for x, y in pts if y == top]
        spike = next(r for r in rects if r.get("data-label") == "spike")
        x0, w = float(spike.get("x")), float(spike.get("width"))
        assert any(x0 - 1 <= x <= x0 + w + 1 for x in xs), (xs, x0, w)
    help_text = subprocess.run([ep_plot, "--help"], stdout=subprocess.PIPE, text=True, check=True).stdout
    man = open(sys.argv[2]).read().replace("\\-", "-")
    missing = sorted(o for o in set(re.findall(r"--[a-z][a-z-]+", help_text)) if o not in man)
    assert not missing, "options missing from the man page: %s" % missing
    print("svg_check: 1M points rendered; 3 flagged windows shaded; spike kept; %d points drawn" % len(pts))


if __name__ == "__main__":
    main()
