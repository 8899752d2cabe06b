-- Schema version 16: checkpoints are stored without PostgreSQL's own compression. Their bytes are
-- an LZ4 frame already (Surrogate's CheckpointFile), which pglz cannot shrink; trying cost about
-- 0.2 s of the server's CPU per 17 MB default-surrogate checkpoint, inside the trainer's
-- transaction, five times before a bootstrap's first score (docs/performance.md). EXTERNAL keeps
-- the value out of line, uncompressed. Rows stored before keep their storage until rewritten.
ALTER TABLE tov.checkpoints ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE tov.theta0s ALTER COLUMN data SET STORAGE EXTERNAL;
