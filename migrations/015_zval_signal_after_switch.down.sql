-- Reverses 015: version 14 measures the signal during the refresh and has no record of when.
ALTER TABLE tov.model_versions DROP COLUMN zval_signal_measured_at;
