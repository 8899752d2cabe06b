-- Reverses 005: the rebase_growth row goes, and tov.setting_is_valid is 001's definition again,
-- verbatim. No stored row needs a check: every value 005 accepts, 001 accepts too (005 only
-- narrowed the domains, and kept 001's seed range for this reason).
DELETE FROM tov.settings WHERE key = 'rebase_growth';

CREATE OR REPLACE FUNCTION tov.setting_is_valid(k text, v jsonb) RETURNS boolean
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


DROP FUNCTION tov.setting_is_number(jsonb, numeric, numeric);
DROP FUNCTION tov.setting_is_integer(jsonb, numeric, numeric);
