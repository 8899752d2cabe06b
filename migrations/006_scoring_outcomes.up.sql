-- Schema version 6: rows a worker could not score.

-- Rows whose losses under a model version were not finite (NaN or ±inf: a diverged surrogate,
-- `lr` up to 1). They are never stored as scores (NaN sorts above every number in Postgres, so it
-- would win the score half of the selection); recording them here ends their job for that version,
-- and tov.jobs is not refilled for them by the sweeper (Queries.jobEnqueueMissingScores), so nothing
-- loops. A row stays ready: another version may score it.
CREATE TABLE tov.unscorable (
    candidate_id   bigint NOT NULL REFERENCES tov.candidates (id) ON DELETE CASCADE,
    model_version  integer NOT NULL REFERENCES tov.model_versions ON DELETE CASCADE,
    detail         text NOT NULL,       -- the losses and what to do; never row text
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (candidate_id, model_version)
);
CREATE INDEX unscorable_by_version ON tov.unscorable (model_version);

-- How many rows of a version had non-finite losses: a version with any is a diverged training
-- run, which status reports and the trainer may act on.
ALTER TABLE tov.model_versions ADD COLUMN nonfinite_rows integer NOT NULL DEFAULT 0;

-- (Checkpoints a worker cannot load are marked in tov.checkpoints.load_error / load_error_at,
-- columns migration 004 adds; the worker sets them, the trainer acts on them.)
