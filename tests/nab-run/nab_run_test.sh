#!/bin/bash
# scripts/nab-run writes NAB's result layout: OUT/edgepulse/<cat>/edgepulse_<name>.csv with
# timestamp,value,anomaly_score,label — one row per input row, in input order (repeated
# timestamps included), scores in [0,1], label 0 — and rejects a bad file list with 64.
set -euo pipefail
src=$1 build=$2
export EP_BUILD_DIR=$build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/data/catA" "$work/data/catB"
# catA/wave: 600 rows every 5 min with a spike at row 500.
/usr/bin/python3 - "$work/data" <<'PY'
import math, sys, datetime
d = sys.argv[1]
t0 = datetime.datetime(2014, 4, 1)
with open(f"{d}/catA/wave.csv", "w") as f:
    f.write("timestamp,value\n")
    for i in range(600):
        v = 10 + math.sin(i / 12.0) + (0.1 * ((i * 7919) % 13) / 13)
        if i == 500: v = 60
        f.write(f"{(t0 + datetime.timedelta(minutes=5 * i)):%Y-%m-%d %H:%M:%S},{v:.3f}\n")
# catB/dup: an hour of timestamps repeated (as in some NAB files), no trailing newline.
with open(f"{d}/catB/dup.csv", "w") as f:
    rows = ["timestamp,value"]
    ts = [t0 + datetime.timedelta(minutes=10 * i) for i in range(200)]
    ts = ts[:100] + ts[94:100] + ts[100:]
    for i, t in enumerate(ts):
        rows.append(f"{t:%Y-%m-%d %H:%M:%S},{i % 17}")
    f.write("\n".join(rows))
PY
printf '# test files\ncatA/wave.csv\n\ncatB/dup.csv\n' > "$work/files.txt"
"$src/scripts/nab-run" "$work/data" "$work/files.txt" "$work/out" --jobs 2 2> "$work/err" \
  || { cat "$work/err"; fail "nab-run exited $?"; }

/usr/bin/python3 - "$work" <<'PY' || exit 1
import csv, sys
w = sys.argv[1]
for cat, name in (("catA", "wave"), ("catB", "dup")):
    src = list(csv.reader(open(f"{w}/data/{cat}/{name}.csv")))
    out = list(csv.reader(open(f"{w}/out/edgepulse/{cat}/edgepulse_{name}.csv")))
    assert out[0] == ["timestamp", "value", "anomaly_score", "label"], out[0]
    assert len(out) == len(src), (name, len(out), len(src))
    for s, o in zip(src[1:], out[1:]):
        assert o[0] == s[0] and o[1] == s[1], (name, s, o)
        assert 0.0 <= float(o[2]) <= 1.0 and o[3] == "0", o
    if name == "wave":
        scores = [float(o[2]) for o in out[1:]]
        # Past the probation period (first 15%), the spike's row is the first detection
        # (score >= 0.5, the model threshold).
        first = next(i for i in range(90, len(scores)) if scores[i] >= 0.5)
        assert first == 500, f"first detection after probation at row {first}, want 500"
print("layout ok")
PY

printf 'not-a-path\n' > "$work/bad.txt"
set +e
"$src/scripts/nab-run" "$work/data" "$work/bad.txt" "$work/out2" 2> "$work/err2"
rc=$?
set -e
[ "$rc" -eq 64 ] || fail "bad file list: exit $rc, want 64"
grep -q "not category/name.csv" "$work/err2" || fail "bad file list: message missing"
echo "nab-run tests passed"
