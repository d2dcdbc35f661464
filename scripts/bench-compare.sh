#!/usr/bin/env bash
# Alternating benchmark runs (docs/performance.md, issue 10): the code before this round (BEFORE dir) and
# after (AFTER dir), ROUNDS times each, every bench in turn, so that the
# machine's noise falls on both alike. Prints the figures of each run.
set -u
# Usage: BEFORE=DIR [AFTER=DIR] [ROUNDS=3] [BENCHES="publish ingest sync mesh page"]
#   scripts/bench-compare.sh
# BEFORE is a checkout of the older commit (`git worktree add DIR COMMIT`);
# AFTER defaults to this checkout.
: "${BEFORE:?set BEFORE to a checkout of the code to compare against}"
AFTER=${AFTER:-$(cd "$(dirname "$0")/.." && pwd)}
ROUNDS=${ROUNDS:-3}
BENCHES=${BENCHES:-"publish ingest sync mesh"}
for round in $(seq 1 "$ROUNDS"); do
  for bench in $BENCHES; do
    for side in before after; do
      dir=$BEFORE; [ "$side" = after ] && dir=$AFTER
      cd "$dir" || exit 1
      if [ "$bench" = mesh ]; then
        out=$(MESH_SCENARIO=live timeout 600 cargo bench -q --bench mesh 2>&1 | grep -E 'latency|held every|duplicates' | tr '\n' ' ')
      elif [ "$bench" = page ]; then
        out=$(timeout 600 cargo bench -q --bench page 2>&1 | grep -E '^server time|RSVP on an open page' | tr '\n' ' ')
      else
        out=$(timeout 600 cargo bench -q --bench "$bench" 2>&1 | grep -E 'thrpt:|sync:|receiver store' | tr -s ' ' | tr '\n' ' ')
      fi
      echo "round $round $bench $side: $out"
    done
  done
done
