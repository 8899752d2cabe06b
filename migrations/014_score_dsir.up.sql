-- Schema version 14: the score_dsir policy (issue 27, "A selection that adds to what Z_val already
-- teaches"): score_random's score half, and the rest of the budget drawn by n-gram importance (the
-- row's words against Z_val's and U's, DSIR's weights: Selection/NgramImportance.swift) instead of
-- uniformly. Everything below is inert under the other policies.

-- The target's n-gram model of a version: its log ratios log p_Z_val − log p_U per hash bucket, as
-- float8 little-endian, written by the trainer before the version's rows are rescored. NULL for a
-- version made before this schema: its rows weigh 0 and score_dsir draws them uniformly (Gumbel
-- noise only) until the target's next refresh.
ALTER TABLE tov.model_versions ADD COLUMN importance_model bytea;

-- Each scored row's log importance weight under its version's model (0: none).
ALTER TABLE tov.scores ADD COLUMN importance double precision NOT NULL DEFAULT 0;

-- The order of importance resampling without replacement (Gumbel-top-k): the weight plus Gumbel(0, 1)
-- noise whose uniform is the first 52 bits of the row's random key md5(seed:id), so the draw is as
-- reproducible as the random half's. NgramImportance.resamplingKey is the same arithmetic in Swift
-- (float8 throughout, ln = C's log); the selection property test holds the two to the same rows.
CREATE FUNCTION tov.importance_key(importance double precision, random_key bytea) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT importance - ln(-ln((('x' || substr(encode(random_key, 'hex'), 1, 13))::bit(52)::bigint::float8 + 0.5::float8)
                                / 4503599627370496::float8))
$$;

-- score_dsir's second part reads this index in order, as the random half reads scores_by_random_key.
CREATE INDEX scores_by_importance_key ON tov.scores (model_version, tov.importance_key(importance, random_key) DESC, candidate_id);

ALTER TABLE tov.selection_items DROP CONSTRAINT selection_items_reason,
    ADD CONSTRAINT selection_items_reason CHECK (reason IN ('score', 'random', 'importance'));

-- 011's definition with 'score_dsir' among the policies.
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
    WHEN 'policy' THEN RETURN v IN ('"score_random"', '"score_dsir"', '"score_only"', '"score_only_unbinned"', '"random"', '"uncertainty"');
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
    -- The imported θ0 to start the next base model from (`tovd base import`), or null for the
    -- daemon's bootstrap. Only the name's form is checked here: the function is IMMUTABLE and a
    -- CHECK, so it cannot look into tov.theta0s; the trainer reports a name with no θ0 stored.
    -- score_random's share of the budget taken by score (issue 27); the rest is random. ½ is ToV's.
    WHEN 'score_share' THEN RETURN tov.setting_is_number(v, 0, 1);
    WHEN 'theta0' THEN
        IF v = 'null' THEN RETURN true; END IF;
        IF jsonb_typeof(v) <> 'string' THEN RETURN false; END IF;
        RETURN tov.theta0_name_is_valid(v #>> '{}');
    ELSE RETURN false;
    END CASE;
END
$$;

-- score_dsir is the default policy from this version on (docs/evaluation.md, "Issue 27's candidates":
-- with Z_val it beat score_random on all three dev targets). A database that has made no model version
-- yet, a new one included, starts with it; one that has keeps the policy it selects with, whether
-- set or the old default (`UPDATE tov.settings SET value = '"score_dsir"' WHERE key = 'policy'`
-- switches it, live).
UPDATE tov.settings SET value = '"score_dsir"'
WHERE key = 'policy' AND value = '"score_random"' AND NOT EXISTS (SELECT FROM tov.model_versions);
