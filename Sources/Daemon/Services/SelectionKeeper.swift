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
final class SelectionKeeper: LeaderJob, Sendable {
    let name = "selection keeper"
    let settings: SettingsCache
    let workers: WakeupSignal
    let metrics: DaemonMetrics
    let logger: Logger
    let minimumGap: Duration
    let clock: DaemonClock

    init(settings: SettingsCache, workers: WakeupSignal, metrics: DaemonMetrics, minimumGap: Duration, clock: DaemonClock, logger: Logger) {
        self.clock = clock
        self.settings = settings
        self.workers = workers
        self.metrics = metrics
        self.minimumGap = minimumGap
        self.logger = logger
    }

    func step(fence: LeaderFence, on connection: Connection) async throws -> Duration {
        let started = clock.now
        let current = try await settings.current(on: connection)
        let snapshot = try await ModelVersionStore.keeperSnapshot(selectionSettings: current.selection.canonicalJSON, on: connection)
        if let version = snapshot.completeVersion { metrics.modelVersion.set(to: Double(version)) }
        var next: Duration = .seconds(1)
        switch SelectionKeeperPolicy.decide(snapshot) {
        case .nothing:
            break
        case .switchTo(let version, let base):
            try await switchTo(version: version, base: base, settings: current, fence: fence, on: connection)
            next = .zero
        case .update(let version):
            let change = try await fence.transaction(on: connection) { tx in
                try await SelectionWriter.update(in: tx, modelVersion: version, settings: current.selection)
            }
            record(change)
        }
        // Every committed batch wakes us; fold bursts into one update per minimum gap.
        try await clock.sleep(until: started + minimumGap, tolerance: nil)
        return next
    }

    /// Switches to the version being rescored: marks it complete, supersedes the old one and
    /// recomputes the selection, all in one transaction.
    func switchTo(version: Int, base: Int, settings: Settings, fence: LeaderFence, on connection: Connection) async throws {
        let switched = try await fence.transaction(on: connection) { tx -> SelectionWriter.Change? in
            // Rows that became ready after the rescoring was enqueued: score them first.
            let missed = try await tx.execute(Queries.jobEnqueueMissingScores, [version, base])
            if missed > 0 { return nil }
            try await ModelVersionStore.modelVersionSwitch(to: version, on: tx)
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
        try await fence.transaction(on: connection) { tx in try await ModelVersionStore.obsoleteScoresDelete(keepingBase: base, on: tx) }
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
final class Sweeper: LeaderJob, Sendable {
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
        for (version, base) in try await ModelVersionStore.modelVersionLiveMany(on: connection) {
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
