-- Schema version 005: placeholder, filled in by its change.
SELECT 1;
