-- Schema version 006: placeholder, filled in by its change.
SELECT 1;
