#!/bin/bash
# The example receiver (Python's hmac module: an independent implementation) verifies
# what ep-alert sends, during a secret rotation, and spots replays by webhook-id.
# Usage: example_receiver_test.sh EP_ALERT RECEIVER_PY
set -euo pipefail
ep_alert=$1 receiver=$2
# The receiver listens on loopback, which ep-alert's egress policy allows only when told.
alert=("$ep_alert" --allow-egress 127.0.0.1)
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- receiver:" >&2; cat "$dir/received" >&2; exit 1; }

old=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
new=whsec_c2Vjb25kLXNlY3JldC1rZXktMjQtYnl0ZXM=
mkfifo "$dir/port"
# The receiver knows only the NEW secret; ep-alert signs with both (rotation).
python3 "$receiver" --port 0 --port-file "$dir/port" --secret "$new" >"$dir/received" 2>"$dir/receiver.err" &
pid=$!
read -r port <"$dir/port"   # blocks until the receiver is listening

export EP_TEST_OLD_SECRET=$old
cat >"$dir/rules.toml" <<TOML
[[webhooks]]
name = "py"
url = "http://127.0.0.1:$port/hook"
secrets = ["env:EP_TEST_OLD_SECRET", "$new"]

[[rules]]
name = "spikes"
consecutive = 1
resolve = true
webhooks = ["py"]
TOML
score() {  # window index, anomaly
  printf '{"kind":"score","tenant":"acme","device":"d1","metric":"temp","start":"2026-01-05T10:%02d:00Z","end":"2026-01-05T10:%02d:00Z","score":%s,"anomaly":%s,"label":"%s"}\n' \
    $(( $1 * 5 )) $(( $1 * 5 + 5 )) "$([ "$2" = true ] && echo 0.95 || echo 0.05)" "$2" "$([ "$2" = true ] && echo spike || echo normal)"
}
{ score 0 true; score 1 false; score 2 true; } >"$dir/scores.ndjson"

"${alert[@]}" --rules "$dir/rules.toml" "$dir/scores.ndjson" >"$dir/alerts1" 2>"$dir/err1" || fail "first run exited $?: $(cat "$dir/err1")"
[ "$(grep -c '"status":"delivered"' "$dir/alerts1")" = 3 ] || fail "expected 3 delivered: $(cat "$dir/alerts1")"
# Without --state the same stream is sent again: same webhook-ids, so the receiver sees duplicates.
"${alert[@]}" --rules "$dir/rules.toml" "$dir/scores.ndjson" >"$dir/alerts2" 2>"$dir/err2" || fail "second run: $(cat "$dir/err2")"

[ "$(grep -c '"valid": true' "$dir/received")" = 6 ] || fail "expected 6 valid requests"
[ "$(grep -c '"duplicate": false' "$dir/received")" = 3 ] || fail "expected 3 new"
[ "$(grep -c '"duplicate": true' "$dir/received")" = 3 ] || fail "expected 3 duplicates"
grep -q '"type": "anomaly.detected"' "$dir/received" || fail "no anomaly.detected"
grep -q '"type": "anomaly.resolved"' "$dir/received" || fail "no anomaly.resolved"

# A sender with the wrong secret is refused (401: permanent failure for ep-alert).
sed -i "s#secrets = .*#secrets = [\"env:EP_TEST_OLD_SECRET\"]#" "$dir/rules.toml"
set +e
"${alert[@]}" --rules "$dir/rules.toml" "$dir/scores.ndjson" >"$dir/alerts3" 2>"$dir/err3"
rc=$?
set -e
[ "$rc" = 69 ] || fail "wrong secret: expected exit 69, got $rc"
grep -q '"http_status":401' "$dir/alerts3" || fail "expected HTTP 401 records: $(cat "$dir/alerts3")"
[ "$(grep -c '"reason": "no signature matches"' "$dir/received")" -ge 1 ] || fail "receiver did not reject"
echo "ok: example receiver verified ep-alert's signatures (rotation, replays, wrong secret)"
