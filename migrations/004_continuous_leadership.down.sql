-- Reverses 004: tov.status back to its version-1 columns, leadership back to the advisory lock.
DROP VIEW tov.status;
CREATE VIEW tov.status AS
WITH current_model AS (
    SELECT model_version, base_version FROM tov.model_versions WHERE status = 'complete'
), next_model AS (
    SELECT model_version, status FROM tov.model_versions WHERE status IN ('training', 'scoring')
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
    (SELECT count(*) FROM tov.jobs j JOIN next_model n USING (model_version)) AS rescore_pending,
    (SELECT version FROM tov.zval_version) AS zval_version,
    (SELECT count(*) FROM tov.validation) AS zval_rows,
    (SELECT selection_version FROM tov.selection_state) AS selection_version,
    (SELECT count(*) FROM tov.selection_items) AS selection_size,
    (SELECT max(started_at) FROM tov.refreshes) AS last_refresh_started_at,
    (SELECT finished_at FROM tov.refreshes ORDER BY id DESC LIMIT 1) AS last_refresh_finished_at,
    (SELECT now() - min(enqueued_at) FROM tov.jobs WHERE model_version = 0) AS oldest_unscored_age,
    (SELECT instance FROM tov.leader) AS leader;
GRANT SELECT ON tov.status TO tov_reader;

REVOKE SELECT ON tov.validation FROM tov_reader;
DROP TABLE tov.validation_rejects;
DROP FUNCTION tov.schema_version();
DROP TABLE tov.training_requests;
ALTER TABLE tov.checkpoints DROP COLUMN load_error_at, DROP COLUMN load_error;
ALTER TABLE tov.base_models DROP COLUMN reason, DROP COLUMN pool_rows_at_draw;
ALTER TABLE tov.model_versions DROP COLUMN rescore_total, DROP COLUMN reason, DROP COLUMN val_lr_ratio;
DROP VIEW tov.workers;
DROP FUNCTION tov.instance_is_fresh(timestamptz);
DROP TABLE tov.instances;
DROP TABLE tov.leader_activity;
DROP FUNCTION tov.leader_fence(bigint);
ALTER TABLE tov.leader DROP COLUMN lease_until, DROP COLUMN holder, DROP COLUMN epoch;
