#!/bin/bash
# Every jq filter the docs show (README.md, docs/*.md, man/*.1) compiles with this
# machine's jq (Debian 12: jq 1.6, where e.g. `end` is a keyword and `{end}` is a syntax
# error). A filter is what follows `jq [-opts]` at the start of a line, after a pipe or
# a backquote: a '…' quoted string or one bare word. Prints each failing one; exits 1.
set -u
root=${1:?usage: jq_snippets.sh SOURCE_DIR}
cd "$root" || exit 2
command -v jq >/dev/null || { echo "jq_snippets: jq is missing (scripts/bootstrap installs it)" >&2; exit 1; }
n=0 bad=0
while IFS=$'\t' read -r where filter; do
  n=$((n + 1))
  # Compile without running: the branch is never taken, so no input is needed.
  if ! err=$(jq -n "if false then ($filter) else empty end" 2>&1); then
    printf "%s: jq '%s':\n%s\n" "$where" "$filter" "$err"
    bad=$((bad + 1))
  fi
done < <(for f in README.md docs/*.md man/*.1; do
  sed 's/\\-/-/g' "$f" | grep -nE "(^|[|\`] *)jq( +-[a-zA-Z]+)* +('[^']*'|[^ '|\`]+)" \
    | while IFS= read -r line; do
        num=${line%%:*}
        snippet=$(printf '%s\n' "${line#*:}" | grep -oE "(^|[|\`] *)jq( +-[a-zA-Z]+)* +('[^']*'|[^ '|\`]+)" \
          | sed -E "s/^.*jq( +-[a-zA-Z]+)* +//; s/^'(.*)'$/\\1/")
        while IFS= read -r s; do printf '%s:%s\t%s\n' "$f" "$num" "$s"; done <<<"$snippet"
      done
done)
[ "$n" -gt 0 ] || { echo "jq_snippets: found no jq filter in the docs" >&2; exit 1; }
if [ "$bad" -gt 0 ]; then
  echo "jq_snippets: $bad of $n jq filters in the docs do not compile with $(jq --version)" >&2
  exit 1
fi
echo "jq_snippets: $n jq filters compile with $(jq --version)"
