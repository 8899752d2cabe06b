/// The scoring worker's statements beyond claim and complete: lease renewal, rows that wait for a
/// version whose checkpoints do not load, rejected rows leaving the pipeline, unscorable rows, and
/// checkpoint load errors.
extension Queries {
    // MARK: - Leases

    /// Extends to now() + $4 seconds the leases of the jobs ($1 ids, $2 versions, $3 attempts) whose
    /// attempt number still matches, i.e. that nobody re-claimed. A lease that ran out but was not
    /// re-claimed is still ours and is extended too: a claim that raced with this update re-checks
    /// `lease_until` after the row lock (read committed), so the two never both win.
    static let jobRenewMany = """
        UPDATE tov.jobs j SET lease_until = now() + make_interval(secs => $4::float8)
        FROM unnest($1::bigint[], $2::int[], $3::int[]) AS f(candidate_id, model_version, attempts)
        WHERE j.candidate_id = f.candidate_id AND j.model_version = f.model_version AND j.attempts = f.attempts
        """

    /// Enqueues each row $1 for each model version $2 outside that version's U: new rows that were
    /// validated while those versions could not be loaded wait in the queue for them.
    static let jobEnqueueForVersionsMany = """
        INSERT INTO tov.jobs (candidate_id, model_version)
        SELECT r.id, m.model_version
        FROM unnest($1::bigint[]) AS r(id)
        CROSS JOIN tov.model_versions m
        WHERE m.model_version = ANY ($2::int[])
          AND NOT EXISTS (SELECT 1 FROM tov.base_subset b WHERE b.base_version = m.base_version AND b.candidate_id = r.id)
        ON CONFLICT DO NOTHING
        """

    // MARK: - Outcomes

    /// A rejected row leaves the pipeline: its ready row, its scores under every version and its
    /// other jobs go, in the transaction that rejects it. A row can be rejected after it was ready
    /// and scored (it kept crashing while a new version rescored it); without this it would be both
    /// ready and rejected, and the selection could keep it. Deleted scores reach the selection
    /// keeper through tov.scores_removed (trigger), as a deleted candidate's do.
    static let rejectedRowRemoveMany = """
        WITH ready AS (
            DELETE FROM tov.ready WHERE candidate_id = ANY ($1::bigint[]) RETURNING 1
        ), scores AS (
            DELETE FROM tov.scores WHERE candidate_id = ANY ($1::bigint[]) RETURNING 1
        ), jobs AS (
            DELETE FROM tov.jobs WHERE candidate_id = ANY ($1::bigint[]) RETURNING 1
        )
        SELECT (SELECT count(*) FROM ready) AS ready, (SELECT count(*) FROM scores) AS scores, (SELECT count(*) FROM jobs) AS jobs
        """

    /// Records rows ($1 ids, $2 versions, $3 details) whose losses were not finite, and counts them
    /// on their model version; returns one row per newly recorded row.
    static let unscorableInsertMany = """
        WITH inserted AS (
            INSERT INTO tov.unscorable (candidate_id, model_version, detail)
            SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[])
            ON CONFLICT DO NOTHING
            RETURNING model_version
        ), counted AS (
            UPDATE tov.model_versions m SET nonfinite_rows = m.nonfinite_rows + i.n
            FROM (SELECT model_version, count(*) AS n FROM inserted GROUP BY model_version) i
            WHERE m.model_version = i.model_version
            RETURNING i.n
        )
        SELECT coalesce(sum(n), 0)::bigint AS rows FROM counted
        """

    // MARK: - Checkpoints

    /// One checkpoint with the identity and hash the worker checks it against before decoding.
    static let checkpointGetChecked = """
        SELECT id, data, sha256 FROM tov.checkpoints
        WHERE base_version = $1 AND coalesce(model_version, 0) = $2 AND kind = $3 AND epoch = $4
        """

    /// Why checkpoint $1 did not load ($2); the trainer retrains what has a load_error.
    static let checkpointLoadErrorSet = """
        UPDATE tov.checkpoints SET load_error = $2, load_error_at = now() WHERE id = $1
        """

    /// Checkpoints $1 loaded (again): whatever was wrong with them was repaired.
    static let checkpointLoadErrorClearMany = """
        UPDATE tov.checkpoints SET load_error = NULL, load_error_at = NULL WHERE id = ANY ($1::bigint[]) AND load_error IS NOT NULL
        """
}
