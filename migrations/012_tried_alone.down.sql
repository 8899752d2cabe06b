-- Reverses 012: version 11 charges every claim (`attempts`) and has no count of the tries alone.
ALTER TABLE tov.jobs DROP COLUMN tried_alone;
