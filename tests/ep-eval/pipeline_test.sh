#!/bin/sh
# End to end: ep-sim | ep-ingest --stdin | ep-features | ep-score | ep-eval --truth.
# Checks that ep-eval's report accounts for every injected anomaly and that the pipeline
# catches each injected type at a useful rate (recall >= 0.5, overall >= 0.8).
# Usage: pipeline_test.sh BIN_SIM BIN_INGEST BIN_FEATURES BIN_SCORE BIN_EVAL
set -eu
sim=$1 ingest=$2 features=$3 score=$4 eval=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$sim" --devices 6 --duration 2d --seed 11 --anomaly-rate 2 --start 2026-01-05T00:00:00Z \
    --truth "$tmp/truth.ndjson" 2>/dev/null |
  "$ingest" --stdin --tenant demo --no-time-bounds 2>/dev/null |
  "$features" 2>/dev/null | "$score" 2>/dev/null > "$tmp/scores.ndjson"
"$eval" --json --truth "$tmp/truth.ndjson" "$tmp/scores.ndjson" > "$tmp/report.json"
truths=$(grep -c '"kind":"truth"' "$tmp/truth.ndjson")
/usr/bin/python3 - "$tmp/report.json" "$truths" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
truths = int(sys.argv[2])
o = rep["overall"]
assert o["truths"] == truths, (o["truths"], truths)
assert sum(l["truths"] for l in rep["labels"]) == truths
assert rep["series"] > 0 and rep["score_records"] > 0
types = {l["label"]: l for l in rep["labels"] if l["truths"] > 0}
assert set(types) >= {"spike", "drop", "drift", "stuck", "missingness"}, sorted(types)
low = {k: v["recall"] for k, v in types.items() if v["recall"] < 0.5}
assert not low, "recall below 0.5: %s" % low
assert o["recall"] >= 0.8, o
print("pipeline: %d truths, recall %.3f, precision %.3f, median delay %.0fs" %
      (truths, o["recall"], o["precision"], o["delay_median_s"]))
PY
