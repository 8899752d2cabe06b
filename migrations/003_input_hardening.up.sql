-- tovd schema, version 3: inputs the first round did not try (issue "Hardening").

-- Z_val rows keep where they came from, as candidates do: `tovd import --into validation` copies
-- "source" here instead of dropping it.
ALTER TABLE tov.validation ADD COLUMN source text;

-- A candidate deleted while selected leaves the selection through the foreign key's cascade, which
-- bypasses the leader, so tov.selection_history would never say it left. This trigger writes its
-- `out` row. It fires only for deletes made by a trigger (depth >= 1: the cascade is the foreign
-- key's trigger), so the leader's own deletes, which write their history themselves, pass by, and
-- a bulk DELETE of candidates runs it only for the rows that were selected. It uses the next
-- selection version: the current version's history is already written (a row that entered at it
-- has its `in` row under the same primary key), and the leader's next update, which fills the gap,
-- is that version. ON CONFLICT: the leader may be writing the same `out` row in its own transaction.
CREATE FUNCTION tov.selection_item_cascaded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.selection_history (selection_version, candidate_id, change, reason, model_version)
    SELECT s.selection_version + 1, OLD.candidate_id, 'out', OLD.reason, s.model_version
    FROM tov.selection_state s
    ON CONFLICT (selection_version, candidate_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER selection_item_cascaded AFTER DELETE ON tov.selection_items
    FOR EACH ROW WHEN (pg_trigger_depth() >= 1) EXECUTE FUNCTION tov.selection_item_cascaded();

-- TRUNCATE tov.candidates CASCADE empties the selection without any row trigger: record it before.
CREATE FUNCTION tov.candidates_truncate_selection() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.selection_history (selection_version, candidate_id, change, reason, model_version)
    SELECT s.selection_version + 1, i.candidate_id, 'out', i.reason, s.model_version
    FROM tov.selection_items i CROSS JOIN tov.selection_state s
    ON CONFLICT (selection_version, candidate_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER candidates_truncate_selection BEFORE TRUNCATE ON tov.candidates
    FOR EACH STATEMENT EXECUTE FUNCTION tov.candidates_truncate_selection();

-- Whoever deletes candidates need not be able to write the history.
ALTER FUNCTION tov.selection_item_cascaded() SECURITY DEFINER SET search_path = pg_catalog, tov;
ALTER FUNCTION tov.candidates_truncate_selection() SECURITY DEFINER SET search_path = pg_catalog, tov;
