-- Schema version 13: the Z_val signal (issue 27, docs/selection.md). At each refresh the trainer cuts
-- the target's Z_val in two halves along its contexts (rows sharing a passage stay together), nudges
-- θ_bas^L with each as the θ_val pass does (and with as many rows of U, the control), and correlates
-- the halves' loss drops on a sample of 512 ready rows outside U, the control's drops partialled out.
-- A Z_val too small, narrow or noisy to trust disagrees with itself.
-- zval_agreement is NULL for a version made before this schema, a Z_val of one row or one context
-- (zval_groups = 1), or a pool of fewer than 64 rows outside U.
ALTER TABLE tov.model_versions
    ADD COLUMN zval_agreement float8,
    ADD COLUMN zval_halves float8,
    ADD COLUMN zval_transfer float8,
    ADD COLUMN zval_helped_share float8,
    ADD COLUMN zval_agreement_rows integer,
    ADD COLUMN zval_groups integer;

-- Per Z_val row of a version: how much the other half's nudge lowers its loss beyond the control's
-- (the row's held-out gain). A row the rest of Z_val does not help (gain <= 0) is often a row of
-- another task: tov.zval_unhelped lists them for each target's live version.
CREATE TABLE tov.validation_signal (
    model_version  integer NOT NULL REFERENCES tov.model_versions ON DELETE CASCADE,
    validation_id  bigint NOT NULL,
    held_out_gain  float8 NOT NULL,
    PRIMARY KEY (model_version, validation_id)
);

-- The verdict `tovd status` prints, one definition read by both status views. The thresholds were
-- chosen on the Z_val study of the three dev targets (docs/evaluation.md, "The Z_val signal"; not
-- validated on other targets): there, no clean Z_val of 100 or 200 rows was low, and a Z_val of 200
-- rows with a quarter off-target was fair or low in 14 of 15 seeds.
-- A Z_val of one context has no halves: low.
CREATE FUNCTION tov.zval_signal(transfer float8, helped_share float8, groups integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN groups = 1 THEN 'low'
                WHEN transfer IS NULL OR helped_share IS NULL THEN NULL
                WHEN transfer < 0.5 OR helped_share < 0.7 THEN 'low'
                WHEN transfer < 0.7 OR helped_share < 0.85 THEN 'fair'
                ELSE 'good' END
$$;

-- 010's views with the signal appended (CREATE OR REPLACE VIEW only appends).
CREATE OR REPLACE VIEW tov.target_status AS
SELECT t.name AS target, t.enabled, t.settings,
       z.version AS zval_version,
       (SELECT count(*) FROM tov.validation v WHERE v.target = t.name) AS zval_rows,
       (SELECT count(*) FROM tov.validation_rejects x JOIN tov.validation v ON v.id = x.validation_id WHERE v.target = t.name) AS zval_rejected,
       cm.model_version, cm.base_version,
       nm.model_version AS next_model_version, nm.status::text AS next_model_status, nm.reason AS next_model_reason,
       CASE WHEN nm.status = 'scoring' THEN (SELECT count(*) FROM tov.jobs j WHERE j.model_version = nm.model_version) END AS rescore_pending,
       nm.rescore_total,
       s.selection_version,
       (SELECT count(*) FROM tov.selection_items i WHERE i.target_id = t.target_id) AS selection_size,
       s.computed_at AS selection_computed_at,
       (SELECT max(r.finished_at) FROM tov.refreshes r JOIN tov.model_versions m USING (model_version) WHERE m.target_id = t.target_id)
           AS last_refresh_finished_at,
       -- Whether the selection is made from the current Z_val: false while a refresh is due or runs.
       (SELECT m.zval_version = z.version FROM tov.model_versions m WHERE m.model_version = cm.model_version) AS zval_current,
       -- Schema version 13: the live selection's Z_val signal (NULL before one is measured).
       cm.zval_agreement, cm.zval_transfer, cm.zval_helped_share,
       tov.zval_signal(cm.zval_transfer, cm.zval_helped_share, cm.zval_groups) AS zval_signal
FROM tov.targets t
JOIN tov.target_zval z ON z.target_id = t.target_id
LEFT JOIN tov.model_versions cm ON cm.target_id = t.target_id AND cm.status = 'complete'
LEFT JOIN tov.model_versions nm ON nm.target_id = t.target_id AND nm.status IN ('training', 'scoring')
LEFT JOIN tov.selection_state s ON s.target_id = t.target_id;

CREATE OR REPLACE VIEW tov.status AS
WITH target AS (
    SELECT t.target_id, t.name, z.version AS zval_version FROM tov.targets t JOIN tov.target_zval z USING (target_id) WHERE t.name = 'default'
), current_model AS (
    SELECT model_version, base_version FROM tov.model_versions WHERE status = 'complete' AND target_id = (SELECT target_id FROM target)
), next_model AS (
    SELECT model_version, status, reason, rescore_total, trained_at FROM tov.model_versions
    WHERE status IN ('training', 'scoring') AND target_id = (SELECT target_id FROM target)
), next_pending AS (
    SELECT count(*) AS n FROM tov.jobs j JOIN next_model n USING (model_version)
), fresh AS (
    SELECT * FROM tov.instances WHERE stopped_at IS NULL AND tov.instance_is_fresh(heartbeat_at)
), lease AS (
    SELECT * FROM tov.leader WHERE lease_until > now()
), act AS (
    SELECT a.*,
           -- A rescoring is counted from the queue: rows enqueued when it started minus rows left.
           CASE WHEN n.status = 'scoring' THEN 'rescoring' ELSE a.activity END AS shown,
           CASE WHEN n.status = 'scoring' THEN greatest(n.rescore_total - (SELECT n FROM next_pending), 0) ELSE a.done END AS shown_done,
           CASE WHEN n.status = 'scoring' THEN n.rescore_total ELSE a.total END AS shown_total,
           CASE WHEN n.status = 'scoring' THEN 'rows' ELSE a.unit END AS shown_unit,
           CASE WHEN n.status = 'scoring' THEN n.trained_at ELSE a.started_at END AS shown_started,
           CASE WHEN n.status = 'scoring' THEN 0 ELSE coalesce(a.done_at_start, a.done) END AS shown_done_at_start,
           CASE WHEN n.status = 'scoring' THEN n.reason ELSE a.reason END AS shown_reason
    FROM tov.leader_activity a LEFT JOIN next_model n ON true
), progress AS (
    SELECT shown, shown_reason, detail, shown_done, shown_total, shown_unit,
           -- Progress made since the activity began over the time it took: a level that merely is
           -- (the ready rows a wait for rows shows) is no rate, and shows none until it moves.
           CASE WHEN shown_done > shown_done_at_start AND shown_started < now() - interval '1 second'
                THEN (shown_done - shown_done_at_start) / extract(epoch FROM now() - shown_started)::float8 END AS rate
    FROM act
)
SELECT
    (SELECT count(*) FROM tov.candidates) AS pool_rows,
    (SELECT count(*) FROM tov.scores s JOIN current_model m USING (model_version)) AS scored,
    (SELECT count(*) FROM tov.jobs WHERE model_version = 0) AS pending,
    (SELECT count(*) FROM tov.rejects) AS rejected,
    (SELECT count(*) FROM tov.base_subset b JOIN tov.base_models m USING (base_version)
        WHERE m.status <> 'failed' AND m.base_version = (SELECT max(base_version) FROM tov.base_models WHERE status <> 'failed')) AS base_subset_rows,
    (SELECT model_version FROM current_model) AS model_version,
    (SELECT model_version FROM next_model) AS next_model_version,
    (SELECT status::text FROM next_model) AS next_model_status,
    (SELECT n FROM next_pending) AS rescore_pending,
    (SELECT zval_version FROM target) AS zval_version,
    (SELECT count(*) FROM tov.validation v JOIN target t ON v.target = t.name) AS zval_rows,
    (SELECT selection_version FROM tov.selection_state WHERE target_id = (SELECT target_id FROM target)) AS selection_version,
    (SELECT count(*) FROM tov.selection_items WHERE target_id = (SELECT target_id FROM target)) AS selection_size,
    (SELECT max(r.started_at) FROM tov.refreshes r JOIN tov.model_versions m USING (model_version) WHERE m.target_id = (SELECT target_id FROM target)) AS last_refresh_started_at,
    (SELECT r.finished_at FROM tov.refreshes r JOIN tov.model_versions m USING (model_version) WHERE m.target_id = (SELECT target_id FROM target) ORDER BY r.id DESC LIMIT 1) AS last_refresh_finished_at,
    (SELECT now() - min(enqueued_at) FROM tov.jobs WHERE model_version = 0) AS oldest_unscored_age,
    (SELECT instance FROM lease) AS leader,
    -- Validated rows that no complete model has scored yet (before the first model: all of them).
    greatest((SELECT count(*) FROM tov.ready)
             - (SELECT count(*) FROM tov.scores s JOIN current_model m USING (model_version))
             - coalesce((SELECT count(*) FROM tov.base_subset b JOIN current_model m USING (base_version)), 0), 0) AS waiting_for_model,
    CASE WHEN NOT EXISTS (SELECT 1 FROM fresh) THEN 'no daemon running'
         WHEN NOT EXISTS (SELECT 1 FROM lease) THEN 'no leader'
         ELSE 'running' END AS daemon_state,
    CASE WHEN NOT EXISTS (SELECT 1 FROM fresh) THEN NULL ELSE (SELECT shown FROM progress) END AS activity,
    (SELECT shown_reason FROM progress) AS activity_reason,
    (SELECT detail FROM progress) AS activity_detail,
    (SELECT shown_done FROM progress) AS activity_done,
    (SELECT shown_total FROM progress) AS activity_total,
    (SELECT shown_unit FROM progress) AS activity_unit,
    (SELECT rate FROM progress) AS activity_rate,
    (SELECT CASE WHEN rate > 0 AND shown_total >= shown_done THEN (shown_total - shown_done) / rate END FROM progress) AS activity_eta_seconds,
    (SELECT count(*) FROM fresh) AS instances_running,
    (SELECT extract(epoch FROM now() - heartbeat_at)::float8 FROM tov.leader) AS leader_heartbeat_age_seconds,
    (SELECT string_agg(DISTINCT settings_error, '; ') FROM fresh) AS settings_error,
    (SELECT count(*) FROM tov.validation_rejects x JOIN tov.validation v ON v.id = x.validation_id JOIN target t ON v.target = t.name) AS zval_rejected,
    -- The θ0 the live selection's base model started from: an imported θ0's name, 'bootstrap', or
    -- NULL before the first complete model version. Appended: CREATE OR REPLACE VIEW only appends.
    (SELECT coalesce(b.theta0, 'bootstrap') FROM current_model m JOIN tov.base_models b USING (base_version)) AS theta0,
    -- Schema version 10: the other columns describe the target 'default'; tov.target_status has one
    -- row per target.
    (SELECT count(*) FROM tov.targets) AS targets,
    -- Schema version 13: the Z_val signal of the live selection's model version (docs/selection.md).
    (SELECT m.zval_agreement FROM current_model c JOIN tov.model_versions m USING (model_version)) AS zval_agreement,
    (SELECT m.zval_transfer FROM current_model c JOIN tov.model_versions m USING (model_version)) AS zval_transfer,
    (SELECT m.zval_helped_share FROM current_model c JOIN tov.model_versions m USING (model_version)) AS zval_helped_share,
    (SELECT tov.zval_signal(m.zval_transfer, m.zval_helped_share, m.zval_groups)
     FROM current_model c JOIN tov.model_versions m USING (model_version)) AS zval_signal;

-- The Z_val rows the rest of Z_val does not help, under each target's live version, least helped first.
CREATE VIEW tov.zval_unhelped AS
SELECT t.name AS target, v.id AS validation_id, s.held_out_gain, v.prompt, v.response, s.model_version
FROM tov.validation_signal s
JOIN tov.model_versions m ON m.model_version = s.model_version AND m.status = 'complete'
JOIN tov.targets t ON t.target_id = m.target_id
JOIN tov.validation v ON v.id = s.validation_id
WHERE s.held_out_gain <= 0
ORDER BY t.name, s.held_out_gain, v.id;
GRANT SELECT ON tov.zval_unhelped TO tov_reader;
