/// Statements of the model-version switch (issue 24, defect 15), for the store that runs it: the ones
/// that must keep a linear plan whatever the statistics say, and the queue's clean-up after it.
public enum SelectionQueries {
    /// After a switch: every job of the rescored version was deleted by the worker that scored it,
    /// and no transaction needs those tuples any more, so one VACUUM clears a whole refresh's dead
    /// tuples at once. Autovacuum, even with the table's own thresholds (migration 008), visits only
    /// once per `autovacuum_naptime`: ~300k dead tuples built up between its visits with a refresh of
    /// 100k rows every ~10 s (docs/performance.md), and claims read past their index entries.
    /// SKIP_LOCKED: when autovacuum is vacuuming the table already, that will do. VACUUM runs outside
    /// any transaction; a role that does not own the table gets a warning, and nothing is done.
    public static let jobTableVacuum = "VACUUM (SKIP_LOCKED) tov.jobs"

    /// After a switch, deletes the scores of every version that is neither live nor being trained
    /// (superseded and failed ones: the enum's other two values), which nothing reads any more.
    ///
    /// No join with tov.model_versions: the versions to keep (per target at most one complete and
    /// one in progress, by the unique indexes: ≤ 2K values with K targets) are read once, and the scan
    /// of tov.scores compares each row with them. Joining the superseded versions instead (`USING tov.model_versions m
    /// WHERE m.status IN ('superseded', 'failed')`) let the planner run a nested loop that scans the
    /// scores once per superseded version ever made; `tovd bench switch` saw that delete grow from
    /// 0.15 s to 0.9 s over 22 refreshes of a 100k pool, and superseded versions accumulate forever.
    /// One snapshot: a version that starts scoring is visible here before any of its scores is.
    public static let scoreObsoleteDeleteMany = """
        DELETE FROM tov.scores
        WHERE model_version <> ALL (ARRAY(
            SELECT model_version FROM tov.model_versions WHERE status IN ('training', 'scoring', 'complete')))
        """
}
