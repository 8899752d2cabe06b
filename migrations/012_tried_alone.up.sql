-- Schema version 12: a job counts the times its row was scored alone and did not finish
-- (`tried_alone`), apart from its claims (`attempts`, the fencing number). A kill from outside (a
-- deploy, the OOM killer, the fault suite's SIGKILLs) charges every row a claim holds, scored or not;
-- only a row that keeps failing while it is the one row being scored is evidence of a poison row.
-- `max_attempts` now bounds the tries: the batch's, then each try alone.
ALTER TABLE tov.jobs ADD COLUMN tried_alone int NOT NULL DEFAULT 0 CHECK (tried_alone >= 0);

-- Statistics for the small tables the status views read. Autovacuum analyzes a table after 50
-- changed rows, which tov.targets and tov.target_zval (one row per target) never reach, and a table
-- never analyzed is planned as ten pages of rows: tov.target_status was then estimated past
-- `jit_above_cost` and compiled on every read (48 ms instead of 0.6 ms; every tovd session also turns
-- JIT off since this version, but a monitoring query from psql or Grafana does not).
ANALYZE tov.targets, tov.target_zval, tov.selection_state, tov.model_versions, tov.base_models;
