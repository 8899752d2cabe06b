-- Reverses 003. Z_val rows lose their source.
DROP TRIGGER candidates_truncate_selection ON tov.candidates;
DROP TRIGGER candidates_leave_selection ON tov.candidates;
DROP FUNCTION tov.candidates_truncate_selection();
DROP FUNCTION tov.candidate_leaves_selection();
ALTER TABLE tov.validation DROP COLUMN source;
