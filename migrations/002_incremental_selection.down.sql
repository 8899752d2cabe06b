-- Reverses 002: the selection goes back to being recomputed from every score row.
DROP TRIGGER scores_truncated ON tov.scores;
DROP TRIGGER scores_deleted ON tov.scores;
DROP FUNCTION tov.scores_truncated();
DROP FUNCTION tov.scores_deleted();
DROP TABLE tov.scores_removed;
ALTER TABLE tov.selection_state DROP COLUMN bin_rows;
DROP INDEX tov.scores_by_random_key, tov.scores_bin_by_score, tov.scores_bin_by_length, tov.scores_unbinned;
ALTER TABLE tov.scores DROP COLUMN random_key, DROP COLUMN length_bin;
