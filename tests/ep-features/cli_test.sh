#!/usr/bin/env bash
# Process-level tests of ep-features: golden stdout/stderr on bad input, exit codes,
# --strict, env default, files and stdin, SIGPIPE, and --help options vs the man page.
set -u
BIN=$1
MAN=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1"
    echo "  expected: $(printf '%q' "$2")"
    echo "  actual:   $(printf '%q' "$3")"
    fail=1
  else
    echo "ok: $1"
  fi
}
pt() { printf '{"kind":"point","tenant":"t","device":"%s","metric":"m","ts":"2026-01-05T10:00:%02d.000Z","value":%s}\n' "$1" "$2" "$3"; }

# 1. Bad lines are reported with their line numbers; valid lines still make windows.
{
  pt d 0 1; pt d 1 2
  echo 'not json'
  echo '{"kind":"window","tenant":"t"}'
  echo '{"kind":"point","tenant":"t","device":"d","ts":"2026-01-05T10:00:02Z","value":1}'
  echo '{"kind":"point","tenant":"t","device":"d","metric":"m","ts":"2026-01-05 25:00","value":1}'
  pt d 2 4; pt d 3 4
  echo
  pt d 5 8
} > "$T/in.ndjson"
"$BIN" --window 3s "$T/in.ndjson" > "$T/out" 2> "$T/err"
check "exit 65 when some lines were rejected" 65 $?
check "rejects name file, line and field" "ep-features: $T/in.ndjson:3: invalid JSON at byte 1: Invalid value.
ep-features: $T/in.ndjson:4: kind: expected \"point\" or \"batch\", got \"window\"
ep-features: $T/in.ndjson:5: metric: required
ep-features: $T/in.ndjson:6: ts: not an RFC 3339 timestamp
ep-features: summary: 10 lines, 5 points, 2 windows, 1 series, 4 rejected, 0 late" "$(cat "$T/err")"
check "valid lines still produce windows" '{"kind":"window","tenant":"t","device":"d","metric":"m","start":"2026-01-05T10:00:00.000Z","end":"2026-01-05T10:00:03.000Z","n":3,"expected":3,"features":{"mean":2.3333333333333335,"std":1.247219128924647,"median":2,"mad":1,"min":1,"max":4,"range":3,"slope":1.5,"missing_rate":0,"stuck":false,"flat_surprise":0.2497714205589174,"diff_std":0.5,"max_abs_diff":2,"last":4}}
{"kind":"window","tenant":"t","device":"d","metric":"m","start":"2026-01-05T10:00:03.000Z","end":"2026-01-05T10:00:06.000Z","n":2,"expected":3,"features":{"mean":6,"std":2,"median":6,"mad":2,"min":4,"max":8,"range":4,"slope":2,"missing_rate":0.33333333333333337,"stuck":false,"flat_surprise":0,"diff_std":0,"max_abs_diff":4,"delta_mean":3.6666666666666665,"last":8}}' "$(cat "$T/out")"

# 2. --strict stops at the first bad line (still exit 65), JSON diagnostics carry the line.
"$BIN" --strict --log-format json --window 3s < "$T/in.ndjson" > "$T/out" 2> "$T/err"
check "--strict exits 65" 65 $?
check "--strict json diagnostics" '{"tool":"ep-features","level":"error","context":"stdin","line":3,"reason":"invalid JSON at byte 1: Invalid value.","code":"data"}' "$(head -1 "$T/err")"
check "--strict stops reading" 1 "$(grep -c '"summary: 3 lines' "$T/err")"

# 2b. A line longer than --max-line-bytes is one reject, the next line is read normally.
{ pt l 0 1; printf '{"kind":"point","pad":"%0200d"}\n' 0; pt l 1 2; } > "$T/long"
"$BIN" --max-line-bytes 150 --window 10s "$T/long" > "$T/out" 2> "$T/err"
check "over-long line: exit 65" 65 $?
check "over-long line: reported with its number" "ep-features: $T/long:2: line longer than --max-line-bytes" "$(head -1 "$T/err")"
check "over-long line: neighbours still make a window" 1 "$(grep -c '"n":2' "$T/out")"

# 3. Clean input exits 0; files are read in order, "-" is stdin; late points are counted.
{ pt a 0 1; pt a 1 1; } > "$T/a"
{ pt a 9 1; pt a 2 1; pt a 3 1; } | "$BIN" --window 1s --max-empty 0 "$T/a" - > "$T/out" 2> "$T/err"
check "clean run exits 0" 0 $?
check "late points are counted in the summary" "ep-features: summary: 5 lines, 3 points, 3 windows, 1 series, 0 rejected, 2 late, 7 empty windows skipped (--max-empty)" "$(cat "$T/err")"
check "files then stdin, in order" 3 "$(wc -l < "$T/out")"

# 4. FEATURE_WINDOW_SEC is the default window; the flag wins over it.
for i in 0 1 2 3 4 5 6 7 8 9; do pt e "$i" "$i"; done > "$T/e"
FEATURE_WINDOW_SEC=5 "$BIN" "$T/e" 2>/dev/null > "$T/out"
check "FEATURE_WINDOW_SEC=5 gives 5 s windows" 2 "$(wc -l < "$T/out")"
FEATURE_WINDOW_SEC=5 "$BIN" --window 2s "$T/e" 2>/dev/null > "$T/out"
check "--window wins over FEATURE_WINDOW_SEC" 5 "$(wc -l < "$T/out")"
"$BIN" --window 3pts --hop 1pts "$T/e" 2>/dev/null > "$T/out"
check "count windows: one per point" 10 "$(wc -l < "$T/out")"

# 5. Usage errors exit 64; --help and --version exit 0 on stdout.
"$BIN" --window 5 --hop 1pts < /dev/null > /dev/null 2> "$T/err"
check "mixed time window and count hop is misuse" 64 $?
"$BIN" --window banana < /dev/null > /dev/null 2>&1
check "bad --window exits 64" 64 $?
"$BIN" --tenant x < /dev/null > /dev/null 2>&1
check "--tenant without --db exits 64" 64 $?
"$BIN" --help > "$T/help"
check "--help exits 0" 0 $?
check "--help shows an example pipeline" 1 "$(grep -c '| ep-features' "$T/help")"
"$BIN" --version | grep -q 'ep-features (EdgePulse)'
check "--version" 0 $?
"$BIN" no-such-file > /dev/null 2> "$T/err"
check "unreadable input exits 74" 74 $?

# 6. A closed pipe ends the run quietly with status 0.
awk 'BEGIN { for (i = 0; i < 200000; i++) printf "{\"kind\":\"point\",\"tenant\":\"t\",\"device\":\"p\",\"metric\":\"m\",\"ts\":\"2026-01-05T10:00:00.%03dZ\",\"value\":%d}\n", i % 1000, i }' > "$T/big"
"$BIN" --window 1pts "$T/big" 2> "$T/err" | head -1 > /dev/null
check "SIGPIPE: exit 0" 0 "${PIPESTATUS[0]}"
check "SIGPIPE: no error message" 0 "$(grep -vc 'summary' "$T/err")"

# 7. SIGTERM does not lose open windows: the run drains its input and flushes.
mkfifo "$T/fin" "$T/fout"
"$BIN" --window 2pts --hop 2pts < "$T/fin" > "$T/fout" 2> "$T/sig.err" &
pid=$!
exec 3> "$T/fin" 4< "$T/fout"
{ pt s 0 1; pt s 1 2; } >&3
read -r first <&4   # the first window is out: ep-features is waiting for input
pt s 2 3 >&3        # opens a second, partial window
kill -TERM "$pid"
exec 3>&-
rest=$(cat <&4)
exec 4<&-
wait "$pid"
check "SIGTERM: exit 0" 0 $?
check "SIGTERM: the open window is flushed" '"n":2 "n":1' "$(printf '%s\n%s\n' "$first" "$rest" | grep -o '"n":[0-9]*' | tr '\n' ' ' | sed 's/ $//')"

# 8. Every option in --help is documented in the man page.
if [ -f "$MAN" ]; then
  missing=""
  for opt in $(grep -oE -- '--[a-z][a-z-]+' "$T/help" | sort -u); do
    grep -q -- "${opt//-/\\\\-}" "$MAN" || grep -qF -- "$opt" "$MAN" || missing="$missing $opt"
  done
  check "man page documents every --help option" "" "$missing"
  man -l "$MAN" > /dev/null 2> "$T/manerr"
  check "man page renders without warnings" "" "$(cat "$T/manerr")"
else
  echo "FAIL: no man page at $MAN"
  fail=1
fi
exit $fail
