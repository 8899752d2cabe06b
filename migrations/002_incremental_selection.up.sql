-- tovd schema, version 2: the selection is updated incrementally instead of re-sorting the pool.
--
-- Version 1 recomputed the selection from every score row on each update (a sort for the length
-- bins, one for the ranking, an md5 per row for the random half): linear in the pool, 0.7 s at 100k
-- rows, 6 s at 1M. Now the leader keeps each row's length bin and random key in tov.scores, moves
-- only the rows next to a bin boundary when new scores arrive, and reads each bin's top and the
-- random half through indexes. See docs/selection.md, "How the selection is kept current".

-- length_bin: the row's equal-count length bin, ntile(bins) over (tokens, candidate_id) - 1, among
-- the rows of its model version the leader has folded into the selection; NULL until then.
-- random_key: md5(seed:candidate_id) as bytes, the order of the random half. Both are the leader's.
ALTER TABLE tov.scores ADD COLUMN length_bin integer, ADD COLUMN random_key bytea;

-- New scores, waiting for the leader.
CREATE INDEX scores_unbinned ON tov.scores (model_version) WHERE length_bin IS NULL;
-- A bin's rows in length order: the ends of a bin move when the boundaries shift.
CREATE INDEX scores_bin_by_length ON tov.scores (model_version, length_bin, tokens, candidate_id)
    WHERE length_bin IS NOT NULL;
-- A bin's rows best first: the score half of the selection.
CREATE INDEX scores_bin_by_score ON tov.scores (model_version, length_bin, score DESC, candidate_id)
    WHERE length_bin IS NOT NULL;
-- The random half, in seeded-hash order.
CREATE INDEX scores_by_random_key ON tov.scores (model_version, random_key, candidate_id)
    WHERE length_bin IS NOT NULL;

-- Rows per length bin among the binned rows of selection_state.model_version, under the bins and
-- seed of selection_state.settings. NULL means the leader must bin the version from scratch.
ALTER TABLE tov.selection_state ADD COLUMN bin_rows integer[];

-- Binned score rows deleted since the leader last looked (a candidate deleted, say), per version
-- and bin: the leader subtracts them from bin_rows and closes the gaps at the next update. A row
-- with a NULL bin asks for binning from scratch (after a TRUNCATE). The triggers only append here,
-- so a DELETE never waits for the leader's lock on selection_state (nor deadlocks with it).
CREATE TABLE tov.scores_removed (
    model_version  integer,
    length_bin     integer,
    rows           bigint NOT NULL
);

CREATE FUNCTION tov.scores_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.scores_removed (model_version, length_bin, rows)
    SELECT model_version, length_bin, count(*) FROM deleted WHERE length_bin IS NOT NULL GROUP BY 1, 2;
    RETURN NULL;
END
$$;
CREATE TRIGGER scores_deleted AFTER DELETE ON tov.scores
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION tov.scores_deleted();

CREATE FUNCTION tov.scores_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tov.scores_removed (model_version, length_bin, rows) VALUES (NULL, NULL, 0);
    RETURN NULL;
END
$$;
CREATE TRIGGER scores_truncated AFTER TRUNCATE ON tov.scores
    FOR EACH STATEMENT EXECUTE FUNCTION tov.scores_truncated();

-- Whoever deletes (an administrator, or a cascade from tov.candidates) need not own scores_removed.
ALTER FUNCTION tov.scores_deleted() SECURITY DEFINER SET search_path = pg_catalog, tov;
ALTER FUNCTION tov.scores_truncated() SECURITY DEFINER SET search_path = pg_catalog, tov;
