#!/usr/bin/env bash
# The protocol of docs/evaluation.md (issue 23): for each of three dev targets of three different source
# datasets — ropes (061), drop (028) and cosmosqa (024, not a sibling of either) — `tovd evaluate` with the
# target held out by dataset and by context, Z_val + selection vs Z_val + random vs Z_val alone (and the
# selection alone) over SEEDS seeds, every reduced LR, two proxy sizes (PROXIES) at context PROXY_CONTEXT,
# and the baselines less_adam, dsir, random_length_matched and random. Two settings per target: transfer
# (no row of the target's dataset in the pool) and in-pool (SHARE of the pool is the target's own rows,
# held out from Z_val and test by context).
#
# Resumable: each run writes report.json (the one committed format), options.json, runs.jsonl,
# scores-seed<N>.json and baseline-costs.json under $OUT/<name> (git-ignored); an interrupted run resumes
# from them (finished fine-tunes, each seed's scores, θ0 from its last held-out check or Ctrl-C). A run whose
# report.json exists is skipped (RERUN=1 runs it anyway, to add seeds, LRs or policies to it; other
# settings are refused: move $OUT away first). θ0s are cached in .cache/tovd-eval and shared.
# After each run its Markdown is rendered beside it (report.md, not committed):
#   tovd evaluate --render $OUT/<name>/report.json --format md|html
#
# The full protocol takes many hours on 2 cores (docs/evaluation.md says what was run). SMOKE=1 runs the
# same protocol at smoke scale (one target, small pool, 2 seeds, tiny θ0s: minutes) into eval/smoke/.
# Set POOL, SEEDS, SHARE, PROXIES, PROXY_CONTEXT, LRS or EXTRA (more flags for every run) to change the
# protocol, TOVD to use an already-built binary, TARGETS to pick targets and RUNS to run only the named runs
# (e.g. RUNS="ropes-transfer").
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TOVD:-}" ]; then swift build -c release --product tovd 2>&1 | tail -n 1; fi
tovd="${TOVD:-.build/release/tovd}"
[ -f .cache/bigbench-ni/.done ] || $tovd data fetch bigbench-ni

if [ -n "${SMOKE:-}" ]; then
  OUT="${OUT:-eval/smoke}"
  POOL="${POOL:-3000}"; SEEDS="${SEEDS:-2}"; LRS="${LRS:-3e-4,1e-4}"; SHARE="${SHARE:-0.03}"
  PROXIES="${PROXIES:-1x64 2x128}"; PROXY_CONTEXT="${PROXY_CONTEXT:-256}"
  TARGETS="${TARGETS:-subtask061_ropes_answer_generation}"
  # Small everything else: Z_val, test, θ0's text and steps, |U|, the LESS projection.
  SCALE="--zval 50 --test-rows 200 --pretrain-rows 3000 --pretrain-steps 40 --pretrain-eval-every 20 --u-size 512 --less-dims 1024"
  SETTINGS="${SETTINGS:-transfer}"
else
  OUT="${OUT:-eval}"
  POOL="${POOL:-20000}"; SEEDS="${SEEDS:-5}"; LRS="${LRS:-3e-4,1e-4,3e-5}"; SHARE="${SHARE:-0.03}"
  PROXIES="${PROXIES:-2x128 4x256}"; PROXY_CONTEXT="${PROXY_CONTEXT:-256}"
  TARGETS="${TARGETS:-subtask061_ropes_answer_generation subtask028_drop_answer_generation subtask024_cosmosqa_answer_generation}"
  SCALE=""
  SETTINGS="${SETTINGS:-transfer in-pool}"
fi
EXTRA="${EXTRA:-}"
proxy_flags=""
for p in $PROXIES; do proxy_flags="$proxy_flags --proxy $p"; done

run() {  # name target flags...
  local name=$1 target=$2; shift 2
  if [ -n "${RUNS:-}" ] && [[ " $RUNS " != *" $name "* ]]; then return; fi
  if [ -z "${RERUN:-}" ] && [ -f "$OUT/$name/report.json" ]; then
    echo "$name: finished earlier ($OUT/$name/report.json); RERUN=1 runs it again"
    return
  fi
  local start; start=$(date +%s)
  mkdir -p "$OUT"
  # shellcheck disable=SC2086
  nice -n 10 $tovd evaluate --target "$target" --pool "$POOL" --seeds "$SEEDS" --lrs "$LRS" \
    $proxy_flags --proxy-context "$PROXY_CONTEXT" --output "$OUT/$name" $SCALE "$@" $EXTRA > "$OUT/$name.log"
  $tovd evaluate --render "$OUT/$name/report.json" --format md > "$OUT/$name/report.md"
  echo "$name: $(( $(date +%s) - start )) s wall; $OUT/$name/report.md"
}
short() { local s=${1#subtask*_}; echo "${s%%_*}"; }
# One setting for every target before the next, so an interrupted run has the comparison across targets.
for setting in $SETTINGS; do
  for target in $TARGETS; do
    case $setting in
      transfer) run "$(short "$target")-transfer" "$target" ;;
      in-pool) run "$(short "$target")-in-pool" "$target" --target-share "$SHARE" ;;
      *) echo "unknown setting $setting (transfer, in-pool)" >&2; exit 1 ;;
    esac
  done
done
