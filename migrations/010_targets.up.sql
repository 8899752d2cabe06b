-- Schema version 10: several targets on one pool (issue 26). One U, θ0, base trajectory and base
-- losses serve K targets; each target has its own Z_val, θ_val trajectory, scores, selection and
-- history. A database of version 9 becomes the one target `default`: its Z_val, model versions and
-- selection are that target's, and every query of DESIGN.md §3 reads it as before (tov.selected and
-- tov.status describe `default`; tov.selections and tov.target_status have a row per target).

-- A target name: plain, so it reads the same in SQL, a flag, a log line and a file name.
CREATE FUNCTION tov.target_name_is_valid(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'
$$;

-- The settings a target may set for itself: those that are per target by nature. Everything that
-- shapes the base model (surrogate, u_size, epochs, lr, pretrain_steps, seed, theta0, method,
-- rebase_growth) stays global in tov.settings, and a key a target does not set is read there.
CREATE FUNCTION tov.target_setting_keys() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['budget', 'policy', 'bins', 'score_fn', 'val_lr_ratio', 'zval_debounce_seconds']
$$;

CREATE FUNCTION tov.target_settings_are_valid(s jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_typeof(s) = 'object'
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(s) e
                       WHERE e.key <> ALL (tov.target_setting_keys()) OR NOT tov.setting_is_valid(e.key, e.value))
$$;

-- The targets. Creating, disabling and dropping one is plain SQL (or `tovd target add|list|drop`):
--   INSERT INTO tov.targets (name, settings) VALUES ('drop', '{"budget": {"rows": 5000}}');
--   UPDATE tov.targets SET enabled = false WHERE name = 'drop';   -- keeps its selection, trains nothing
--   DELETE FROM tov.targets WHERE name = 'drop';                  -- its Z_val, versions, scores, selection
CREATE TABLE tov.targets (
    target_id        integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL UNIQUE CONSTRAINT targets_name_valid CHECK (tov.target_name_is_valid(name)),
    enabled          boolean NOT NULL DEFAULT true,
    settings         jsonb NOT NULL DEFAULT '{}' CONSTRAINT targets_settings_valid CHECK (tov.target_settings_are_valid(settings)),
    created_at       timestamptz NOT NULL DEFAULT now()
);
-- The first row is target_id 1: the backfills below name it so.
INSERT INTO tov.targets (name) VALUES ('default');

-- Each target's Z_val version, bumped by every statement that changes its rows of tov.validation.
-- A table of its own, not columns of tov.targets: a worker locks a target's row while it writes
-- scores under the target's score_fn, and a Z_val write (or a session left open after one) must
-- not hold that lock.
CREATE TABLE tov.target_zval (
    target_id   integer PRIMARY KEY REFERENCES tov.targets ON DELETE CASCADE,
    version     bigint NOT NULL DEFAULT 0,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tov.target_zval (target_id, version, changed_at) SELECT 1, version, changed_at FROM tov.zval_version;

-- The target rows without one belong to, as Z_val rows without one do: 'default' (NULL once it is
-- dropped, which a NOT NULL column then refuses). Writers of schema version 9 keep working on it.
CREATE FUNCTION tov.default_target_id() RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT target_id FROM tov.targets WHERE name = 'default'
$$;

-- A setting as a target sees it: its own value, else the global one (NULL when neither is stored:
-- the documented default applies).
CREATE FUNCTION tov.target_setting(target integer, k text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT settings -> k FROM tov.targets WHERE target_id = target),
                    (SELECT value FROM tov.settings WHERE key = k))
$$;

-- ---------------------------------------------------------------------------------------------
-- Z_val rows carry their target (by name, so an INSERT reads plainly; a renamed target takes its rows
-- along). Without one they are the target `default`'s, as every row before version 10 is.
ALTER TABLE tov.validation ADD COLUMN target text NOT NULL DEFAULT 'default'
    REFERENCES tov.targets (name) ON UPDATE CASCADE ON DELETE CASCADE;
CREATE INDEX validation_by_target ON tov.validation (target, id);

-- A statement that changes tov.validation bumps the Z_val version of each target whose rows it
-- changed (TRUNCATE: every target). Transition tables need one trigger per event; the function reads
-- only the tables of its event.
DROP TRIGGER validation_changed ON tov.validation;
DROP FUNCTION tov.bump_zval_version();
CREATE FUNCTION tov.validation_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT target) INTO changed FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT target) INTO changed FROM (SELECT target FROM old_rows UNION SELECT target FROM new_rows) t;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT target) INTO changed FROM old_rows;
    ELSE
        SELECT array_agg(name) INTO changed FROM tov.targets;
    END IF;
    IF changed IS NOT NULL THEN
        UPDATE tov.target_zval z SET version = z.version + 1, changed_at = now()
        FROM tov.targets t WHERE t.target_id = z.target_id AND t.name = ANY (changed);
        PERFORM pg_notify('tov_validation', array_to_string(changed, ','));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER validation_inserted AFTER INSERT ON tov.validation
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tov.validation_changed();
CREATE TRIGGER validation_updated AFTER UPDATE ON tov.validation
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tov.validation_changed();
CREATE TRIGGER validation_deleted AFTER DELETE ON tov.validation
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tov.validation_changed();
CREATE TRIGGER validation_truncated AFTER TRUNCATE ON tov.validation
    FOR EACH STATEMENT EXECUTE FUNCTION tov.validation_changed();
-- Whoever writes Z_val (tov_writer) need not be able to update tov.target_zval.
ALTER FUNCTION tov.validation_changed() SECURITY DEFINER SET search_path = pg_catalog, tov;

-- A target's settings changing, or a target coming or going, is a settings change to the daemon.
CREATE TRIGGER targets_changed AFTER INSERT OR UPDATE OR DELETE ON tov.targets
    FOR EACH STATEMENT EXECUTE FUNCTION tov.notify_settings();

-- ---------------------------------------------------------------------------------------------
-- Model versions belong to a target: θ_val^1..L trained on its Z_val. At most one per target is
-- being trained or rescored, and at most one per target is complete; a dropped target takes its
-- versions, their checkpoints and scores along.
ALTER TABLE tov.model_versions ADD COLUMN target_id integer NOT NULL DEFAULT 1 REFERENCES tov.targets ON DELETE CASCADE;
ALTER TABLE tov.model_versions ALTER COLUMN target_id SET DEFAULT tov.default_target_id();
DROP INDEX tov.model_versions_one_in_progress;
DROP INDEX tov.model_versions_one_complete;
CREATE UNIQUE INDEX model_versions_one_in_progress ON tov.model_versions (target_id) WHERE status IN ('training', 'scoring');
CREATE UNIQUE INDEX model_versions_one_complete ON tov.model_versions (target_id) WHERE status = 'complete';

-- `tovd refresh --target T` asks for one target; NULL: every target (and every rebase).
ALTER TABLE tov.training_requests ADD COLUMN target_id integer REFERENCES tov.targets ON DELETE CASCADE;

-- ---------------------------------------------------------------------------------------------
-- Selections per target. Each target has its selection_state row (made with the target), its items
-- and its history, numbered by its own selection_version. History has no foreign key to the target:
-- a dropped target's history stays, so an export manifest can still be checked against it.
ALTER TABLE tov.selection_state ADD COLUMN target_id integer NOT NULL DEFAULT 1 REFERENCES tov.targets ON DELETE CASCADE;
ALTER TABLE tov.selection_state ALTER COLUMN target_id DROP DEFAULT;
ALTER TABLE tov.selection_state DROP COLUMN singleton;
ALTER TABLE tov.selection_state ADD PRIMARY KEY (target_id);

CREATE FUNCTION tov.target_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.selection_state (target_id) VALUES (NEW.target_id);
    INSERT INTO tov.target_zval (target_id) VALUES (NEW.target_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER target_created AFTER INSERT ON tov.targets FOR EACH ROW EXECUTE FUNCTION tov.target_created();
ALTER FUNCTION tov.target_created() SECURITY DEFINER SET search_path = pg_catalog, tov;

ALTER TABLE tov.selection_items ADD COLUMN target_id integer NOT NULL DEFAULT 1 REFERENCES tov.targets ON DELETE CASCADE;
ALTER TABLE tov.selection_items ALTER COLUMN target_id SET DEFAULT tov.default_target_id();
ALTER TABLE tov.selection_items DROP CONSTRAINT selection_items_pkey;
ALTER TABLE tov.selection_items ADD PRIMARY KEY (target_id, candidate_id);
CREATE INDEX selection_items_candidate ON tov.selection_items (candidate_id);

ALTER TABLE tov.selection_history ADD COLUMN target_id integer NOT NULL DEFAULT 1;
ALTER TABLE tov.selection_history ALTER COLUMN target_id SET DEFAULT tov.default_target_id();
ALTER TABLE tov.selection_history DROP CONSTRAINT selection_history_pkey;
ALTER TABLE tov.selection_history ADD PRIMARY KEY (target_id, selection_version, candidate_id);

-- Version 3's history triggers, per target.
CREATE OR REPLACE FUNCTION tov.selection_item_cascaded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.selection_history (target_id, selection_version, candidate_id, change, reason, model_version)
    SELECT s.target_id, s.selection_version + 1, OLD.candidate_id, 'out', OLD.reason, s.model_version
    FROM tov.selection_state s WHERE s.target_id = OLD.target_id
    ON CONFLICT (target_id, selection_version, candidate_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tov.candidates_truncate_selection() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.selection_history (target_id, selection_version, candidate_id, change, reason, model_version)
    SELECT s.target_id, s.selection_version + 1, i.candidate_id, 'out', i.reason, s.model_version
    FROM tov.selection_items i JOIN tov.selection_state s USING (target_id)
    ON CONFLICT (target_id, selection_version, candidate_id) DO NOTHING;
    RETURN NULL;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Views people read.

-- Every target's selection, one row per (target, candidate). One target's: WHERE target = 'drop'.
CREATE VIEW tov.selections AS
SELECT t.name AS target, c.id, c.prompt, c.response, c.source, c.meta,
       i.score, i.reason, i.length_bin,
       s.selection_version, i.selected_at
FROM tov.selection_items i
JOIN tov.candidates c ON c.id = i.candidate_id
JOIN tov.selection_state s ON s.target_id = i.target_id
JOIN tov.targets t ON t.target_id = i.target_id;

-- tov.selected keeps its meaning: the selection of the target `default` (the only one of a
-- single-target database), with the columns of version 1.
CREATE OR REPLACE VIEW tov.selected AS
SELECT id, prompt, response, source, meta, score, reason, length_bin, selection_version, selected_at
FROM tov.selections WHERE target = 'default';

-- One row per target: its Z_val, its model versions, its selection and how fresh it is.
CREATE VIEW tov.target_status AS
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
       (SELECT m.zval_version = z.version FROM tov.model_versions m WHERE m.model_version = cm.model_version) AS zval_current
FROM tov.targets t
JOIN tov.target_zval z ON z.target_id = t.target_id
LEFT JOIN tov.model_versions cm ON cm.target_id = t.target_id AND cm.status = 'complete'
LEFT JOIN tov.model_versions nm ON nm.target_id = t.target_id AND nm.status IN ('training', 'scoring')
LEFT JOIN tov.selection_state s ON s.target_id = t.target_id;

-- tov.status: the columns of version 9 (same names and order), read for the target 'default'.
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
    (SELECT count(*) FROM tov.targets) AS targets;

-- The single Z_val version of versions 1-9, kept readable as the target `default`'s.
DROP TABLE tov.zval_version;
CREATE VIEW tov.zval_version AS
SELECT true AS singleton, z.version, z.changed_at FROM tov.target_zval z JOIN tov.targets t USING (target_id) WHERE t.name = 'default';

-- Per-row scores under each target's complete version, with the length bin and rank in bin its
-- selection uses. The columns of version 1, then the target: a single-target database reads it as
-- before; with several targets a candidate has a row per target.
CREATE OR REPLACE VIEW tov.score_details AS
WITH current_model AS (
    SELECT m.model_version, m.target_id,
           coalesce((tov.target_setting(m.target_id, 'bins')::text)::int, 10) AS k
    FROM tov.model_versions m WHERE m.status = 'complete'
), binned AS (
    SELECT s.*, cm.target_id,
           ntile(cm.k) OVER (PARTITION BY s.model_version ORDER BY s.tokens, s.candidate_id) - 1 AS length_bin_now
    FROM tov.scores s JOIN current_model cm USING (model_version)
)
SELECT b.candidate_id, b.model_version, b.score, b.base_loss, b.val_loss, b.base_losses, b.val_losses,
       b.uncertainty, b.tokens, b.length_bin_now AS length_bin,
       row_number() OVER (PARTITION BY b.model_version, b.length_bin_now ORDER BY b.score DESC, b.candidate_id) AS rank_in_bin,
       count(*) OVER (PARTITION BY b.model_version, b.length_bin_now) AS bin_size,
       count(*) OVER (PARTITION BY b.model_version) AS eligible,
       i.reason AS selected_reason,
       t.name AS target
FROM binned b
JOIN tov.targets t ON t.target_id = b.target_id
LEFT JOIN tov.selection_items i ON i.target_id = b.target_id AND i.candidate_id = b.candidate_id;

GRANT SELECT ON tov.selections, tov.target_status, tov.targets TO tov_reader;
-- What an export manifest records (which selection, model and base model, with their settings) and
-- what `tovd export --as-of` reads back: metadata, no weights and no text.
GRANT SELECT ON tov.selection_history, tov.selection_state, tov.model_versions, tov.base_models, tov.target_zval TO tov_reader;
-- Writers name a target for their Z_val rows and may check that it exists.
GRANT SELECT ON tov.targets TO tov_writer;
