#!/usr/bin/env python3
"""Writes Tests/IntegrationTests/Fixtures/real_text.jsonl: real BIG-bench natural_instructions rows
for the enrichment test (EnrichmentTests.topScoredRealRowsAreEnrichedForTheValidationTask).

Four subtasks with different kinds of answers; Z_val and a 10 % minority of the pool come from one
of them. Prompts keep only their last 240 characters: the test's 64-token surrogate context keeps
the end of the prompt anyway, and the fixture stays small. Deterministic (seeded), so rerunning it
on the same cache rewrites the same file.

    bash scripts/fetch-bigbench-ni.sh && python3 scripts/make-enrichment-fixture.py
"""
import json
import pathlib
import random

root = pathlib.Path(__file__).resolve().parent.parent
cache = root / ".cache/bigbench-ni/jsonl"
out = root / "Tests/IntegrationTests/Fixtures/real_text.jsonl"

target = "subtask041_qasc_answer_generation"
others = ["subtask024_cosmosqa_answer_generation", "subtask026_drop_question_generation",
          "subtask030_winogrande_full_person"]
# (subtask, split, rows): Z_val 40 rows; pool 80 target rows and 240 of each other subtask.
plan = [(target, "zval", 40), (target, "pool", 80)] + [(name, "pool", 240) for name in others]

rng = random.Random(20261129)
taken = {}
lines = []
for name, split, count in plan:
    if name not in taken:
        rows = [json.loads(line) for line in open(cache / f"{name}.jsonl", encoding="utf-8")]
        rng.shuffle(rows)
        taken[name] = iter(rows)
    for _ in range(count):
        row = next(taken[name])
        lines.append(json.dumps({"split": split, "source": name, "prompt": row["prompt"][-240:],
                                 "response": row["response"]}, ensure_ascii=False))
out.write_text("\n".join(lines) + "\n", encoding="utf-8")
print(f"{len(lines)} rows -> {out.relative_to(root)} ({out.stat().st_size // 1024} KB)")
