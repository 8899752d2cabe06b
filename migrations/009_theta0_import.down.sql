-- Reverses 009. tov.status gained a column that reads tov.base_models.theta0: the view is dropped
-- and recreated exactly as 007 left it, with its grant, before the column can go. The `theta0`
-- setting goes with its row (a value naming an imported θ0 is lost: version 8 cannot use it), and
-- tov.setting_is_valid is 005's definition again, verbatim; every other stored value it accepts.
DROP VIEW tov.status;
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
    (SELECT count(*) FROM tov.validation_rejects) AS zval_rejected;

GRANT SELECT ON tov.status TO tov_reader;

DELETE FROM tov.settings WHERE key = 'theta0';
CREATE OR REPLACE FUNCTION tov.setting_is_valid(k text, v jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    layers  numeric;
    width   numeric;
    heads   numeric;
    context numeric;
    vocab   numeric;
BEGIN
    IF v IS NULL THEN RETURN false; END IF;
    CASE k
    WHEN 'budget' THEN
        -- Exactly one of the two keys. Rows are bounded by what Budget.swift accepts (Int32.max).
        IF jsonb_typeof(v) <> 'object' THEN RETURN false; END IF;
        IF (SELECT count(*) FROM jsonb_object_keys(v)) <> 1 THEN RETURN false; END IF;
        IF v ? 'rows' THEN RETURN tov.setting_is_integer(v->'rows', 0, 2147483647); END IF;
        RETURN tov.setting_is_number(v->'fraction', 0.000000001, 1);
    WHEN 'policy' THEN RETURN v IN ('"score_random"', '"score_only"', '"score_only_unbinned"', '"random"', '"uncertainty"');
    WHEN 'score_fn' THEN RETURN v IN ('"improvement"', '"abs"', '"relu"');
    WHEN 'method' THEN RETURN v IN ('"A"', '"B"');
    WHEN 'bins' THEN RETURN tov.setting_is_integer(v, 1, 100);
    -- 001's range, kept so that 005's down needs no check: every value valid here is valid there.
    WHEN 'seed' THEN RETURN tov.setting_is_integer(v, -9223372036854775806, 9223372036854775806);
    WHEN 'u_size' THEN RETURN tov.setting_is_integer(v, 16, 10000000);
    WHEN 'epochs' THEN RETURN tov.setting_is_integer(v, 1, 16);
    WHEN 'lr' THEN
        IF NOT tov.setting_is_number(v, 0.000000001, 1) THEN RETURN false; END IF;
        RETURN (v::text)::numeric < 1;
    WHEN 'val_lr_ratio' THEN RETURN tov.setting_is_number(v, 0.000001, 10);
    WHEN 'pretrain_steps' THEN RETURN tov.setting_is_integer(v, 0, 1000000);
    WHEN 'surrogate' THEN
        IF jsonb_typeof(v) <> 'object' THEN RETURN false; END IF;
        -- A misspelt field ("layer") would silently train the default shape.
        IF EXISTS (SELECT FROM jsonb_object_keys(v) f WHERE f NOT IN ('layers', 'width', 'heads', 'context', 'vocab')) THEN
            RETURN false;
        END IF;
        IF v ? 'layers' AND NOT tov.setting_is_integer(v->'layers', 1, 48) THEN RETURN false; END IF;
        IF v ? 'width' AND NOT tov.setting_is_integer(v->'width', 16, 4096) THEN RETURN false; END IF;
        IF v ? 'heads' AND NOT tov.setting_is_integer(v->'heads', 1, 64) THEN RETURN false; END IF;
        IF v ? 'context' AND NOT tov.setting_is_integer(v->'context', 16, 8192) THEN RETURN false; END IF;
        IF v ? 'vocab' AND NOT tov.setting_is_integer(v->'vocab', 260, 65536) THEN RETURN false; END IF;
        layers  := coalesce((v->>'layers')::numeric, 4);
        width   := coalesce((v->>'width')::numeric, 256);
        heads   := coalesce((v->>'heads')::numeric, 4);
        context := coalesce((v->>'context')::numeric, 256);
        vocab   := coalesce((v->>'vocab')::numeric, 4096);
        -- Attention splits the width into heads of equal size (ModelConfig's precondition).
        IF width % heads <> 0 THEN RETURN false; END IF;
        -- The parameter count of Surrogate's ParameterLayout (tied LM head): wte + wpe, per layer
        -- 12·C² weights and 13·C biases and norms, and the final norm. At most 10^8: every
        -- checkpoint is one bytea row, which the daemon reads in text (hex) form, 2 bytes per byte,
        -- and PostgreSQL refuses a value over 1 GB; 4·10^8 bytes of float32 stays clear of that
        -- (and training needs 16 bytes per parameter, 1.6 GB). The default shape has 4.3·10^6.
        RETURN (vocab + context) * width + layers * (12 * width * width + 13 * width) + 2 * width <= 100000000;
    WHEN 'zval_debounce_seconds' THEN RETURN tov.setting_is_number(v, 0, 86400);
    WHEN 'max_attempts' THEN RETURN tov.setting_is_integer(v, 1, 100);
    WHEN 'max_text_bytes' THEN RETURN tov.setting_is_integer(v, 1, 1073741824);
    -- Pool growth since U was drawn that makes the leader train a new base model: 0 turns it off.
    -- At least 1.1: each rebase rescores the whole pool, and a factor that rounds to 1.0 as a
    -- Double would start one on every tick.
    WHEN 'rebase_growth' THEN RETURN v = '0' OR tov.setting_is_number(v, 1.1, 1000000);
    ELSE RETURN false;
    END CASE;
END
$$;

ALTER TABLE tov.base_models DROP COLUMN theta0;
DROP TABLE tov.theta0s;
DROP FUNCTION tov.theta0_name_is_valid(text);
