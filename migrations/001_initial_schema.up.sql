-- tovd schema, version 1: the whole SQL contract of DESIGN.md §3 plus the daemon's internal tables.
-- Users write tov.candidates, tov.validation and tov.settings; they read tov.selected, tov.status,
-- tov.scores, tov.rejects and tov.selection_history. Everything else is internal and may change.

CREATE SCHEMA IF NOT EXISTS tov;

-- ---------------------------------------------------------------------------------------------
-- The pool. INSERT only: tovd never modifies these rows. The identity is GENERATED ALWAYS so bulk
-- loads cannot collide with the sequence.
CREATE TABLE tov.candidates (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prompt      text NOT NULL,
    response    text NOT NULL,
    source      text,
    meta        jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Z_val: the small validation set from the target distribution.
CREATE TABLE tov.validation (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prompt      text NOT NULL,
    response    text NOT NULL,
    meta        jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row: the Z_val version, bumped by every statement that changes tov.validation.
CREATE TABLE tov.zval_version (
    singleton   boolean PRIMARY KEY DEFAULT true CONSTRAINT zval_version_singleton CHECK (singleton),
    version     bigint NOT NULL DEFAULT 0,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tov.zval_version DEFAULT VALUES;

-- ---------------------------------------------------------------------------------------------
-- Settings. Every key is known and every value is checked here, so a typo or a wrong type fails
-- at INSERT/UPDATE time with the constraint's name instead of surprising the daemon later.
CREATE FUNCTION tov.setting_is_valid(k text, v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE k
        WHEN 'budget' THEN
            jsonb_typeof(v) = 'object' AND (
                (v ? 'fraction' AND NOT v ? 'rows' AND jsonb_typeof(v->'fraction') = 'number'
                    AND (v->>'fraction')::float8 > 0 AND (v->>'fraction')::float8 <= 1)
             OR (v ? 'rows' AND NOT v ? 'fraction' AND jsonb_typeof(v->'rows') = 'number'
                    AND (v->>'rows')::numeric >= 0 AND (v->>'rows')::numeric = trunc((v->>'rows')::numeric)))
        WHEN 'policy' THEN v IN ('"score_random"', '"score_only"', '"score_only_unbinned"', '"random"', '"uncertainty"')
        WHEN 'score_fn' THEN v IN ('"improvement"', '"abs"', '"relu"')
        WHEN 'method' THEN v IN ('"A"', '"B"')
        WHEN 'bins' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric BETWEEN 1 AND 100
            AND (v::text)::numeric = trunc((v::text)::numeric)
        WHEN 'seed' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric = trunc((v::text)::numeric)
            AND abs((v::text)::numeric) < 9223372036854775807
        WHEN 'u_size' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric BETWEEN 16 AND 10000000
        WHEN 'epochs' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric BETWEEN 1 AND 16
            AND (v::text)::numeric = trunc((v::text)::numeric)
        WHEN 'lr' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric > 0 AND (v::text)::numeric < 1
        WHEN 'val_lr_ratio' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric > 0 AND (v::text)::numeric <= 10
        WHEN 'pretrain_steps' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric BETWEEN 0 AND 1000000
        WHEN 'surrogate' THEN jsonb_typeof(v) = 'object'
            AND coalesce((v->>'layers')::numeric BETWEEN 1 AND 48, true)
            AND coalesce((v->>'width')::numeric BETWEEN 16 AND 4096, true)
            AND coalesce((v->>'heads')::numeric BETWEEN 1 AND 64, true)
            AND coalesce((v->>'context')::numeric BETWEEN 16 AND 8192, true)
            AND coalesce((v->>'vocab')::numeric BETWEEN 260 AND 65536, true)
        WHEN 'zval_debounce_seconds' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric BETWEEN 0 AND 86400
        WHEN 'max_attempts' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric BETWEEN 1 AND 100
        WHEN 'max_text_bytes' THEN jsonb_typeof(v) = 'number' AND (v::text)::numeric BETWEEN 1 AND 1073741824
        ELSE false
    END
$$;

CREATE TABLE tov.settings (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT settings_value_valid CHECK (tov.setting_is_valid(key, value))
);

INSERT INTO tov.settings (key, value) VALUES
    ('budget', '{"fraction": 0.05}'),
    ('policy', '"score_random"'),
    ('score_fn', '"improvement"'),
    ('method', '"A"'),
    ('bins', '10'),
    ('seed', '0'),
    ('u_size', '4096'),             -- |U|, the random base subset
    ('epochs', '2'),                -- L, scoring epochs (ablation in docs/evaluation.md: L = 4 is no better, at twice the cost)
    ('lr', '0.0003'),               -- η, LR of the base trajectory on U
    ('val_lr_ratio', '0.1'),        -- ε = val_lr_ratio · η, LR of the pass on Z_val
    ('pretrain_steps', '200'),      -- θ0 pretraining steps on U when no θ0 was imported
    ('surrogate', '{"layers": 4, "width": 256, "heads": 4, "context": 256, "vocab": 4096}'),
    ('zval_debounce_seconds', '5'),
    ('max_attempts', '3'),          -- a row that crashes or times out scoring this often is rejected
    ('max_text_bytes', '1048576');

-- ---------------------------------------------------------------------------------------------
-- Work queue (internal). A statement trigger enqueues every new candidate in the inserting
-- transaction, so a row becomes claimable exactly when it commits: no "id > watermark" that
-- misses rows committed out of id order. model_version 0 = ingest (validate, then score under
-- every live model version); model_version > 0 = (re)score under that version.
CREATE TABLE tov.jobs (
    candidate_id   bigint NOT NULL REFERENCES tov.candidates (id) ON DELETE CASCADE,
    model_version  integer NOT NULL DEFAULT 0,
    attempts       integer NOT NULL DEFAULT 0,   -- also the fencing token of the current lease
    lease_until    timestamptz,                  -- NULL = available; leases use the database clock
    worker         text,
    last_error     text,
    enqueued_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (candidate_id, model_version)
);
-- New inserts (model_version 0) come before rescoring so fresh rows stay fresh during a refresh.
CREATE INDEX jobs_claim_order ON tov.jobs (model_version, enqueued_at, candidate_id);
-- Jobs being retried (a crash or an expired lease): claimed one at a time, so kept findable cheaply.
CREATE INDEX jobs_retry_order ON tov.jobs (model_version, enqueued_at, candidate_id) WHERE attempts > 0;

CREATE FUNCTION tov.enqueue_new_candidates() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO tov.jobs (candidate_id) SELECT id FROM new_rows;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('tov_candidates', n::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER candidates_enqueue AFTER INSERT ON tov.candidates
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tov.enqueue_new_candidates();

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

CREATE FUNCTION tov.notify_settings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tov_settings', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE ON tov.settings
    FOR EACH STATEMENT EXECUTE FUNCTION tov.notify_settings();

-- ---------------------------------------------------------------------------------------------
-- Ingest results.
CREATE TYPE tov.reject_reason AS ENUM (
    'empty_prompt', 'empty_response', 'too_long', 'invalid_utf8', 'binary_content',
    'tokenizer_failure', 'repeated_failure'
);

CREATE TABLE tov.rejects (
    candidate_id  bigint PRIMARY KEY REFERENCES tov.candidates (id) ON DELETE CASCADE,
    reason        tov.reject_reason NOT NULL,
    detail        text NOT NULL,
    attempts      integer NOT NULL DEFAULT 1,
    rejected_at   timestamptz NOT NULL DEFAULT now()
);

-- Rows that passed validation; bytes are what the validator measured.
CREATE TABLE tov.ready (
    candidate_id    bigint PRIMARY KEY REFERENCES tov.candidates (id) ON DELETE CASCADE,
    prompt_bytes    integer NOT NULL,
    response_bytes  integer NOT NULL,
    checked_at      timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- Models. A base model is θ0 plus the base trajectory θ_bas^1..L trained on U; a model version is
-- a base model plus the post-validation checkpoints θ_val^1..L for one Z_val version and method.
CREATE TYPE tov.model_status AS ENUM ('training', 'scoring', 'complete', 'superseded', 'failed');

CREATE TABLE tov.base_models (
    base_version  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status        tov.model_status NOT NULL DEFAULT 'training',
    u_size        integer NOT NULL,
    epochs        integer NOT NULL,
    config        jsonb NOT NULL,      -- surrogate config, lr, seed: what the trajectory was trained with
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

-- U: the uniform random base subset, fixed per base model. U rows are never scored (their loss
-- under θ_bas is not an unbiased signal) and so never selected.
CREATE TABLE tov.base_subset (
    base_version  integer NOT NULL REFERENCES tov.base_models ON DELETE CASCADE,
    candidate_id  bigint NOT NULL REFERENCES tov.candidates (id) ON DELETE CASCADE,
    PRIMARY KEY (base_version, candidate_id)
);
CREATE INDEX base_subset_candidate ON tov.base_subset (candidate_id);

CREATE TABLE tov.model_versions (
    model_version      integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    base_version       integer NOT NULL REFERENCES tov.base_models,
    zval_version       bigint NOT NULL,
    method             text NOT NULL CONSTRAINT model_versions_method CHECK (method IN ('A', 'B')),
    status             tov.model_status NOT NULL DEFAULT 'training',
    leader             text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    trained_at         timestamptz,
    completed_at       timestamptz
);
-- At most one version is being trained or rescored at a time, and at most one is complete.
CREATE UNIQUE INDEX model_versions_one_in_progress ON tov.model_versions ((true)) WHERE status IN ('training', 'scoring');
CREATE UNIQUE INDEX model_versions_one_complete ON tov.model_versions ((true)) WHERE status = 'complete';

CREATE TABLE tov.checkpoints (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    base_version   integer NOT NULL REFERENCES tov.base_models ON DELETE CASCADE,
    model_version  integer REFERENCES tov.model_versions ON DELETE CASCADE,
    kind           text NOT NULL CONSTRAINT checkpoints_kind CHECK (kind IN ('theta0', 'base', 'val')),
    epoch          integer NOT NULL,
    data           bytea NOT NULL,     -- checkpoint file: header + LZ4 frame with content checksum
    sha256         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT checkpoints_val_has_version CHECK ((kind = 'val') = (model_version IS NOT NULL))
);
CREATE UNIQUE INDEX checkpoints_identity ON tov.checkpoints (base_version, coalesce(model_version, 0), kind, epoch);

-- ℓ(θ_bas^l, x) depends only on U, so it is computed once per row per base model and reused by
-- every model version under Method A.
CREATE TABLE tov.base_losses (
    candidate_id  bigint NOT NULL REFERENCES tov.candidates (id) ON DELETE CASCADE,
    base_version  integer NOT NULL REFERENCES tov.base_models ON DELETE CASCADE,
    losses        real[] NOT NULL,     -- per scoring epoch l = 1...L
    uncertainty   real NOT NULL,       -- ψ under θ_bas^L
    tokens        integer NOT NULL,    -- response tokens the loss averages over
    PRIMARY KEY (candidate_id, base_version)
);

CREATE TABLE tov.scores (
    candidate_id   bigint NOT NULL REFERENCES tov.candidates (id) ON DELETE CASCADE,
    model_version  integer NOT NULL REFERENCES tov.model_versions ON DELETE CASCADE,
    score          double precision NOT NULL,   -- φ under the score_fn in force
    base_loss      real NOT NULL,               -- mean over epochs of ℓ(θ_bas^l, x)
    val_loss       real NOT NULL,               -- mean over epochs of ℓ(θ_val^l, x)
    base_losses    real[] NOT NULL,
    val_losses     real[] NOT NULL,
    uncertainty    real NOT NULL,
    tokens         integer NOT NULL,
    scored_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (candidate_id, model_version)
);
CREATE INDEX scores_by_version ON tov.scores (model_version);

-- φ = (1/L) Σ_l F(base_l − val_l) for F in improvement (y), abs (|y|), relu (max(y, 0)).
CREATE FUNCTION tov.phi(base real[], val real[], score_fn text) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT avg(CASE score_fn
                   WHEN 'abs' THEN abs(b::float8 - v::float8)
                   WHEN 'relu' THEN greatest(b::float8 - v::float8, 0)
                   ELSE b::float8 - v::float8
               END)
    FROM unnest(base, val) AS t(b, v)
$$;

-- ---------------------------------------------------------------------------------------------
-- Selection. selection_items holds exactly the current selection; the view joins the version
-- from selection_state, so a switch is one transaction and readers never see two versions.
CREATE TABLE tov.selection_state (
    singleton          boolean PRIMARY KEY DEFAULT true CONSTRAINT selection_state_singleton CHECK (singleton),
    selection_version  bigint NOT NULL DEFAULT 0,
    model_version      integer,
    settings           jsonb,
    computed_at        timestamptz
);
INSERT INTO tov.selection_state DEFAULT VALUES;

CREATE TABLE tov.selection_items (
    candidate_id   bigint PRIMARY KEY REFERENCES tov.candidates (id) ON DELETE CASCADE,
    score          double precision NOT NULL,
    reason         text NOT NULL CONSTRAINT selection_items_reason CHECK (reason IN ('score', 'random')),
    length_bin     integer NOT NULL,
    selected_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tov.selection_history (
    selection_version  bigint NOT NULL,
    candidate_id       bigint NOT NULL,
    change             text NOT NULL CONSTRAINT selection_history_change CHECK (change IN ('in', 'out')),
    reason             text,
    model_version      integer,
    changed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (selection_version, candidate_id)
);
CREATE INDEX selection_history_candidate ON tov.selection_history (candidate_id);

-- ---------------------------------------------------------------------------------------------
-- Leader lease: one row, the instance that holds the leader advisory lock writes its name here so
-- operators can see who leads; the advisory lock is the real mutual exclusion.
CREATE TABLE tov.leader (
    singleton      boolean PRIMARY KEY DEFAULT true CONSTRAINT leader_singleton CHECK (singleton),
    instance       text,
    since          timestamptz,
    heartbeat_at   timestamptz
);
INSERT INTO tov.leader DEFAULT VALUES;

CREATE TABLE tov.refreshes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_version  integer REFERENCES tov.model_versions ON DELETE CASCADE,
    zval_version   bigint NOT NULL,
    reason         text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    trained_at     timestamptz,
    finished_at    timestamptz
);

-- ---------------------------------------------------------------------------------------------
-- Views people read.
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

-- Per-row scores under the complete model version with the length bin and rank in bin that the
-- selection uses (same ntile and ordering as the daemon's selection query). `tovd explain ID` reads
-- it; it computes window functions over the whole version, so query it for a few ids at a time.
CREATE VIEW tov.score_details AS
WITH current_model AS (
    SELECT model_version FROM tov.model_versions WHERE status = 'complete'
), bin_count AS (
    SELECT coalesce((SELECT (value::text)::int FROM tov.settings WHERE key = 'bins'), 10) AS k
), binned AS (
    SELECT s.*, ntile((SELECT k FROM bin_count)) OVER (ORDER BY s.tokens, s.candidate_id) - 1 AS length_bin
    FROM tov.scores s JOIN current_model USING (model_version)
)
SELECT b.candidate_id, b.model_version, b.score, b.base_loss, b.val_loss, b.base_losses, b.val_losses,
       b.uncertainty, b.tokens, b.length_bin,
       row_number() OVER (PARTITION BY b.length_bin ORDER BY b.score DESC, b.candidate_id) AS rank_in_bin,
       count(*) OVER (PARTITION BY b.length_bin) AS bin_size,
       count(*) OVER () AS eligible,
       i.reason AS selected_reason
FROM binned b LEFT JOIN tov.selection_items i USING (candidate_id);

-- ---------------------------------------------------------------------------------------------
-- Roles. NOLOGIN group roles: grant them to login roles (GRANT tov_writer TO etl_user). They are
-- cluster-wide, so create them only if missing.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['tov_writer', 'tov_reader'] LOOP
        -- A schema owner without CREATEROLE (the recommended non-superuser daemon role) can migrate
        -- once an administrator created the roles; only a missing role needs the privilege.
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
        -- Two databases of one cluster migrating at once may both try to create a role: the loser's
        -- error is caught, since the role it wanted exists either way.
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % does not exist and % may not create roles', role_name, current_user
                    USING HINT = 'As a superuser run: CREATE ROLE tov_writer NOLOGIN; CREATE ROLE tov_reader NOLOGIN; then rerun tovd migrate up.';
        END;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA tov TO tov_writer, tov_reader;
-- Writers insert rows; the enqueue and version triggers run as their owner (SECURITY DEFINER
-- below), so writers need no rights on the internal tables.
GRANT INSERT ON tov.candidates, tov.validation TO tov_writer;
GRANT SELECT ON tov.selected, tov.status TO tov_reader;

ALTER FUNCTION tov.enqueue_new_candidates() SECURITY DEFINER SET search_path = pg_catalog, tov;
ALTER FUNCTION tov.bump_zval_version() SECURITY DEFINER SET search_path = pg_catalog, tov;
ALTER FUNCTION tov.notify_settings() SECURITY DEFINER SET search_path = pg_catalog, tov;
