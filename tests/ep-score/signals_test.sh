#!/bin/bash
# A long-running ep-score on a live stdin (a FIFO):
#   - SIGHUP reloads models: a version trained while it runs scores the next window;
#   - SIGTERM stops it after the current line with exit 0, its --state saved.
# Waits only on what it can observe (output lines, the process), never on time alone.
# Usage: signals_test.sh EP_SCORE EP_TRAIN
set -euo pipefail
score=$1 train=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/ep-score-signals.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "signals_test: FAIL: $*" >&2; [ -f "$work/err" ] && cat "$work/err" >&2; exit 1; }
# Polls a condition every 20 ms, for up to 20 s.
wait_for() { local i; for ((i = 0; i < 1000; i++)); do eval "$1" && return 0; sleep 0.02; done; return 1; }

# 64 training windows of one series, then three to score (5-minute windows).
window() {  # INDEX MEAN
  local s=$((1767225600 + $1 * 300)) e=$((1767225600 + $1 * 300 + 300))
  printf '{"kind":"window","tenant":"acme","device":"d","metric":"m","start":"%s","end":"%s","n":30,"expected":30,"features":{"mean":%s,"std":%s}}\n' \
    "$(date -u -d "@$s" +%Y-%m-%dT%H:%M:%SZ)" "$(date -u -d "@$e" +%Y-%m-%dT%H:%M:%SZ)" "$2" "1.$(( $1 % 7 ))"
}
for i in $(seq 0 63); do window "$i" "$((20 + i % 5))"; done >"$work/train.ndjson"
"$train" --models "$work/models" --min-windows 32 "$work/train.ndjson" >/dev/null 2>&1 || fail "ep-train v1"

mkfifo "$work/in"
"$score" --models "$work/models" --state "$work/state.json" <"$work/in" >"$work/out" 2>"$work/err" &
pid=$!
exec 3>"$work/in"
lines() { [ -f "$work/out" ] && wc -l <"$work/out" || echo 0; }

window 64 21 >&3
wait_for '[ "$(lines)" -ge 1 ]' || fail "no score for the first window"
grep -q '"model":"acme/d/m@1"' "$work/out" || fail "first window not scored by @1: $(cat "$work/out")"

# Retrain while ep-score runs: @2. Without SIGHUP the cached @1 would go on scoring.
"$train" --models "$work/models" --min-windows 32 "$work/train.ndjson" >/dev/null 2>&1 || fail "ep-train v2"
kill -HUP "$pid"
window 65 22 >&3
wait_for '[ "$(lines)" -ge 2 ]' || fail "no score for the second window"
sed -n 2p "$work/out" | grep -q '"model":"acme/d/m@2"' || fail "after SIGHUP not scored by @2: $(sed -n 2p "$work/out")"
grep -q "models reloaded (SIGHUP)" "$work/err" || fail "the reload was not reported"

# SIGTERM while ep-score waits for input: it finishes the line that comes next, saves
# its state and exits 0 without reading further.
kill -TERM "$pid"
window 66 23 >&3
set +e
wait "$pid"
rc=$?
set -e
pid=
exec 3>&-
[ "$rc" = 0 ] || fail "ep-score exited $rc after SIGTERM, want 0"
[ "$(lines)" = 3 ] || fail "want 3 score records, got $(lines)"
grep -q "stopped by a signal after line 3" "$work/err" || fail "the stop was not reported"
grep -q '"acme"' "$work/state.json" || fail "no state saved on SIGTERM"
echo "signals_test: SIGHUP reloaded @2, SIGTERM stopped after line 3 with the state saved"
