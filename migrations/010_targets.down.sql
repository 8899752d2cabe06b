-- Reverses 010. Version 9 has one target, so a database with others refuses to go down rather than
-- lose them: drop them first (DELETE FROM tov.targets WHERE name <> 'default', which deletes their
-- Z_val, model versions, scores and selections). The target `default` becomes the whole schema
-- again; its rows keep every id. Views of version 9 are recreated verbatim, with their grants.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM tov.targets WHERE name <> 'default') THEN
        RAISE EXCEPTION 'schema version 9 has a single target, and this database has others: %',
            (SELECT string_agg(name, ', ' ORDER BY name) FROM tov.targets WHERE name <> 'default')
            USING HINT = 'Drop them first: DELETE FROM tov.targets WHERE name <> ''default''; (that deletes their Z_val, scores and selections).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tov.targets WHERE name = 'default') THEN
        RAISE EXCEPTION 'schema version 9 needs the target ''default'', which was dropped'
            USING HINT = 'Create it again: INSERT INTO tov.targets (name) VALUES (''default'');';
    END IF;
END
$$;

REVOKE SELECT ON tov.selection_history, tov.selection_state, tov.model_versions, tov.base_models FROM tov_reader;
DROP VIEW tov.score_details;
DROP VIEW tov.status;
DROP VIEW tov.selected;
DROP VIEW tov.target_status;
DROP VIEW tov.selections;

-- Z_val's version, a table again.
CREATE TABLE tov.zval_version_v9 (
    singleton   boolean PRIMARY KEY DEFAULT true CONSTRAINT zval_version_singleton CHECK (singleton),
    version     bigint NOT NULL DEFAULT 0,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tov.zval_version_v9 (version, changed_at) SELECT version, changed_at FROM tov.zval_version;
DROP VIEW tov.zval_version;
ALTER TABLE tov.zval_version_v9 RENAME TO zval_version;
ALTER TABLE tov.zval_version RENAME CONSTRAINT zval_version_v9_pkey TO zval_version_pkey;

DROP TRIGGER validation_inserted ON tov.validation;
DROP TRIGGER validation_updated ON tov.validation;
DROP TRIGGER validation_deleted ON tov.validation;
DROP TRIGGER validation_truncated ON tov.validation;
DROP FUNCTION tov.validation_changed();
CREATE FUNCTION tov.bump_zval_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE tov.zval_version SET version = version + 1, changed_at = now() RETURNING version INTO v;
    PERFORM pg_notify('tov_validation', v::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER validation_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tov.validation
    FOR EACH STATEMENT EXECUTE FUNCTION tov.bump_zval_version();

-- Selections: the target `default`'s rows are the selection.
ALTER TABLE tov.selection_history DROP CONSTRAINT selection_history_pkey;
DELETE FROM tov.selection_history WHERE target_id <> (SELECT target_id FROM tov.targets WHERE name = 'default');
ALTER TABLE tov.selection_history DROP COLUMN target_id;
ALTER TABLE tov.selection_history ADD PRIMARY KEY (selection_version, candidate_id);

DROP INDEX tov.selection_items_candidate;
ALTER TABLE tov.selection_items DROP CONSTRAINT selection_items_pkey;
ALTER TABLE tov.selection_items DROP COLUMN target_id;
ALTER TABLE tov.selection_items ADD PRIMARY KEY (candidate_id);

DROP TRIGGER target_created ON tov.targets;
DROP FUNCTION tov.target_created();
ALTER TABLE tov.selection_state DROP CONSTRAINT selection_state_pkey;
ALTER TABLE tov.selection_state DROP COLUMN target_id;
ALTER TABLE tov.selection_state ADD COLUMN singleton boolean NOT NULL DEFAULT true CONSTRAINT selection_state_singleton CHECK (singleton);
ALTER TABLE tov.selection_state ADD PRIMARY KEY (singleton);

CREATE OR REPLACE FUNCTION tov.selection_item_cascaded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.selection_history (selection_version, candidate_id, change, reason, model_version)
    SELECT s.selection_version + 1, OLD.candidate_id, 'out', OLD.reason, s.model_version
    FROM tov.selection_state s
    ON CONFLICT (selection_version, candidate_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tov.candidates_truncate_selection() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.selection_history (selection_version, candidate_id, change, reason, model_version)
    SELECT s.selection_version + 1, i.candidate_id, 'out', i.reason, s.model_version
    FROM tov.selection_items i CROSS JOIN tov.selection_state s
    ON CONFLICT (selection_version, candidate_id) DO NOTHING;
    RETURN NULL;
END
$$;

ALTER TABLE tov.training_requests DROP COLUMN target_id;

DROP INDEX tov.model_versions_one_in_progress;
DROP INDEX tov.model_versions_one_complete;
ALTER TABLE tov.model_versions DROP COLUMN target_id;
CREATE UNIQUE INDEX model_versions_one_in_progress ON tov.model_versions ((true)) WHERE status IN ('training', 'scoring');
CREATE UNIQUE INDEX model_versions_one_complete ON tov.model_versions ((true)) WHERE status = 'complete';

DROP INDEX tov.validation_by_target;
ALTER TABLE tov.validation DROP COLUMN target;

DROP TRIGGER targets_changed ON tov.targets;
DROP TABLE tov.target_zval;
DROP FUNCTION tov.target_setting(integer, text);
DROP FUNCTION tov.default_target_id();
DROP TABLE tov.targets;
DROP FUNCTION tov.target_settings_are_valid(jsonb);
DROP FUNCTION tov.target_setting_keys();
DROP FUNCTION tov.target_name_is_valid(text);

CREATE VIEW tov.selected AS
SELECT c.id, c.prompt, c.response, c.source, c.meta,
       i.score, i.reason, i.length_bin,
       s.selection_version, i.selected_at
FROM tov.selection_items i
JOIN tov.candidates c ON c.id = i.candidate_id
CROSS JOIN tov.selection_state s;

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
    (SELECT count(*) FROM tov.validation_rejects) AS zval_rejected,
    -- The θ0 the live selection's base model started from: an imported θ0's name, 'bootstrap', or
    -- NULL before the first complete model version. Appended: CREATE VIEW only appends.
    (SELECT coalesce(b.theta0, 'bootstrap') FROM current_model m JOIN tov.base_models b USING (base_version)) AS theta0;

CREATE VIEW tov.score_details AS
WITH current_model AS (
    SELECT model_version FROM tov.model_versions WHERE status = 'complete'
), bin_count AS (
    SELECT coalesce((SELECT (value::text)::int FROM tov.settings WHERE key = 'bins'), 10) AS k
), binned AS (
    -- Version 1's s.*, spelled out: tov.scores has had a length_bin of its own since version 2.
    SELECT s.candidate_id, s.model_version, s.score, s.base_loss, s.val_loss, s.base_losses, s.val_losses, s.uncertainty, s.tokens,
           ntile((SELECT k FROM bin_count)) OVER (ORDER BY s.tokens, s.candidate_id) - 1 AS length_bin
    FROM tov.scores s JOIN current_model USING (model_version)
)
SELECT b.candidate_id, b.model_version, b.score, b.base_loss, b.val_loss, b.base_losses, b.val_losses,
       b.uncertainty, b.tokens, b.length_bin,
       row_number() OVER (PARTITION BY b.length_bin ORDER BY b.score DESC, b.candidate_id) AS rank_in_bin,
       count(*) OVER (PARTITION BY b.length_bin) AS bin_size,
       count(*) OVER () AS eligible,
       i.reason AS selected_reason
FROM binned b LEFT JOIN tov.selection_items i USING (candidate_id);

GRANT SELECT ON tov.selected, tov.status TO tov_reader;
