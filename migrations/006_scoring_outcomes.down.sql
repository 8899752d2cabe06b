-- Reverses 006.
ALTER TABLE tov.checkpoints DROP COLUMN load_error, DROP COLUMN load_error_at;
ALTER TABLE tov.model_versions DROP COLUMN nonfinite_rows;
DROP TABLE tov.unscorable;
