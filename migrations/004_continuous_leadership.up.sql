-- Schema version 4: a renewed leader lease, leader jobs as separate services, rebase, progress. Filled in by its change.
SELECT 1;
