#!/usr/bin/env bash
# Reproduces docs/evaluation.md: fetches the data if needed, then runs `tovd evaluate` on the two
# targets. Each run writes report.md / report.html / report.json / runs.jsonl under eval/<target>
# (git-ignored) and resumes if interrupted. Set POOL, SEEDS to change the size.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product tovd 2>&1 | tail -n 1
tovd=.build/release/tovd
[ -f .cache/bigbench-ni/.done ] || $tovd data fetch bigbench-ni
for spec in "subtask061_ropes_answer_generation ${POOL_ROPES:-20000} ${SEEDS_ROPES:-3}" \
            "subtask028_drop_answer_generation ${POOL_DROP:-20000} ${SEEDS_DROP:-3}"; do
  set -- $spec
  start=$(date +%s)
  $tovd evaluate --target "$1" --pool "$2" --seeds "$3" --lrs 3e-4,1e-4,3e-5 --output "eval/$1"
  echo "$1: $(( $(date +%s) - start )) s wall"
done
