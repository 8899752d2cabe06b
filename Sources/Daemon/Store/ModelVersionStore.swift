import PQ
import Selection

/// The selection keeper's and the sweeper's statements: which versions are live, the switch to a
/// rescored version, and what a target's selection was last computed under.
///
/// Every target (tov.targets) has its own versions, scores and selection on the shared base model:
/// each statement here that reads or changes one of them names the target, so that keeping one
/// target's selection current never touches another's.
public enum ModelVersionStore {
    /// What the selection keeper decides from for `target` (``SelectionKeeperPolicy``), or nil when
    /// the target has no selection (it was dropped since the settings were read). The "is an update
    /// due" checks read an index entry and two tiny tables, so an idle step costs nothing however
    /// large the pool.
    static func keeperSnapshot(target: Int, selectionSettings: String, on connection: Connection) async throws -> SelectionKeeperPolicy.Snapshot? {
        let row = try await connection.query(keeperSnapshotGet, [selectionSettings, target]).first!
        guard try row.get(Bool.self, "target_exists") else { return nil }
        let scoring = try row.getOptional(Int32.self, "scoring_version").map(Int.init)
        return .init(
            completeVersion: try row.getOptional(Int32.self, "complete_version").map(Int.init),
            scoring: try scoring.map { .init(version: $0, base: Int(try row.get(Int32.self, "scoring_base")),
                                             jobsLeft: Int(try row.get(Int64.self, "scoring_jobs_left"))) },
            unbinnedScores: try row.get(Bool.self, "unbinned_scores"),
            removedScores: try row.get(Bool.self, "removed_scores"),
            computedUnderOther: try row.get(Bool.self, "computed_under_other"))
    }

    /// $1: the target's selection settings in force (canonical JSON), $2: the target. Deletion
    /// reports (tov.scores_removed) count for the target when they are of its complete version, or
    /// a TRUNCATE's (NULL version); reports of versions no target selects from any more are stale
    /// and dropped by whichever update comes next (LengthBins).
    static let keeperSnapshotGet = """
        WITH complete AS (SELECT model_version FROM tov.model_versions WHERE status = 'complete' AND target_id = $2::int),
             scoring AS (SELECT model_version, base_version FROM tov.model_versions WHERE status = 'scoring' AND target_id = $2::int)
        SELECT (SELECT model_version FROM complete) AS complete_version,
               (SELECT model_version FROM scoring) AS scoring_version,
               (SELECT base_version FROM scoring) AS scoring_base,
               (SELECT count(*) FROM tov.jobs j JOIN scoring USING (model_version)) AS scoring_jobs_left,
               EXISTS (SELECT 1 FROM tov.scores s JOIN complete USING (model_version) WHERE s.length_bin IS NULL) AS unbinned_scores,
               EXISTS (SELECT 1 FROM tov.scores_removed r
                       WHERE r.model_version IS NULL OR r.model_version = (SELECT model_version FROM complete)) AS removed_scores,
               (SELECT bin_rows IS NULL OR model_version IS DISTINCT FROM (SELECT model_version FROM complete)
                       OR settings IS DISTINCT FROM $1::jsonb
                FROM tov.selection_state WHERE target_id = $2::int) AS computed_under_other,
               EXISTS (SELECT 1 FROM tov.selection_state WHERE target_id = $2::int) AS target_exists
        """

    /// Holds target $1 for the rest of the caller's transaction (a concurrent `DELETE FROM
    /// tov.targets` waits for it), and says whether it still exists. A KEY SHARE lock: updates of
    /// the target's settings or Z_val version are not held up.
    static func targetHold(_ target: Int, on tx: Connection) async throws -> Bool {
        try await !tx.query(targetHoldGet, [target]).isEmpty
    }

    static let targetHoldGet = "SELECT target_id FROM tov.targets WHERE target_id = $1::int FOR KEY SHARE"

    /// Makes `version` the complete one of its target (that target's previous one superseded, no
    /// other target's) and closes its refresh; the caller recomputes the selection in the same
    /// transaction. `tovd bench switch` times this switch.
    public static func modelVersionSwitch(to version: Int, on tx: Connection) async throws {
        try await tx.execute(modelVersionSupersedeComplete, [version])
        try await tx.execute(modelVersionComplete, [version])
        try await tx.execute(refreshFinish, [version])
    }

    /// $1: the version switched to; only its own target's complete version is superseded.
    static let modelVersionSupersedeComplete = """
        UPDATE tov.model_versions SET status = 'superseded'
        WHERE status = 'complete' AND model_version <> $1::int
          AND target_id = (SELECT target_id FROM tov.model_versions WHERE model_version = $1::int)
        """
    static let modelVersionComplete = "UPDATE tov.model_versions SET status = 'complete', completed_at = now() WHERE model_version = $1"
    static let refreshFinish = "UPDATE tov.refreshes SET finished_at = now() WHERE model_version = $1"

    /// After a switch: superseded and failed versions' scores are no longer read
    /// (``SelectionQueries/scoreObsoleteDeleteMany`` keeps every version that is complete, scoring or
    /// training, of every target, so another target's live scores stay); neither are the base
    /// losses of base models before $1 that no version of any target uses or is about to use.
    /// Checkpoints stay for audit.
    static func obsoleteScoresDelete(keepingBase base: Int, on tx: Connection) async throws {
        try await tx.execute(SelectionQueries.scoreObsoleteDeleteMany)
        try await tx.execute(baseLossObsoleteDeleteMany, [base])
    }

    /// A version in training counts too: after a rebase another target may still be training (and
    /// then rescoring with) a version on the older base, and its rows' base losses need not be
    /// computed again.
    static let baseLossObsoleteDeleteMany = """
        DELETE FROM tov.base_losses l
        WHERE l.base_version < $1
          AND NOT EXISTS (SELECT 1 FROM tov.model_versions m
                          WHERE m.base_version = l.base_version AND m.status IN ('training', 'scoring', 'complete'))
        """

    /// Deletes the rescoring jobs of versions that no longer exist: a target dropped while it
    /// rescored took its versions along (ON DELETE CASCADE) but not their jobs (tov.jobs.model_version
    /// has no foreign key: 0 is a new row's job). Left alone, workers would claim and fetch each of
    /// those rows only to complete the job unscored. Returns the jobs deleted.
    static func jobOfGoneVersionDeleteMany(on tx: Connection) async throws -> Int {
        let gone = try await tx.query(modelVersionGoneWithJobsMany).map { try $0.get(Int32.self, "model_version") }
        guard !gone.isEmpty else { return 0 }
        return try await tx.execute(jobForVersionsDeleteMany, [gone])
    }

    /// Version numbers that have jobs but no tov.model_versions row, found without scanning the
    /// queue (it holds the whole pool during a rescoring, and this runs every sweep): one probe of
    /// the (model_version, …) index per version number up to the queue's highest, which the same
    /// index gives. Run apart from the DELETE: an array computed inside it is unknown to the
    /// planner, which then scans the whole queue to delete nothing (26 ms per sweep at 400k jobs).
    static let modelVersionGoneWithJobsMany = """
        SELECT v AS model_version FROM generate_series(1, (SELECT max(model_version) FROM tov.jobs)) AS v
        WHERE NOT EXISTS (SELECT 1 FROM tov.model_versions m WHERE m.model_version = v)
          AND EXISTS (SELECT 1 FROM tov.jobs j WHERE j.model_version = v)
        """

    static let jobForVersionsDeleteMany = "DELETE FROM tov.jobs WHERE model_version = ANY ($1::int[])"

    /// The n-gram model of `version`'s target (tov.model_versions.importance_model, score_dsir's
    /// weights); nil for a version made before the schema kept one, or bytes that do not decode
    /// (the version's rows then weigh 0, which the policy draws uniformly, rather than not scoring).
    static func importanceModelGet(_ version: Int, on connection: Connection) async throws -> NgramImportance? {
        let row = try await connection.query(importanceModelGetOne, [version]).first
        return try row?.getOptional([UInt8].self, "importance_model").flatMap(NgramImportance.init(bytes:))
    }

    static let importanceModelGetOne = "SELECT importance_model FROM tov.model_versions WHERE model_version = $1::int"

    /// The live versions of every target (each one's complete version, and the one it rescores)
    /// with their base models.
    static func modelVersionLiveMany(on connection: Connection) async throws -> [(version: Int, base: Int)] {
        try await connection.query(Queries.modelVersionLiveMany).map {
            (Int(try $0.get(Int32.self, "model_version")), Int(try $0.get(Int32.self, "base_version")))
        }
    }
}
