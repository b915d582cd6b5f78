#!/bin/bash
# The repository stands alone: no file refers to documents a reader of it does not have
# (a design or style document outside the tree, numbered work items, a sibling directory).
# Prints each offending line; exits 1 when there is one.
set -u
root=${1:?usage: stands_alone.sh SOURCE_DIR}
cd "$root" || exit 2
pattern='DESIGN|STYLE [0-9]|\.\./shared|/work/shared|[Ii]ssues? #?[0-9]+'
# Every tracked or untracked source file, without build trees and installed npm packages.
hits=$(grep -rnE "$pattern" . \
  --exclude-dir=.git --exclude-dir=node_modules --exclude-dir='build*' \
  --exclude-dir=corpus --exclude=stands_alone.sh --binary-files=without-match)
if [ -n "$hits" ]; then
  echo "$hits"
  echo "stands_alone: the lines above refer to documents outside the repository" >&2
  exit 1
fi
echo "stands_alone: no references outside the repository"
