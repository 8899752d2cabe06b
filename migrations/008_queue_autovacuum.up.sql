-- Schema version 8: autovacuum settings of their own for the tables that churn.
--
-- tov.jobs holds a job per row per rescoring: every refresh inserts and deletes one for each row
-- of the pool, so it makes n dead tuples per refresh while its live size swings between 0 and n.
-- Under the global defaults (vacuum after 50 + 20 % of reltuples dead, throttled by the cost
-- delay) a 20,000-row pool refreshed every 2 s carried ~400,000 dead tuples before its first
-- vacuum, and claims read past the dead entries of jobs_claim_order until a vacuum. As queue libraries advise
-- for their queue tables (River, pgmq, que), a fixed threshold instead of a fraction of the table,
-- so the table is vacuumed and analyzed on every autovacuum visit that finds a batch's worth of
-- churn, at full speed (it is small: vacuuming it takes milliseconds, so the cost delay only
-- lets the dead tuples pile up). Its statistics swing the same way, so it is analyzed as often.
--
-- tov.scores_removed is appended by every statement that deletes binned scores and emptied by
-- every selection update: the same churn at a smaller scale.
--
-- Autovacuum visits a database once per autovacuum_naptime (1 min by default), a server setting
-- this migration cannot change; the thresholds make each visit count. tov.scores itself is left
-- to the defaults: a switch deletes the superseded version's rows (half the table), which
-- crosses the default threshold at once, and the statements that read it no longer depend on
-- its statistics being current (see LengthBins).
ALTER TABLE tov.jobs SET (
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE tov.scores_removed SET (
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 100,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100,
    autovacuum_vacuum_cost_delay = 0
);
