-- tovd schema, version 3: inputs the first round did not try (issue "Hardening").

-- Z_val rows keep where they came from, as candidates do: `tovd import --into validation` copies
-- "source" here instead of dropping it.
ALTER TABLE tov.validation ADD COLUMN source text;

-- A candidate deleted while selected leaves the selection through the foreign key's cascade, which
-- bypasses the leader, so tov.selection_history would never say it left. This trigger writes its
-- `out` row before the cascade runs. It uses the next selection version: the current version's
-- history is already written (a row that entered at it has its `in` row under the same primary
-- key), and the leader's next update, which fills the gap, is that version. ON CONFLICT: the leader
-- may be writing the same `out` row for this candidate in a transaction of its own.
CREATE FUNCTION tov.candidate_leaves_selection() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.selection_history (selection_version, candidate_id, change, reason, model_version)
    SELECT s.selection_version + 1, i.candidate_id, 'out', i.reason, s.model_version
    FROM tov.selection_items i CROSS JOIN tov.selection_state s
    WHERE i.candidate_id = OLD.id
    ON CONFLICT (selection_version, candidate_id) DO NOTHING;
    RETURN OLD;
END
$$;
CREATE TRIGGER candidates_leave_selection BEFORE DELETE ON tov.candidates
    FOR EACH ROW EXECUTE FUNCTION tov.candidate_leaves_selection();

-- TRUNCATE tov.candidates CASCADE empties the selection the same way, without row triggers.
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
ALTER FUNCTION tov.candidate_leaves_selection() SECURITY DEFINER SET search_path = pg_catalog, tov;
ALTER FUNCTION tov.candidates_truncate_selection() SECURITY DEFINER SET search_path = pg_catalog, tov;
