import Foundation
import Logging
import PQ
import Selection

/// Keeps tov.selected current: switches to a fully rescored model version in one transaction, and
/// folds new scores, deletions and settings changes into the selection. Woken by every committed
/// batch (tov_scores), at most once per `minimumGap`; runs while the trainer trains, on its own
/// connection, so a long training never makes the selection stale.
///
/// Whether the selection is out of date is read from the database (tov.selection_state records the
/// model version and settings it was computed under), never from this process's memory: a leader
/// that lost the lease and got it back after another changed the settings still sees the truth.
final class SelectionKeeper: LeaderJob, @unchecked Sendable {
    let name = "selection keeper"
    let settings: SettingsCache
    let workers: WakeupSignal
    let metrics: DaemonMetrics
    let logger: Logger
    let minimumGap: Duration

    init(settings: SettingsCache, workers: WakeupSignal, metrics: DaemonMetrics, minimumGap: Duration, logger: Logger) {
        self.settings = settings
        self.workers = workers
        self.metrics = metrics
        self.minimumGap = minimumGap
        self.logger = logger
    }

    func step(fence: LeaderFence, on connection: Connection) async throws -> Duration {
        let started = ContinuousClock.now
        let current = try await settings.current(on: connection)
        try await finishRescoring(settings: current, fence: fence, on: connection)
        try await updateSelection(settings: current, fence: fence, on: connection)
        // Every committed batch wakes us; fold bursts into one update per minimum gap.
        let gap = minimumGap - (ContinuousClock.now - started)
        if gap > .zero { try await Task.sleep(for: gap) }
        return .seconds(1)
    }

    /// Switches to the version being rescored once every eligible row has a score under it: marks it
    /// complete, supersedes the old one and recomputes the selection, all in one transaction.
    func finishRescoring(settings: Settings, fence: LeaderFence, on connection: Connection) async throws {
        let scoring = try await connection.query("SELECT model_version, base_version FROM tov.model_versions WHERE status = 'scoring'")
        guard let row = scoring.first else { return }
        let version = Int(try row.get(Int32.self, 0))
        let base = Int(try row.get(Int32.self, 1))
        let pending = try await connection.query(Queries.jobCountForVersion, [version]).first!.get(Int64.self, 0)
        guard pending == 0 else { return }
        let switched = try await fence.transaction(on: connection) { tx -> SelectionWriter.Change? in
            // Rows that became ready after the rescoring was enqueued: score them first.
            let missed = try await tx.execute(Queries.jobEnqueueMissingScores, [version, base])
            if missed > 0 { return nil }
            try await tx.execute("UPDATE tov.model_versions SET status = 'superseded' WHERE status = 'complete'")
            try await tx.execute("UPDATE tov.model_versions SET status = 'complete', completed_at = now() WHERE model_version = $1", [version])
            try await tx.execute("UPDATE tov.refreshes SET finished_at = now() WHERE model_version = $1", [version])
            // A new model version: φ is re-derived under the score_fn in force, then the selection switches.
            return try await SelectionWriter.update(in: tx, modelVersion: version, settings: settings.selection)
        }
        guard let change = switched else {
            workers.signal()
            return
        }
        metrics.modelVersion.set(to: Double(version))
        record(change)
        logger.notice("switched to a new model version", metadata: [
            "model_version": "\(version)", "base_version": "\(base)", "selection_version": "\(change.selectionVersion)", "size": "\(change.size)",
        ])
        // Old versions' scores are no longer read; neither are the base losses of base models that no
        // live version uses. Checkpoints stay for audit.
        try await fence.transaction(on: connection) { tx in
            try await tx.execute("""
                DELETE FROM tov.scores s USING tov.model_versions m
                WHERE s.model_version = m.model_version AND m.status IN ('superseded', 'failed')
                """)
            try await tx.execute("""
                DELETE FROM tov.base_losses l
                WHERE l.base_version < $1
                  AND NOT EXISTS (SELECT 1 FROM tov.model_versions m WHERE m.base_version = l.base_version AND m.status IN ('scoring', 'complete'))
                """, [base])
        }
    }

    /// Updates the selection when the complete version got new scores, lost binned rows (reported
    /// in tov.scores_removed by a trigger), or the selection was computed under another version or
    /// other settings. The check reads an index entry and two tiny tables, so an idle step costs
    /// nothing however large the pool.
    func updateSelection(settings: Settings, fence: LeaderFence, on connection: Connection) async throws {
        let complete = try await connection.query("SELECT model_version FROM tov.model_versions WHERE status = 'complete'")
        guard let row = complete.first else { return }
        let version = Int(try row.get(Int32.self, 0))
        metrics.modelVersion.set(to: Double(version))
        let pending = try await connection.query("""
            SELECT EXISTS (SELECT 1 FROM tov.scores WHERE model_version = $1::int AND length_bin IS NULL)
                OR EXISTS (SELECT 1 FROM tov.scores_removed)
                OR (SELECT bin_rows IS NULL OR model_version IS DISTINCT FROM $1::int OR settings IS DISTINCT FROM $2::jsonb
                    FROM tov.selection_state)
            """, [version, settings.selection.canonicalJSON]).first!.get(Bool.self, 0)
        guard pending else { return }
        let change = try await fence.transaction(on: connection) { tx in
            try await SelectionWriter.update(in: tx, modelVersion: version, settings: settings.selection)
        }
        record(change)
    }

    private func record(_ change: SelectionWriter.Change) {
        metrics.selectionVersion.set(to: Double(change.selectionVersion))
        metrics.selectionSize.set(to: Double(change.size))
        if change.changed {
            logger.info("selection updated", metadata: [
                "selection_version": "\(change.selectionVersion)", "size": "\(change.size)",
                "entered": "\(change.entered)", "left": "\(change.left)",
            ])
        }
    }
}

/// Re-enqueues ready rows that have no score under a live version and no job: rows a worker
/// committed while a new version was being created, or work lost to a crash.
final class Sweeper: LeaderJob, @unchecked Sendable {
    let name = "sweeper"
    let interval: Duration
    let workers: WakeupSignal
    let logger: Logger

    init(interval: Duration, workers: WakeupSignal, logger: Logger) {
        self.interval = interval
        self.workers = workers
        self.logger = logger
    }

    func step(fence: LeaderFence, on connection: Connection) async throws -> Duration {
        for row in try await connection.query("SELECT model_version, base_version FROM tov.model_versions WHERE status IN ('complete', 'scoring')") {
            let version = Int(try row.get(Int32.self, 0))
            let base = Int(try row.get(Int32.self, 1))
            let enqueued = try await fence.transaction(on: connection) { tx in
                try await tx.execute(Queries.jobEnqueueMissingScores, [version, base])
            }
            if enqueued > 0 {
                logger.notice("sweeper re-enqueued unscored rows", metadata: ["model_version": "\(version)", "rows": "\(enqueued)"])
                workers.signal()
            }
        }
        return interval
    }
}
