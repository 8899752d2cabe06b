-- Reverses 006.
ALTER TABLE tov.model_versions DROP COLUMN nonfinite_rows;
DROP TABLE tov.unscorable;
