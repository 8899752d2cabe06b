import PQ

/// The selection keeper's and the sweeper's statements: which versions are live, the switch to a
/// rescored version, and what the selection was last computed under.
public enum ModelVersionStore {
    /// What the selection keeper decides from (``SelectionKeeperPolicy``). The "is an update due"
    /// checks read an index entry and two tiny tables, so an idle step costs nothing however large the pool.
    static func keeperSnapshot(selectionSettings: String, on connection: Connection) async throws -> SelectionKeeperPolicy.Snapshot {
        let row = try await connection.query(keeperSnapshotGet, [selectionSettings]).first!
        let scoring = try row.getOptional(Int32.self, "scoring_version").map(Int.init)
        return .init(
            completeVersion: try row.getOptional(Int32.self, "complete_version").map(Int.init),
            scoring: try scoring.map { .init(version: $0, base: Int(try row.get(Int32.self, "scoring_base")),
                                             jobsLeft: Int(try row.get(Int64.self, "scoring_jobs_left"))) },
            unbinnedScores: try row.get(Bool.self, "unbinned_scores"),
            removedScores: try row.get(Bool.self, "removed_scores"),
            computedUnderOther: try row.get(Bool.self, "computed_under_other"))
    }

    /// $1: the selection settings in force (canonical JSON).
    static let keeperSnapshotGet = """
        WITH complete AS (SELECT model_version FROM tov.model_versions WHERE status = 'complete'),
             scoring AS (SELECT model_version, base_version FROM tov.model_versions WHERE status = 'scoring')
        SELECT (SELECT model_version FROM complete) AS complete_version,
               (SELECT model_version FROM scoring) AS scoring_version,
               (SELECT base_version FROM scoring) AS scoring_base,
               (SELECT count(*) FROM tov.jobs j JOIN scoring USING (model_version)) AS scoring_jobs_left,
               EXISTS (SELECT 1 FROM tov.scores s JOIN complete USING (model_version) WHERE s.length_bin IS NULL) AS unbinned_scores,
               EXISTS (SELECT 1 FROM tov.scores_removed) AS removed_scores,
               (SELECT bin_rows IS NULL OR model_version IS DISTINCT FROM (SELECT model_version FROM complete)
                       OR settings IS DISTINCT FROM $1::jsonb
                FROM tov.selection_state) AS computed_under_other
        """

    /// Makes `version` the complete one (the old one superseded) and closes its refresh; the caller
    /// recomputes the selection in the same transaction. `tovd bench switch` times this switch.
    public static func modelVersionSwitch(to version: Int, on tx: Connection) async throws {
        try await tx.execute(modelVersionSupersedeComplete)
        try await tx.execute(modelVersionComplete, [version])
        try await tx.execute(refreshFinish, [version])
    }

    static let modelVersionSupersedeComplete = "UPDATE tov.model_versions SET status = 'superseded' WHERE status = 'complete'"
    static let modelVersionComplete = "UPDATE tov.model_versions SET status = 'complete', completed_at = now() WHERE model_version = $1"
    static let refreshFinish = "UPDATE tov.refreshes SET finished_at = now() WHERE model_version = $1"

    /// After a switch: old versions' scores are no longer read (``SelectionQueries/scoreObsoleteDeleteMany``,
    /// one scan, no join); neither are the base losses of base models before $1 that no live version
    /// uses. Checkpoints stay for audit.
    static func obsoleteScoresDelete(keepingBase base: Int, on tx: Connection) async throws {
        try await tx.execute(SelectionQueries.scoreObsoleteDeleteMany)
        try await tx.execute(baseLossObsoleteDeleteMany, [base])
    }

    static let baseLossObsoleteDeleteMany = """
        DELETE FROM tov.base_losses l
        WHERE l.base_version < $1
          AND NOT EXISTS (SELECT 1 FROM tov.model_versions m WHERE m.base_version = l.base_version AND m.status IN ('scoring', 'complete'))
        """

    /// The live versions (complete, and the one rescoring) with their base models.
    static func modelVersionLiveMany(on connection: Connection) async throws -> [(version: Int, base: Int)] {
        try await connection.query(Queries.modelVersionLiveMany).map {
            (Int(try $0.get(Int32.self, "model_version")), Int(try $0.get(Int32.self, "base_version")))
        }
    }
}
