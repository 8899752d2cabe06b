-- Schema version 15: a version's Z_val signal is measured after the version switches in, not
-- between θ_val and rescoring (issue 25, "Bootstrap ... 1.5× faster"). The selection never reads
-- the signal, so the rescoring (and a bootstrap's first complete selection) no longer waits the
-- ~9 s it takes on the default surrogate; the status views show the live version's signal as
-- before, NULL until it is measured.

-- When the trainer measured this version's signal (NULL: not yet). A measurement that found no
-- signal (Z_val of one row, too few rows outside U) or failed sets it too, with the signal NULL: it
-- is not measured again. Versions made before this schema were measured at their refresh (or,
-- before schema 13, never will be): they count as measured.
ALTER TABLE tov.model_versions ADD COLUMN zval_signal_measured_at timestamptz;
UPDATE tov.model_versions SET zval_signal_measured_at = coalesce(trained_at, created_at);
