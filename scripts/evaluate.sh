#!/usr/bin/env bash
# Reproduces the headline of docs/evaluation.md: fetches the data if needed, then runs `tovd evaluate` on
# the two dev targets in both settings, the transfer setting (the pool holds only other subtasks) and the
# in-distribution one (3 % of the pool is the rest of the target subtask), once more with proxies
# fine-tuned on selection + Z_val, and last (the most expensive: a 4 × 256 θ0 per target) the transfer
# setting with a 4 × 256 proxy besides the 2 × 128 surrogate-sized one.
# Each run writes report.md / report.html / report.json / options.json / runs.jsonl under eval/<name>
# (git-ignored) and resumes if interrupted (finished fine-tunes from runs.jsonl, each seed's scores from
# scores-seed<N>.json, a θ0 pretraining from its last held-out check or Ctrl-C); a run that finished (its report.json exists) is skipped, since resuming it would
# only load the data and models to write the same report (RERUN=1 does it anyway; after changing POOL,
# SEEDS, ... move eval/ away first). θ0 and the proxy's θ0 are cached in
# .cache/tovd-eval and shared by all runs. Several hours on 2 cores (docs/evaluation.md gives the measured times).
# Set POOL, SEEDS, SHARE, PROXY or EXTRA (more flags for every run) to change the protocol, TOVD to
# use an already-built binary (e.g. a copy, so rebuilding the tree meanwhile cannot touch the run), and
# RUNS to run only the named ones (e.g. RERUN=1 RUNS="ropes-transfer drop-transfer" adds a policy that
# is new since they finished, keeping their finished fine-tunes).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TOVD:-}" ]; then swift build -c release --product tovd 2>&1 | tail -n 1; fi
tovd="${TOVD:-.build/release/tovd}"
[ -f .cache/bigbench-ni/.done ] || $tovd data fetch bigbench-ni
POOL="${POOL:-20000}"
SEEDS="${SEEDS:-3}"
SHARE="${SHARE:-0.03}"
PROXY="${PROXY:-4x256}"
EXTRA="${EXTRA:-}"
run() {  # name target flags...
  local name=$1 target=$2; shift 2
  if [ -n "${RUNS:-}" ] && [[ " $RUNS " != *" $name "* ]]; then return; fi
  if [ -z "${RERUN:-}" ] && [ -f "eval/$name/report.json" ]; then
    echo "$name: finished earlier (eval/$name/report.md); RERUN=1 runs it again"
    return
  fi
  local start; start=$(date +%s)
  # shellcheck disable=SC2086
  nice -n 10 $tovd evaluate --target "$target" --pool "$POOL" --seeds "$SEEDS" --lrs 3e-4,1e-4,3e-5 \
    --output "eval/$name" "$@" $EXTRA
  echo "$name: $(( $(date +%s) - start )) s wall"
}
targets="subtask061_ropes_answer_generation subtask028_drop_answer_generation"
short() { local s=${1#subtask*_}; echo "${s%%_*}"; }
# One setting for both targets before the next, so an interrupted run has the comparison across targets.
for target in $targets; do run "$(short "$target")-transfer" "$target"; done
for target in $targets; do run "$(short "$target")-in-pool" "$target" --target-share "$SHARE"; done
for target in $targets; do run "$(short "$target")-with-zval" "$target" --proxy-with-zval --policies score_random,less,random; done
for target in $targets; do run "$(short "$target")-proxy" "$target" --proxy "$PROXY" --policies score_random,less,random; done
