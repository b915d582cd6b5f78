#!/bin/bash
# Every long option in ep-load --help appears in the man page (docs/conventions.md 17), and the page
# renders without warnings.
set -euo pipefail
bin=$1 page=$2
missing=0
for opt in $("$bin" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
  if ! grep -qF -- "${opt//-/\\-}" "$page"; then echo "man page lacks $opt"; missing=1; fi
done
out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)
if [ -n "$out" ]; then echo "man warnings: $out"; missing=1; fi
exit $missing
