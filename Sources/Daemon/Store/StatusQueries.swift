import Foundation
import PQ

/// The store's status/workers family: what `tovd status` and `tovd explain` read (tov.status,
/// tov.workers, tov.instances, tov.score_details and a candidate's state).
///
/// One function per statement, named noun+verb(+Many), with a params struct where the statement takes
/// parameters; every row is decoded by column name, so a view that gains a column shifts nothing.
public enum StatusQueries {
    // MARK: - Schema

    /// The schema version through tov.schema_version(), which read-only roles may call (tov_migrate
    /// itself is the schema owner's).
    public static func schemaVersionGet(on connection: Connection) async throws -> Int {
        let rows = try await connection.query("SELECT tov.schema_version() AS version")
        return Int(try rows.first!.get(Int32.self, "version"))
    }

    // MARK: - Status

    /// The one row of tov.status, without the workers (``workerGetMany(on:)``) and before
    /// ``StatusReport/applyLeadership(leaderCapableInstances:)``.
    static func statusGet(on connection: Connection) async throws -> StatusReport {
        let rows = try await connection.query("""
            SELECT pool_rows, scored, pending, rejected, base_subset_rows, model_version, next_model_version,
                   next_model_status, rescore_pending, zval_version, zval_rows, selection_version, selection_size,
                   last_refresh_started_at::text AS last_refresh_started_at,
                   last_refresh_finished_at::text AS last_refresh_finished_at,
                   extract(epoch FROM oldest_unscored_age)::float8 AS oldest_unscored_age_seconds, leader,
                   waiting_for_model, daemon_state, activity, activity_reason, activity_detail, activity_done,
                   activity_total, activity_unit, activity_rate, activity_eta_seconds,
                   leader_heartbeat_age_seconds, settings_error, zval_rejected, theta0, zval_agreement, zval_transfer,
                   zval_helped_share, zval_signal
            FROM tov.status
            """)
        guard let r = rows.first else { throw DaemonError(.database, "tov.status returned no row; run `tovd migrate up`") }
        var report = StatusReport(
            poolRows: try r.get(Int64.self, "pool_rows"), scored: try r.get(Int64.self, "scored"),
            pending: try r.get(Int64.self, "pending"), rejected: try r.get(Int64.self, "rejected"),
            baseSubsetRows: try r.get(Int64.self, "base_subset_rows"),
            modelVersion: try r.getOptional(Int32.self, "model_version").map(Int.init),
            nextModelVersion: try r.getOptional(Int32.self, "next_model_version").map(Int.init),
            nextModelStatus: try r.getOptional(String.self, "next_model_status"),
            rescorePending: try r.get(Int64.self, "rescore_pending"),
            // NULL only when the target 'default' was dropped by hand (tov.status describes it).
            zvalVersion: try r.getOptional(Int64.self, "zval_version") ?? 0,
            zvalRows: try r.get(Int64.self, "zval_rows"), selectionVersion: try r.getOptional(Int64.self, "selection_version") ?? 0,
            selected: try r.get(Int64.self, "selection_size"),
            lastRefreshStartedAt: try r.getOptional(String.self, "last_refresh_started_at"),
            lastRefreshFinishedAt: try r.getOptional(String.self, "last_refresh_finished_at"),
            oldestUnscoredAgeSeconds: try r.getOptional(Double.self, "oldest_unscored_age_seconds"),
            leader: try r.getOptional(String.self, "leader"))
        report.waitingForModel = try r.get(Int64.self, "waiting_for_model")
        report.daemonState = try r.get(String.self, "daemon_state")
        if let name = try r.getOptional(String.self, "activity") {
            report.activity = StatusReport.Activity(
                name: name, reason: try r.getOptional(String.self, "activity_reason"),
                detail: try r.getOptional(String.self, "activity_detail"),
                done: try r.getOptional(Int64.self, "activity_done"), total: try r.getOptional(Int64.self, "activity_total"),
                unit: try r.getOptional(String.self, "activity_unit"),
                ratePerSecond: try r.getOptional(Double.self, "activity_rate"),
                etaSeconds: try r.getOptional(Double.self, "activity_eta_seconds"))
        }
        report.leaderHeartbeatAgeSeconds = try r.getOptional(Double.self, "leader_heartbeat_age_seconds")
        report.settingsError = try r.getOptional(String.self, "settings_error")
        report.zvalRejected = try r.get(Int64.self, "zval_rejected")
        report.theta0 = try r.getOptional(String.self, "theta0")
        report.zvalSignal = try ZvalSignal(row: r)
        return report
    }

    /// Every row of tov.workers, the leader first.
    static func workerGetMany(on connection: Connection) async throws -> [StatusReport.Worker] {
        try await connection.query("""
            SELECT instance, role, state, heartbeat_age_seconds, workers, rows_per_second, last_error
            FROM tov.workers ORDER BY role = 'leader' DESC, instance
            """).map { w in
            StatusReport.Worker(
                instance: try w.get(String.self, "instance"), role: try w.get(String.self, "role"),
                state: try w.get(String.self, "state"), heartbeatAgeSeconds: try w.get(Double.self, "heartbeat_age_seconds"),
                workers: Int(try w.get(Int32.self, "workers")), rowsPerSecond: try w.getOptional(Double.self, "rows_per_second"),
                lastError: try w.getOptional(String.self, "last_error"))
        }
    }

    /// Every row of tov.target_status, in target id order (`tovd target list`; tov_reader may read it).
    public static func targetStatusGetMany(on connection: Connection) async throws -> [StatusReport.Target] {
        try await connection.query("""
            SELECT s.target, s.enabled, s.zval_version, s.zval_rows, s.zval_rejected, s.model_version, s.base_version,
                   s.next_model_version, s.next_model_status, s.next_model_reason, s.rescore_pending, s.rescore_total,
                   s.selection_version, s.selection_size, s.selection_computed_at::text AS selection_computed_at,
                   s.last_refresh_finished_at::text AS last_refresh_finished_at, s.zval_current, s.zval_agreement, s.zval_transfer,
                   s.zval_helped_share, s.zval_signal,
                   (SELECT coalesce(jsonb_object_agg(e.key, e.value::text), '{}')::text FROM jsonb_each(s.settings) e) AS settings
            FROM tov.target_status s JOIN tov.targets t ON t.name = s.target
            ORDER BY t.target_id
            """).map { r in
            let settings = try JSONDecoder().decode([String: String].self, from: Data(try r.get(String.self, "settings").utf8))
            return StatusReport.Target(
                name: try r.get(String.self, "target"), enabled: try r.get(Bool.self, "enabled"), settings: settings,
                zvalVersion: try r.get(Int64.self, "zval_version"), zvalRows: try r.get(Int64.self, "zval_rows"),
                zvalRejected: try r.get(Int64.self, "zval_rejected"),
                modelVersion: try r.getOptional(Int32.self, "model_version").map(Int.init),
                baseVersion: try r.getOptional(Int32.self, "base_version").map(Int.init),
                nextModelVersion: try r.getOptional(Int32.self, "next_model_version").map(Int.init),
                nextModelStatus: try r.getOptional(String.self, "next_model_status"),
                nextModelReason: try r.getOptional(String.self, "next_model_reason"),
                rescorePending: try r.getOptional(Int64.self, "rescore_pending"),
                rescoreTotal: try r.getOptional(Int64.self, "rescore_total"),
                selectionVersion: try r.getOptional(Int64.self, "selection_version") ?? 0,
                selectionSize: try r.get(Int64.self, "selection_size"),
                selectionComputedAt: try r.getOptional(String.self, "selection_computed_at"),
                lastRefreshFinishedAt: try r.getOptional(String.self, "last_refresh_finished_at"),
                zvalCurrent: try r.getOptional(Bool.self, "zval_current"),
                zvalSignal: try ZvalSignal(row: r))
        }
    }

    /// How many running instances (fresh heartbeat, not stopped) may become the leader, i.e. were not
    /// started with `--no-leader`; nil when this role may not read tov.instances (tov_reader sees
    /// only the tov.workers view, which does not carry `leader_capable`).
    static func instanceCountLeaderCapable(on connection: Connection) async throws -> Int? {
        do {
            let rows = try await connection.query("""
                SELECT count(*) AS n FROM tov.instances
                WHERE leader_capable AND stopped_at IS NULL AND tov.instance_is_fresh(heartbeat_at)
                """)
            return Int(try rows.first!.get(Int64.self, "n"))
        } catch let error as PQError where error.sqlState == .insufficientPrivilege {
            return nil
        }
    }

    // MARK: - Explain

    public struct CandidateStateGetParams: Sendable {
        public var candidateID: Int64
        /// The target whose model version and selection the state is read for (U is the base
        /// model's, shared by every target, but each target switches to a new base on its own).
        public var target: String
        public init(candidateID: Int64, target: String = Settings.defaultTarget) {
            self.candidateID = candidateID
            self.target = target
        }
    }

    /// Where a candidate stands before its scores: rejected, in U, or queued.
    public struct CandidateStateRow: Sendable, Equatable {
        public var rejectReason: String?
        public var rejectDetail: String?
        public var rejectAttempts: Int?
        /// The base model of the complete model version (the one tov.selected and tov.score_details
        /// come from); before the first version, the newest complete base model.
        public var currentBaseVersion: Int?
        public var inCurrentBaseSubset: Bool
        /// A newer base model being trained or rescored (a rebase), if any, and its status.
        public var nextBaseVersion: Int?
        public var nextBaseStatus: String?
        public var inNextBaseSubset: Bool
        public var jobsQueued: Int64
    }

    /// The candidate's state, or nil if no candidate has that id.
    ///
    /// U is the current version's base subset, not that of every complete base model: during a
    /// rebase's rescoring the new base is already complete (and the old one superseded) while the
    /// selection still comes from the old base's version, whose U is the one that kept rows out.
    public static func candidateStateGet(_ params: CandidateStateGetParams, on connection: Connection) async throws -> CandidateStateRow? {
        let rows = try await connection.query("""
            WITH current_base AS (
                SELECT coalesce((SELECT m.base_version FROM tov.model_versions m JOIN tov.targets t USING (target_id)
                                 WHERE m.status = 'complete' AND t.name = $2),
                                (SELECT max(base_version) FROM tov.base_models WHERE status = 'complete')) AS base_version
            ), next_base AS (
                SELECT base_version, status::text AS status FROM tov.base_models
                WHERE status IN ('training', 'complete') AND base_version > coalesce((SELECT base_version FROM current_base), 0)
                ORDER BY base_version DESC LIMIT 1
            )
            SELECT r.reason::text AS reject_reason, r.detail AS reject_detail, r.attempts AS reject_attempts,
                   (SELECT base_version FROM current_base) AS current_base_version,
                   EXISTS (SELECT 1 FROM tov.base_subset b JOIN current_base USING (base_version)
                           WHERE b.candidate_id = c.id) AS in_current_base_subset,
                   (SELECT base_version FROM next_base) AS next_base_version,
                   (SELECT status FROM next_base) AS next_base_status,
                   EXISTS (SELECT 1 FROM tov.base_subset b JOIN next_base USING (base_version)
                           WHERE b.candidate_id = c.id) AS in_next_base_subset,
                   (SELECT count(*) FROM tov.jobs j WHERE j.candidate_id = c.id) AS jobs_queued
            FROM tov.candidates c LEFT JOIN tov.rejects r ON r.candidate_id = c.id
            WHERE c.id = $1
            """, [params.candidateID, params.target])
        guard let r = rows.first else { return nil }
        return CandidateStateRow(
            rejectReason: try r.getOptional(String.self, "reject_reason"), rejectDetail: try r.getOptional(String.self, "reject_detail"),
            rejectAttempts: try r.getOptional(Int32.self, "reject_attempts").map(Int.init),
            currentBaseVersion: try r.getOptional(Int32.self, "current_base_version").map(Int.init),
            inCurrentBaseSubset: try r.get(Bool.self, "in_current_base_subset"),
            nextBaseVersion: try r.getOptional(Int32.self, "next_base_version").map(Int.init),
            nextBaseStatus: try r.getOptional(String.self, "next_base_status"),
            inNextBaseSubset: try r.get(Bool.self, "in_next_base_subset"),
            jobsQueued: try r.get(Int64.self, "jobs_queued"))
    }

    public struct ScoreDetailGetParams: Sendable {
        public var candidateID: Int64
        public var target: String
        public init(candidateID: Int64, target: String = Settings.defaultTarget) {
            self.candidateID = candidateID
            self.target = target
        }
    }

    /// One row of tov.score_details: the candidate's scores under the complete model version and its
    /// place in the selection's length bins.
    public struct ScoreDetailRow: Sendable, Equatable {
        public var modelVersion: Int
        public var score: Double
        public var baseLosses: [Float]
        public var valLosses: [Float]
        public var uncertainty: Float
        public var tokens: Int
        public var lengthBin: Int
        public var rankInBin: Int
        public var binSize: Int
        public var eligible: Int
        /// "score", "random" or "importance" when the row is in the selection.
        public var selectedReason: String?
    }

    /// The candidate's score details, or nil if the complete model version has not scored it.
    /// tov.score_details computes window functions over the whole version: read a few ids at a time.
    public static func scoreDetailGet(_ params: ScoreDetailGetParams, on connection: Connection) async throws -> ScoreDetailRow? {
        let rows = try await connection.query("""
            SELECT model_version, score, base_losses, val_losses, uncertainty, tokens, length_bin, rank_in_bin, bin_size,
                   eligible, selected_reason
            FROM tov.score_details WHERE candidate_id = $1 AND target = $2
            """, [params.candidateID, params.target])
        guard let r = rows.first else { return nil }
        return ScoreDetailRow(
            modelVersion: Int(try r.get(Int32.self, "model_version")), score: try r.get(Double.self, "score"),
            baseLosses: try r.get([Float].self, "base_losses"), valLosses: try r.get([Float].self, "val_losses"),
            uncertainty: try r.get(Float.self, "uncertainty"), tokens: Int(try r.get(Int32.self, "tokens")),
            lengthBin: Int(try r.get(Int64.self, "length_bin")), rankInBin: Int(try r.get(Int64.self, "rank_in_bin")),
            binSize: Int(try r.get(Int64.self, "bin_size")), eligible: Int(try r.get(Int64.self, "eligible")),
            selectedReason: try r.getOptional(String.self, "selected_reason"))
    }
}
