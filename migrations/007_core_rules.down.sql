-- Reverses 007. The view selects tov.leader_activity's columns with a.*, so it holds the new column
-- until it is dropped; recreated as version 6 had it, with its grant.
DROP VIEW tov.status;
ALTER TABLE tov.leader_activity DROP COLUMN done_at_start;
CREATE VIEW tov.status AS
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
           CASE WHEN n.status = 'scoring' THEN n.reason ELSE a.reason END AS shown_reason
    FROM tov.leader_activity a LEFT JOIN next_model n ON true
), progress AS (
    SELECT shown, shown_reason, detail, shown_done, shown_total, shown_unit,
           CASE WHEN shown_done > 0 AND shown_started < now() - interval '1 second'
                THEN shown_done / extract(epoch FROM now() - shown_started)::float8 END AS rate
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
GRANT SELECT ON tov.status TO tov_reader;



DROP INDEX tov.jobs_fifo_order;
DROP INDEX tov.jobs_fifo_retry_order;


-- Requests served under 7 but not started count as started (the old rule's meaning of "taken").
UPDATE tov.training_requests SET started_at = coalesce(started_at, served_at) WHERE served_at IS NOT NULL;
DROP INDEX tov.training_requests_pending;
ALTER TABLE tov.training_requests DROP COLUMN served_at, DROP COLUMN served_by;
