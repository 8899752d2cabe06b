-- Schema version 5: one definition of every setting (issue 16, "Settings: the database and the
-- daemon must agree"). tov.setting_is_valid now accepts exactly what the daemon can use, and the
-- daemon asks this function which stored values are valid (SettingsCache.load) instead of
-- trusting a second copy of the rules. Values 001 accepted that crashed or stalled the daemon:
-- seeds near 2^63 (parsed through Double), a surrogate whose heads do not divide its width
-- (a precondition in ModelConfig), surrogate fields written as "4" or 2.5, budget rows of 1e15.
--
-- The rules are written in PL/pgSQL, one IF at a time, because the daemon evaluates the function
-- on every stored row: it must return false, never raise, for any jsonb at all (a cast error
-- would fail the whole settings query and no setting could be read). SQL gives no evaluation
-- order for AND/OR and folds constants early; IF statements run in order.

-- An integer setting: jsonb prints numbers in plain decimal (never an exponent: 1e2 is stored and
-- printed as 100), so an integer is exactly '-'? digits. "2.0" is refused although it is integral,
-- so that every reader sees an integer literal: the daemon parses the text exactly as Int64, never
-- through Double, and SQL readers cast it with (value::text)::int (tov.score_details reads bins so).
CREATE FUNCTION tov.setting_is_integer(v jsonb, lo numeric, hi numeric) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(v) IS DISTINCT FROM 'number' THEN RETURN false; END IF;
    IF v::text !~ '^-?[0-9]+$' THEN RETURN false; END IF;
    RETURN (v::text)::numeric BETWEEN lo AND hi;
END
$$;

-- A real-valued setting in [lo, hi], compared as numeric (a float8 cast raises on 1e400 or 1e-400).
-- Lower bounds are positive where the daemon needs a positive Double: numeric > 0 alone admits
-- 1e-400, which is 0 as a Double.
CREATE FUNCTION tov.setting_is_number(v jsonb, lo numeric, hi numeric) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(v) IS DISTINCT FROM 'number' THEN RETURN false; END IF;
    RETURN (v::text)::numeric BETWEEN lo AND hi;
END
$$;

-- Every key and its domain; docs/operations.md has the same table for people. Keep the surrogate
-- defaults equal to Settings.SurrogateShape's (layers 4, width 256, heads 4, context 256, vocab 4096).
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

-- Replacing the function does not re-check stored rows. A value that was accepted before and is
-- refused now is not changed behind the operator's back (notices of a migration are not shown by
-- `tovd migrate up`): the migration stops and says what to change, under the old rules, first.
DO $$
DECLARE
    refused text;
BEGIN
    SELECT string_agg(format('%s = %s', key, left(value::text, 200)), '; ' ORDER BY key) INTO refused
    FROM tov.settings WHERE NOT tov.setting_is_valid(key, value);
    IF refused IS NOT NULL THEN
        RAISE EXCEPTION 'migration 005: tov.settings holds values this tovd cannot use: %. Set each to a value in the range docs/operations.md gives (UPDATE tov.settings SET value = ''...'' WHERE key = ''...''), or DELETE the row to use the default, then run `tovd migrate up` again', refused
            USING ERRCODE = 'check_violation';
    END IF;
END
$$;

INSERT INTO tov.settings (key, value) VALUES
    ('rebase_growth', '4')          -- a new base model once the pool has grown 4× since U was drawn
ON CONFLICT (key) DO NOTHING;
