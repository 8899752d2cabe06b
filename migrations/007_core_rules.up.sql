-- Schema version 7: what the trainer's rules need to keep their promises (issue: the daemon's core).

-- Operator requests (`tovd refresh`, `tovd rebase`) are served when the work they started finishes,
-- not when it starts: a leader that dies mid-training leaves them pending and the next one serves
-- them. started_at still says when work on a request last began.
ALTER TABLE tov.training_requests
    ADD COLUMN served_at timestamptz,
    ADD COLUMN served_by text;          -- 'base model 3', 'model version 12'
UPDATE tov.training_requests SET served_at = started_at, served_by = 'before schema version 7' WHERE started_at IS NOT NULL;
CREATE INDEX training_requests_pending ON tov.training_requests (id) WHERE served_at IS NULL;

-- The activity's `done` when it began: tov.status derives a rate from progress since then, so a
-- level (ready rows while waiting for rows) is never divided by the wait's age into a rate.
ALTER TABLE tov.leader_activity ADD COLUMN done_at_start bigint;

-- Claims are first in, first out across new rows and rescoring: with model_version first, a steady
-- stream of inserts kept a refresh's rescoring jobs waiting without bound. (jobs_claim_order stays:
-- status counts jobs per model version with it.)
CREATE INDEX jobs_fifo_order ON tov.jobs (enqueued_at, model_version, candidate_id) WHERE attempts = 0;
CREATE INDEX jobs_fifo_retry_order ON tov.jobs (enqueued_at, model_version, candidate_id) WHERE attempts > 0;

CREATE OR REPLACE VIEW tov.status AS
WITH current_model AS (
    SELECT model_version, base_version FROM tov.model_versions WHERE status = 'complete'
), next_model AS (
    SELECT model_version, status, reason, rescore_total, trained_at FROM tov.model_versions WHERE status IN ('training', 'scoring')
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
    (SELECT version FROM tov.zval_version) AS zval_version,
    (SELECT count(*) FROM tov.validation) AS zval_rows,
    (SELECT selection_version FROM tov.selection_state) AS selection_version,
    (SELECT count(*) FROM tov.selection_items) AS selection_size,
    (SELECT max(started_at) FROM tov.refreshes) AS last_refresh_started_at,
    (SELECT finished_at FROM tov.refreshes ORDER BY id DESC LIMIT 1) AS last_refresh_finished_at,
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
    (SELECT count(*) FROM tov.validation_rejects) AS zval_rejected;

