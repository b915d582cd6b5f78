#!/bin/bash
# The whole system, run the way docs/operations.md says, on a throwaway Postgres
# database (the pg_virtualenv cluster) and loopback sockets:
#   ep-admin migrate, tenant, keys; edgepulse-job ingest (ep-ingest --archive file://…)
#   and edgepulse-job load (ep-load --follow: the archive → Postgres) as long-running
#   processes; ep-sim --url posting a fleet with injected anomalies over
#   HTTP; edgepulse-job train and score (features → score → alert), as the timers run
#   them, with webhooks going to examples/webhook-receiver; then asserts:
#   - every acknowledged point is in Postgres exactly once, the loader's lag is 0 on its
#     /metrics and in ep-admin check, and a replay of the archive through ep-load
#     changes nothing (nothing lost, nothing doubled)
#   - injected spikes and drops are alerted; every webhook signature verifies; no alert
#     is delivered twice, even when the score job runs again over the same windows
#   - a second score run while one holds the lock exits 75
#   - ep-api serves the same devices, batch counts and anomalies as were scored
# Usage: system_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ep-e2e.XXXXXX")
bin=$work/bin
pids=()
db=ep_e2e_$$_$RANDOM
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q -d "${PGDATABASE:-postgres}" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  [ -n "${EP_E2E_KEEP:-}" ] && echo "e2e: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "e2e: FAIL: $*" >&2; for f in "$work"/*.err; do [ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done; exit 1; }
step() { echo "e2e: $*" >&2; }
# Polls a condition (every 50 ms, up to $2 seconds): waits on what we can observe.
wait_for() { local i; for ((i = 0; i < ${2:-20} * 20; i++)); do eval "$1" && return 0; sleep 0.05; done; return 1; }
sql() { psql -X -q -A -t -d "$db" -c "$1"; }

mkdir -p "$bin"
for t in ep-admin ep-ingest ep-load ep-archive ep-sim ep-features ep-score ep-train ep-alert ep-api; do
  # EP_E2E_BIN: a directory holding the binaries instead of BUILD_DIR/tools/*/.
  if [ -n "${EP_E2E_BIN:-}" ]; then exe=$EP_E2E_BIN/$t; [ -x "$exe" ] || exe=""
  else exe=$(find "$build/tools/$t" -maxdepth 1 -type f -name "$t" -perm -u+x | head -1); fi
  [ -n "$exe" ] || fail "$t is not built in $build"
  ln -s "$exe" "$bin/$t"
done
job=$src/scripts/edgepulse-job

step "database $db"
psql -q -d "${PGDATABASE:-postgres}" -c "CREATE DATABASE $db" >/dev/null || fail "Postgres unreachable (run under pg_virtualenv)"
export DATABASE_URL="dbname=$db" API_KEY_HASH_SALT=e2e-pepper-$RANDOM
export EP_BIN_DIR=$bin EP_LOCK_DIR=$work/locks EP_TENANTS=demo EP_STORE=files
export MODEL_ARTEFACT_STORE=$work/models EP_ALERT_RULES=$work/rules.toml EP_ALERT_STATE=$work/alert-state.json
export EP_ARCHIVE_URI=file://$work/archive
export RUNTIME_DIRECTORY=$work FEATURE_WINDOW_SEC=300
# The webhook receiver is on loopback, which ep-alert's egress policy denies unless allowed
# (read by ep-alert from the environment, as edgepulse.env would set it).
export EP_ALLOW_EGRESS=127.0.0.0/8
mkdir -p "$work/models" "$work/archive"

"$bin/ep-admin" migrate --db "$DATABASE_URL" 2>"$work/admin.err" || fail "ep-admin migrate"
"$bin/ep-admin" tenant add demo --db "$DATABASE_URL" 2>>"$work/admin.err" >/dev/null || fail "ep-admin tenant add"
# Keys in Postgres, as in production: one for the fleet (ep-ingest), one for ep-api.
ingest_key=$("$bin/ep-admin" key issue --tenant demo --db "$DATABASE_URL" 2>>"$work/admin.err") || fail "key issue"
api_key=$("$bin/ep-admin" key issue --tenant demo --db "$DATABASE_URL" 2>>"$work/admin.err") || fail "key issue"

step "webhook receiver"
secret="whsec_$(head -c 24 /dev/urandom | base64)"
mkfifo "$work/receiver.port"
python3 "$src/examples/webhook-receiver/receiver.py" --port 0 --port-file "$work/receiver.port" \
  --secret "$secret" >"$work/received.ndjson" 2>"$work/receiver.err" &
pids+=($!)
rport=$(timeout 10 cat "$work/receiver.port") || fail "receiver did not start"
cat >"$work/rules.toml" <<EOR
[[webhooks]]
name = "e2e"
url = "http://127.0.0.1:$rport/hook"
secrets = ["$secret"]

[[rules]]
name = "e2e-anomaly"
tenant = "demo"
min_score = 0.5
cooldown = "2h"
webhooks = ["e2e"]
EOR

step "ingest (edgepulse-job ingest) and the loader following the archive (edgepulse-job load)"
EP_INGEST_LISTEN=127.0.0.1:0 "$job" ingest --no-time-bounds 2>"$work/ingest.err" &
ingest_job=$!
pids+=($ingest_job)
wait_for "grep -q 'listening on http://' '$work/ingest.err'" 20 || fail "ep-ingest did not start"
iaddr=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$work/ingest.err" | head -1)
EP_LOAD_METRICS_LISTEN=127.0.0.1:0 "$job" load 2>"$work/load.err" &
load_job=$!
pids+=($load_job)
wait_for "grep -q 'metrics on http://' '$work/load.err'" 20 || fail "ep-load --follow did not start"
maddr=$(sed -n 's/.*metrics on http:\/\/\([0-9.:]*\).*/\1/p' "$work/load.err" | head -1)

step "ep-sim posting to $iaddr"
start=$(date -u -d '-6 hours' +%Y-%m-%dT%H:00:00Z)
"$bin/ep-sim" --devices 3 --metrics voltage,temp --duration 5h --interval 10s --seed 11 \
  --start "$start" --anomaly-rate 4 --truth "$work/truth.ndjson" \
  --url "http://$iaddr" --key "$ingest_key" >/dev/null 2>"$work/sim.err" || fail "ep-sim --url"
sent=$(sed -n 's/.* payloads, \([0-9]*\) points,.*/\1/p' "$work/sim.err" | tail -1)
[ -n "$sent" ] && [ "$sent" -gt 0 ] || fail "ep-sim printed no point count"
grep -q "rejected by the server" "$work/sim.err" && fail "the server rejected payloads"

step "stopping ingest (SIGTERM drains); the loader catches up"
kill -TERM "$ingest_job"
wait "$ingest_job"; rc=$?
[ "$rc" = 0 ] || fail "edgepulse-job ingest exited $rc after SIGTERM"
wait_for "[ \"\$(sql 'SELECT count(*) FROM datapoints')\" = '$sent' ]" 120 \
  || fail "acknowledged $sent points, Postgres holds $(sql 'SELECT count(*) FROM datapoints')"
lag() { curl -sf "http://$maddr/metrics" | sed -n 's/^ep_load_follow_lag_batches{[^}]*} //p'; }
wait_for '[ "$(lag)" = 0 ]' 20 || fail "ep-load --follow reports a lag of $(lag) batches, want 0"
# The loader records its lag with each commit and at least every 5 s (from its last
# measurement of the log), so ep-admin check shows 0 within a few seconds of /metrics.
caught_up() {
  "$bin/ep-admin" check --db "$DATABASE_URL" >"$work/check.out" 2>"$work/check.err" || fail "ep-admin check"
  grep -q "^consumer	ep-load	$EP_ARCHIVE_URI	.*lag_batches=0	" "$work/check.out"
}
wait_for caught_up 30 || fail "ep-admin check does not show the loader caught up: $(cat "$work/check.out")"
kill -TERM "$load_job"
wait "$load_job"; rc=$?
[ "$rc" = 0 ] || fail "edgepulse-job load exited $rc after SIGTERM"
loaded=$(sql "SELECT count(*) FROM datapoints")
[ "$loaded" = "$sent" ] || fail "acknowledged $sent points, Postgres holds $loaded"
batches=$(sql "SELECT count(*) FROM ingest_batches WHERE status = 'loaded'")
step "$sent points in $batches batches loaded"
"$bin/ep-archive" replay --archive "$EP_ARCHIVE_URI" --tenant demo 2>"$work/replay.err" \
  | "$bin/ep-load" --db "$DATABASE_URL" 2>>"$work/replay.err" || fail "archive replay | ep-load"
[ "$(sql "SELECT count(*) FROM datapoints")" = "$sent" ] || fail "replay changed the point count"
[ "$(sql "SELECT count(*) FROM ingest_batches")" = "$batches" ] || fail "replay changed the batch count"

step "train and score (edgepulse-job train, score)"
export EP_SCORE_LOOKBACK=7h EP_TRAIN_HISTORY=7h
"$job" train >/dev/null 2>"$work/train.err" || fail "edgepulse-job train"
"$job" score 2>"$work/score.err" || fail "edgepulse-job score"
wait_for "[ -s '$work/received.ndjson' ]" 10 || fail "no webhook received"

# A second score run while the first holds the lock: 75, nothing run.
set +e
flock "$EP_LOCK_DIR/score.lock" "$job" score 2>"$work/locked.err"; rc=$?
set -e
[ "$rc" = 75 ] || fail "overlapping score run exited $rc, want 75"

# The same windows again: stable alert ids, alert state → nothing delivered twice.
before=$(wc -l <"$work/received.ndjson")
"$job" score 2>"$work/score2.err" || fail "second edgepulse-job score"
# Files mode carries ep-score's state between runs (next to the alert state).
[ -s "$work/score-state.demo.json" ] || fail "edgepulse-job score kept no ep-score state"
grep -q "state from $work/score-state.demo.json" "$work/score2.err" \
  || fail "the second score run did not read the first one's state"

python3 - "$work/received.ndjson" "$work/truth.ndjson" "$before" 2>"$work/zz-assertions.err" <<'EOPY' || fail "alert assertions"
import json, sys
from datetime import datetime
recv = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
truth = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
before = int(sys.argv[3])
bad = [r for r in recv if not r.get("valid")]
assert not bad, f"{len(bad)} webhooks failed signature checks: {bad[:3]}"
dups = [r for r in recv if r.get("duplicate")]
new_after = [r for r in recv[before:] if not r.get("duplicate")]
assert not new_after, f"the second score run delivered {len(new_after)} new alerts"
ids = [r["webhook_id"] for r in recv if not r.get("duplicate")]
assert len(ids) == len(set(ids)), "an alert id was delivered twice"
ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
alerts = [r["data"] for r in recv if not r.get("duplicate")]
# Spikes, drops and level shifts of the simulated size must be caught; stuck and
# missing stretches are reported (their detection is ep-score's business, not this test's).
detectable = [t for t in truth if t["type"] in ("spike", "drop", "drift")]
def hits(t):
    s, e = ts(t["start"]), ts(t["end"])
    return [a for a in alerts if a.get("device") == t["device"] and a.get("metric") == t["metric"]
            and s - 600 <= ts(a["end"]) <= e + 900]
missed = [t for t in detectable if not hits(t)]
twice = [t for t in detectable if len(hits(t)) > 1]
assert detectable, "ep-sim injected no spike, drop or drift"
assert not missed, f"{len(missed)} of {len(detectable)} injected anomalies not alerted: {missed[:3]}"
assert not twice, f"{len(twice)} injected anomalies alerted more than once: {twice[:3]}"
others = [t["type"] + (" alerted" if hits(t) else " not alerted") for t in truth if t not in detectable]
print(f"e2e: {len(detectable)} injected spikes/drops/drifts each alerted once; {len(alerts)} alerts "
      f"in all; {len(dups)} duplicate deliveries recognised; all signatures valid; "
      f"other anomalies: {', '.join(others) or 'none'}", file=sys.stderr)
EOPY
cat "$work/zz-assertions.err" >&2

step "scores into Postgres for ep-api (ep-score --db)"
# ep-score stores every score in anomaly_scores and still echoes the records; running it
# twice must store each window once.
for pass in 1 2; do
  "$bin/ep-features" --db "$DATABASE_URL" --tenant demo --since 7h 2>/dev/null \
    | "$bin/ep-score" --db "$DATABASE_URL" --models "$MODEL_ARTEFACT_STORE" 2>"$work/score-db.err" \
      >"$work/scores.ndjson" || { cat "$work/score-db.err" >&2; fail "ep-score --db (pass $pass)"; }
done
stored=$(psql -X -At -d "$db" -c "SELECT count(*) FROM anomaly_scores") || fail "counting anomaly_scores"
[ "$stored" = "$(wc -l <"$work/scores.ndjson")" ] \
  || fail "anomaly_scores holds $stored rows, ep-score wrote $(wc -l <"$work/scores.ndjson") scores"

step "ep-api over the same data"
"$bin/ep-api" --listen "${EP_DEMO_LISTEN:-127.0.0.1:0}" --db "$DATABASE_URL" 2>"$work/api.err" &
api=$!
pids+=($api)
wait_for "grep -q 'listening on http://' '$work/api.err'" 20 || fail "ep-api did not start"
aaddr=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$work/api.err" | head -1)
devices=$(curl -sf -H "X-API-Key: $api_key" "http://$aaddr/v1/devices" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))') \
  || fail "GET /v1/devices"
[ "$devices" = 3 ] || fail "ep-api lists $devices devices, want 3"
api_loaded=$(curl -sf -H "X-API-Key: $api_key" "http://$aaddr/v1/batches?from=30d" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["loaded"])') \
  || fail "GET /v1/batches"
[ "$api_loaded" = "$batches" ] || fail "ep-api reports $api_loaded loaded batches, Postgres $batches"
# The anomalies ep-api serves (what the dashboard shows) are exactly the scored ones.
curl -sf -H "X-API-Key: $api_key" "http://$aaddr/v1/anomalies?limit=1000" >"$work/api-anomalies.json" \
  || fail "GET /v1/anomalies"
api_anoms=$(python3 - "$work/api-anomalies.json" "$work/scores.ndjson" <<'EOPY'
import json, sys
api = {(a["device"], a["metric"], a["end"], a["label"]) for a in json.load(open(sys.argv[1]))["items"]}
scored = {(s["device"], s["metric"], s["end"], s["label"]) for s in map(json.loads, open(sys.argv[2])) if s["anomaly"]}
assert api == scored, f"ep-api anomalies differ from the scored ones: only in API {api - scored}, only scored {scored - api}"
print(len(api))
EOPY
) || fail "ep-api anomalies"
step "ep-api: $devices devices, $api_loaded batches, $api_anoms anomalies in Postgres"

step "db mode (EP_STORE=db: models table, ep-score --since-last)"
EP_STORE=db "$job" train >/dev/null 2>"$work/train-db.err" || { cat "$work/train-db.err" >&2; fail "edgepulse-job train (db)"; }
[ "$(sql "SELECT count(*) FROM models WHERE active")" -gt 0 ] || fail "ep-train --db stored no models"
# ep-score must read the table, not the model directory: empty the directory first.
rm -rf "$MODEL_ARTEFACT_STORE"/*
EP_STORE=db "$job" score >/dev/null 2>"$work/score-dbjob.err" || { cat "$work/score-dbjob.err" >&2; fail "edgepulse-job score (db)"; }
grep -q "models from the models table" "$work/score-dbjob.err" || fail "ep-score did not take models from the table"
by_model=$(sql "SELECT count(*) FROM anomaly_scores a JOIN models m ON a.model = 'demo/' || m.name || '@' || m.version")
[ "$by_model" -gt 0 ] || fail "no score names a model of the models table"
EP_STORE=db "$job" score >/dev/null 2>"$work/score-dbjob2.err" || { cat "$work/score-dbjob2.err" >&2; fail "second edgepulse-job score (db)"; }
step "db mode: $(sql "SELECT count(*) FROM models WHERE active") models from the table scored $by_model windows"
echo "e2e: ok"
if [ -n "${EP_DEMO:-}" ]; then
  cat <<EOD

EdgePulse demo — what just happened
  $(sed 's/^ep-sim: //' "$work/sim.err" | tail -1), posted over HTTP to ep-ingest
  all $sent acknowledged points are in Postgres once, loaded by ep-load --follow from the
  archive (lag 0); replaying the archive changed nothing
  $(grep -h '^ep-train' "$work/train.err" | tail -1)
  $(grep -h '^ep-score' "$work/score.err" | tail -1)
  $(grep -h '^ep-alert' "$work/score.err" | tail -1); signatures verified by the receiver
  ep-api sees $devices devices, $api_loaded loaded batches, $api_anoms anomalous windows

  dashboard: http://$aaddr/      API key: $api_key
EOD
  if [ -t 0 ]; then
    echo "  (Ctrl-C stops the demo and drops its database)"
    wait "$api" || true
  fi
fi
