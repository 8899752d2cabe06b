#!/usr/bin/env bash
# The ToV paper's ablations on one target with the reduced-LR proxy protocol (docs/evaluation.md):
# score_fn (improvement / abs / relu), Method A vs B, L ∈ {1, 2, 4}, |Z_val| ∈ {50, 100, 200, 500}
# and two surrogate sizes, plus proxies trained on selection + Z_val. Each variant is one `tovd evaluate` run into eval/ablations/<name>
# (resumable: rerunning skips finished runs); `tovd evaluate-compare` then writes the table.
#
#   bash scripts/ablations.sh                  # drop, pool 5,000, 2 seeds, about 2 hours on 2 cores
#
# θ0 is pretrained once (about 15 minutes on a quiet 2-core machine) and cached in .cache/tovd-eval for
# every variant of the same surrogate; surrogate=4x256 pretrains its own. Method B's θ_val trajectory
# starts from θ_bas's state (θ0, fresh AdamW moments) and sees U in the same order, so method=B
# compares the methods only.
#   TARGET=subtask061_ropes_answer_generation POOL=10000 SEEDS=3 bash scripts/ablations.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-subtask028_drop_answer_generation}"
POOL="${POOL:-5000}"
SEEDS="${SEEDS:-2}"
OUT="${OUT:-eval/ablations}"
swift build -c release --product tovd 2>&1 | tail -n 1
tovd=.build/release/tovd
[ -f .cache/bigbench-ni/.done ] || $tovd data fetch bigbench-ni

# name | flags that differ from the baseline (improvement, Method A, L = 2, |Z_val| = 200, 2 × 128)
variants=(
  "baseline|"
  "score_fn=abs|--score-fn abs"
  "score_fn=relu|--score-fn relu"
  "method=B|--method B"
  "L=1|--epochs 1"
  "L=4|--epochs 4"
  "zval=50|--zval 50"
  "zval=100|--zval 100"
  "zval=500|--zval 500"
  # About 5× the compute of 2 × 128 per seed: two seeds (the fewest an interval takes; the last --seeds wins).
  "surrogate=4x256|--layers 4 --width 256 --seeds 2"
)
dirs=()
for variant in "${variants[@]}"; do
  name="${variant%%|*}"
  flags="${variant#*|}"
  dir="$OUT/${name//=/-}"
  dirs+=("$dir")
  start=$(date +%s)
  # shellcheck disable=SC2086
  # Both arms (selection + Z_val, selection alone) are in every run since the protocol of issue 23.
  $tovd evaluate --target "$TARGET" --pool "$POOL" --seeds "$SEEDS" \
    --policies score_random,random --lrs 3e-4,1e-4 --output "$dir" $flags > "$dir.log" 2>&1 \
    || { echo "$name failed; see $dir.log" >&2; exit 1; }
  echo "$name: $(( $(date +%s) - start )) s wall"
done
$tovd evaluate-compare --title "Ablations on $TARGET (pool $POOL, $SEEDS seeds)" "${dirs[@]}" | tee "$OUT/ablations.md"
