#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds tovd, fetches real data
# (BIG-bench natural_instructions), starts a private PostgreSQL, loads a pool and a validation set,
# runs the daemon until real rows are scored and a selection appears in tov.selected, and shows it.
#
#   bash scripts/demo.sh [TARGET_SUBTASK]
#
# Environment: DEMO_POOL (pool rows, default 6000), DEMO_ZVAL (Z_val rows, default 200),
# DEMO_TARGET_SHARE (share of target-task rows mixed into the pool, default 0.05).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-subtask061_ropes_answer_generation}
pool_rows=${DEMO_POOL:-6000}
zval_rows=${DEMO_ZVAL:-200}
target_share=${DEMO_TARGET_SHARE:-0.05}

bash scripts/install-deps.sh
echo "== building tovd (release)"
swift build -c release --product tovd 2>&1 | tail -n 3
tovd=.build/release/tovd

echo "== fetching BIG-bench natural_instructions (cached in .cache/bigbench-ni)"
bash scripts/fetch-bigbench-ni.sh .cache/bigbench-ni
data=.cache/bigbench-ni/jsonl
[ -f "$data/$target.jsonl" ] || { echo "no subtask $target in $data; pick one of: $(ls $data | head -20 | tr '\n' ' ')" >&2; exit 1; }

echo "== splitting: Z_val from $target, pool = other subtasks + ${target_share} of $target"
mkdir -p .tovd/demo
python3 - "$data" "$target" "$pool_rows" "$zval_rows" "$target_share" <<'PY'
import json, os, random, sys
data, target, pool_rows, zval_rows, share = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
rng = random.Random(0)
def rows(name):
    with open(os.path.join(data, name), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
tgt = rows(target + ".jsonl"); rng.shuffle(tgt)
others = []
for name in sorted(os.listdir(data)):
    if name.endswith(".jsonl") and name not in (target + ".jsonl", "all.jsonl"):
        others.extend(rows(name))
rng.shuffle(others)
n_target = int(pool_rows * share)
zval, pool = tgt[:zval_rows], tgt[zval_rows:zval_rows + n_target] + others[:pool_rows - n_target]
rng.shuffle(pool)
for path, part in ((".tovd/demo/zval.jsonl", zval), (".tovd/demo/pool.jsonl", pool)):
    with open(path, "w", encoding="utf-8") as f:
        for r in part:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(f"Z_val {len(zval)} rows, pool {len(pool)} rows ({n_target} from the target task)")
PY

echo "== starting the private PostgreSQL in .tovd/pg"
$tovd dev-db start >/dev/null
url=$($tovd dev-db url)
export DATABASE_URL="$url"
$tovd migrate up
psql -q "$url" -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
TRUNCATE tov.candidates, tov.validation, tov.base_models, tov.selection_items, tov.selection_history CASCADE;
UPDATE tov.selection_state SET selection_version = 0, model_version = NULL, settings = NULL;
-- A surrogate sized for a 2-core demo; production defaults are in migrations/001.
UPDATE tov.settings SET value = '{"layers": 2, "width": 128, "heads": 4, "context": 128, "vocab": 2048}' WHERE key = 'surrogate';
UPDATE tov.settings SET value = '1024' WHERE key = 'u_size';
UPDATE tov.settings SET value = '2' WHERE key = 'epochs';
UPDATE tov.settings SET value = '300' WHERE key = 'pretrain_steps';
UPDATE tov.settings SET value = '0.001' WHERE key = 'lr';
UPDATE tov.settings SET value = '2' WHERE key = 'zval_debounce_seconds';
UPDATE tov.settings SET value = '{"fraction": 0.05}' WHERE key = 'budget';
SQL
$tovd import .tovd/demo/zval.jsonl --into validation
$tovd import .tovd/demo/pool.jsonl

echo "== running the daemon until the pool is scored and selected (log: .tovd/demo/tovd.log)"
$tovd run --workers 1 --metrics-port 0 > .tovd/demo/tovd.log 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
started=$(date +%s)
while true; do
  sleep 5
  status=$($tovd status --json)
  # What the daemon is doing, as a person reads it: the activity with its progress, then the counts.
  python3 - "$status" "$(( $(date +%s) - started ))" <<'PY'
import json, sys
s, t = json.loads(sys.argv[1]), sys.argv[2]
a = s.get("activity") or {}
doing = a.get("name") or s["daemon_state"]
if a.get("total"):
    doing += f' {a.get("done") or 0}/{a["total"]} {a.get("unit") or ""}'.rstrip()
    if a.get("eta_seconds") is not None: doing += f', ETA {a["eta_seconds"]:.0f} s'
print(f'  {t:>4}s  {doing:<44} scored {s["scored"]}, waiting {s["waiting_for_model"]}, selected {s["selected"]}')
PY
  python3 -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if s["model_version"] and s["pending"]==0 and s["rescore_pending"]==0 and s["selected"]>0 else 1)' "$status" && break
  kill -0 $daemon 2>/dev/null || { echo "the daemon stopped; see .tovd/demo/tovd.log" >&2; tail -20 .tovd/demo/tovd.log >&2; exit 1; }
done
kill -TERM $daemon; wait $daemon || true
trap - EXIT

echo "== result"
$tovd status
psql "$url" -P pager=off <<SQL
\echo 'Share of target-task rows ($target): pool vs selection (score half vs random half)'
SELECT 'pool (scored)' AS part, count(*) AS rows, round(100.0 * avg((c.source = '$target')::int), 1) AS target_pct
  FROM tov.scores s JOIN tov.candidates c ON c.id = s.candidate_id
  WHERE s.model_version = (SELECT model_version FROM tov.status)
UNION ALL
SELECT 'selected: ' || reason, count(*), round(100.0 * avg((source = '$target')::int), 1) FROM tov.selected GROUP BY reason;
\echo 'Top 5 selected rows by score'
SELECT id, left(regexp_replace(prompt, '\s+', ' ', 'g'), 60) AS prompt, round(score::numeric, 4) AS score, source
  FROM tov.selected WHERE reason = 'score' ORDER BY score DESC LIMIT 5;
SQL
echo "Query it yourself: psql \"$url\" -c 'SELECT * FROM tov.selected LIMIT 5'"
echo "Explain a row:     DATABASE_URL=\"$url\" $tovd explain ID"
echo "Stop the database: $tovd dev-db stop"
