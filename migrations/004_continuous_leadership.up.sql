-- Schema version 4: leadership as a renewed lease, leader jobs that report what they do, rebases and
-- forced refreshes, a heartbeat per instance, and a status that says what the daemon is doing.

-- ---------------------------------------------------------------------------------------------
-- Leader lease. A session advisory lock cannot tell a hung leader from a busy one (a stopped process
-- keeps its socket open, and Postgres holds the lock until the kernel notices the dead peer), so
-- leadership is a lease the leader renews and another instance takes once it has expired. Each
-- take-over bumps `epoch`; every write a leader job makes runs in a transaction that first calls
-- tov.leader_fence(epoch), so a leader that wakes up after losing the lease writes nothing.
ALTER TABLE tov.leader
    ADD COLUMN epoch        bigint NOT NULL DEFAULT 0,
    ADD COLUMN holder       text,           -- one process: instance name plus a random token
    ADD COLUMN lease_until  timestamptz;    -- database clock; NULL = nobody leads

-- Locks the lease row FOR KEY SHARE for the rest of the caller's transaction, or raises TV001 when
-- `expected` is no longer the live epoch. A take-over locks the row FOR UPDATE first, so it waits
-- until every fenced transaction of the old leader has ended; the renewal is a plain UPDATE, which
-- KEY SHARE does not block, so a long selection update never delays the lease it runs under.
CREATE FUNCTION tov.leader_fence(expected bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM tov.leader WHERE epoch = expected AND lease_until > clock_timestamp() FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'leader lease epoch % is no longer held by this instance', expected
            USING ERRCODE = 'TV001', HINT = 'Another instance took over leadership; this one stops its leader jobs.';
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- What the trainer is doing, written by the leader's trainer and read by tov.status. One row.
CREATE TABLE tov.leader_activity (
    singleton    boolean PRIMARY KEY DEFAULT true CONSTRAINT leader_activity_singleton CHECK (singleton),
    activity     text NOT NULL DEFAULT 'idle',
    reason       text,              -- why: bootstrap, Z_val changed, surrogate changed, ...
    detail       text,              -- one line for a person
    done         bigint,
    total        bigint,
    unit         text,              -- steps, epochs, rows
    started_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tov.leader_activity DEFAULT VALUES;

-- One row per running process, upserted every few seconds: who is alive, what it does, how fast.
CREATE TABLE tov.instances (
    holder           text PRIMARY KEY,
    instance         text NOT NULL,
    host             text,
    pid              integer,
    workers          integer NOT NULL,
    leader_capable   boolean NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    heartbeat_at     timestamptz NOT NULL DEFAULT now(),
    stopped_at       timestamptz,
    rows_scored      bigint NOT NULL DEFAULT 0,
    rows_per_second  double precision,
    last_error       text,
    last_error_at    timestamptz,
    settings_error   text
);

-- Seconds after which an instance without a heartbeat counts as gone.
CREATE FUNCTION tov.instance_is_fresh(heartbeat timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT heartbeat > now() - interval '30 seconds' $$;

CREATE VIEW tov.workers AS
SELECT i.instance,
       CASE WHEN l.holder = i.holder AND l.lease_until > now() THEN 'leader'
            WHEN i.workers > 0 THEN 'worker' ELSE 'standby' END AS role,
       CASE WHEN i.stopped_at IS NOT NULL THEN 'stopped'
            WHEN tov.instance_is_fresh(i.heartbeat_at) THEN 'running'
            ELSE 'no heartbeat' END AS state,
       i.heartbeat_at, extract(epoch FROM now() - i.heartbeat_at)::float8 AS heartbeat_age_seconds,
       i.workers, i.rows_scored, i.rows_per_second, i.last_error, i.last_error_at, i.settings_error,
       i.host, i.pid, i.started_at, i.holder
FROM tov.instances i CROSS JOIN tov.leader l;

-- ---------------------------------------------------------------------------------------------
-- Model versions are keyed on everything that shapes θ_val: the base model, Z_val, the method and
-- ε/η. A version remembers why it was made and how many rows its rescoring started with.
ALTER TABLE tov.model_versions
    ADD COLUMN val_lr_ratio   double precision,
    ADD COLUMN reason         text,
    ADD COLUMN rescore_total  bigint;
UPDATE tov.model_versions m SET val_lr_ratio = coalesce((b.config ->> 'val_lr_ratio')::float8, 0.1)
FROM tov.base_models b WHERE b.base_version = m.base_version;

-- A base model remembers the pool it drew U from, so growth by `rebase_growth` triggers a new one.
ALTER TABLE tov.base_models
    ADD COLUMN pool_rows_at_draw  bigint,
    ADD COLUMN reason             text;
UPDATE tov.base_models SET pool_rows_at_draw = (SELECT count(*) FROM tov.ready) WHERE status = 'complete';

-- A worker that cannot load a checkpoint (missing, checksum, decode) says so here; the trainer
-- retrains what it names instead of leaving scoring stuck on it.
ALTER TABLE tov.checkpoints ADD COLUMN load_error text, ADD COLUMN load_error_at timestamptz;

-- `tovd refresh` and `tovd rebase`: a request the trainer honours at its next decision.
CREATE TABLE tov.training_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CONSTRAINT training_requests_kind CHECK (kind IN ('refresh', 'rebase')),
    requested_by  text NOT NULL DEFAULT current_user,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz
);
CREATE TRIGGER training_requested AFTER INSERT ON tov.training_requests
    FOR EACH STATEMENT EXECUTE FUNCTION tov.notify_settings();

-- The schema version, for read-only roles that may not read tov_migrate (`tovd status` as tov_reader).
CREATE FUNCTION tov.schema_version() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT coalesce(max(version), 0) FROM tov_migrate.versions
$$;

-- Z_val rows the trainer left out of its last training, with the validator's reason (the same
-- checks as candidates). Rewritten at every refresh; tov.status counts them.
CREATE TABLE tov.validation_rejects (
    validation_id  bigint PRIMARY KEY REFERENCES tov.validation (id) ON DELETE CASCADE,
    reason         tov.reject_reason NOT NULL,
    detail         text NOT NULL,
    checked_at     timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- tov.status: the columns of version 1 (same names and order) followed by what the daemon is doing.
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

-- Readers see the selection, Z_val (with it, the training set `tovd export --with-validation`
-- writes) and what the daemon is doing; nothing of the pool or the models (least privilege, as in 001).
GRANT SELECT ON tov.workers, tov.validation TO tov_reader;
GRANT EXECUTE ON FUNCTION tov.schema_version() TO tov_reader, tov_writer;
