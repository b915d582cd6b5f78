#!/bin/bash
# Every long option in every sub-command's --help appears in the man page (docs/conventions.md 17),
# and the page renders without warnings.
set -euo pipefail
bin=$1 page=$2
missing=0
subs=("" migrate check "tenant add" "tenant list" "tenant disable" "tenant enable" "plan add" "plan set"
      "plan list" "key issue" "key revoke" "key list" usage retention)
for s in "${subs[@]}"; do
  # shellcheck disable=SC2086
  for opt in $("$bin" $s --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    if ! grep -qF -- "${opt//-/\\-}" "$page"; then
      echo "man page lacks $opt (ep-admin $s)"; missing=1
    fi
  done
done
out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)
if [ -n "$out" ]; then echo "man warnings: $out"; missing=1; fi
exit $missing
