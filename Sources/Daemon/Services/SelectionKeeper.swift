import Foundation
import Logging
import PQ
import Selection

/// Keeps every target's selection current (tov.selections; tov.selected is the target `default`'s):
/// switches a target to its fully rescored model version in one transaction, and folds new scores,
/// deletions and settings changes into each selection. Woken by every committed batch (tov_scores),
/// at most once per `minimumGap`; runs while the trainer trains, on its own connection, so a long
/// training never makes a selection stale.
///
/// Each step goes through the targets in id order, each on its own: its snapshot (its complete and
/// rescoring versions, its selection_state row), the same ``SelectionKeeperPolicy`` rule, and the
/// switch or update under the target's own selection settings (budget, policy, bins, score_fn). One
/// target's switch or update never touches another's versions, scores, selection or history.
///
/// A disabled target is kept like any other: the trainer starts nothing for it, but the versions it
/// already has stay live (workers score new rows under them), so its selection keeps folding in new
/// and deleted rows, and a rescoring that was under way when it was disabled is switched in when it
/// is done, rather than left holding the target's one in-progress slot. Its selection stays
/// readable and consistent with the pool; it just never gets a newer model.
///
/// Whether a selection is out of date is read from the database (tov.selection_state records the
/// model version and settings each target's selection was computed under), never from this
/// process's memory: a leader that lost the lease and got it back after another changed the
/// settings still sees the truth.
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
        var next: Duration = .seconds(1)
        // One target's failure (a statement error on its rows) must not leave the others stale: the
        // rest of the step goes on, and the first failure is thrown at its end, to be logged and
        // retried as any step's. What ends the step for every target ends it at once.
        var failure: (any Error)?
        for target in current.targets {
            do {
                if try await keep(target, fence: fence, on: connection) { next = .zero }
            } catch let error where Self.endsTheStep(error) {
                throw error
            } catch {
                logger.error("selection of one target failed; the other targets are kept", metadata: [
                    "target": "\(target.name)", "error": "\(error)",
                ])
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        // Every committed batch wakes us; fold bursts into one update per minimum gap.
        try await clock.sleep(until: started + minimumGap, tolerance: nil)
        return next
    }

    /// Failures no other target's turn would escape: cancellation, a lost connection, a lease that
    /// moved to another instance (the fence's TV001).
    static func endsTheStep(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        guard let error = error as? PQError else { return false }
        return error.isConnectionProblem || error.sqlState?.rawValue == "TV001"
    }

    /// One target's turn: decide from its snapshot, then switch or update. Returns whether the next
    /// step should come at once (after a switch, as before targets: the old version's scores are
    /// gone and rows it found missing are being scored).
    private func keep(_ target: TargetSettings, fence: LeaderFence, on connection: Connection) async throws -> Bool {
        let selection = target.settings.selection
        // nil: the target was dropped after the settings were read; its selection went with it.
        guard let snapshot = try await ModelVersionStore.keeperSnapshot(target: target.id, selectionSettings: selection.canonicalJSON, on: connection) else {
            return false
        }
        if let version = snapshot.completeVersion, target.name == Settings.defaultTarget { metrics.modelVersion.set(to: Double(version)) }
        switch SelectionKeeperPolicy.decide(snapshot) {
        case .nothing:
            return false
        case .switchTo(let version, let base):
            try await switchTo(version: version, base: base, target: target, fence: fence, on: connection)
            return true
        case .update(let version):
            let change = try await fence.transaction(on: connection) { tx -> SelectionWriter.Change? in
                guard try await ModelVersionStore.targetHold(target.id, on: tx) else { return nil }
                return try await SelectionWriter.update(in: tx, modelVersion: version, settings: selection)
            }
            if let change { record(change, target: target) }
            return false
        }
    }

    /// Switches `target` to the version it is rescoring: marks it complete, supersedes the target's
    /// old one and recomputes the target's selection, all in one transaction; then deletes the
    /// scores no version reads any more and vacuums the queue (``SelectionQueries/jobTableVacuum``).
    /// Does nothing but enqueue them when rows became ready meanwhile, and nothing at all when the
    /// target is gone.
    func switchTo(version: Int, base: Int, target: TargetSettings, fence: LeaderFence, on connection: Connection) async throws {
        let outcome = try await fence.transaction(on: connection) { tx -> SwitchOutcome in
            // Held to the end: a target dropped meanwhile takes its versions along, and there is nothing to switch.
            guard try await ModelVersionStore.targetHold(target.id, on: tx) else { return .targetGone }
            // Rows that became ready after the rescoring was enqueued: score them first.
            let missed = try await tx.execute(Queries.jobEnqueueMissingScores, [version, base])
            if missed > 0 { return .rowsMissed }
            try await ModelVersionStore.modelVersionSwitch(to: version, on: tx)
            // A new model version: φ is re-derived under the target's score_fn in force, then its selection switches.
            return .switched(try await SelectionWriter.update(in: tx, modelVersion: version, settings: target.settings.selection))
        }
        let change: SelectionWriter.Change
        switch outcome {
        case .targetGone:
            return
        case .rowsMissed:
            workers.signal()
            return
        case .switched(let made):
            change = made
        }
        if target.name == Settings.defaultTarget { metrics.modelVersion.set(to: Double(version)) }
        record(change, target: target)
        logger.notice("switched to a new model version", metadata: [
            "target": "\(target.name)", "model_version": "\(version)", "base_version": "\(base)",
            "selection_version": "\(change.selectionVersion)", "size": "\(change.size)",
        ])
        // Only superseded and failed versions' scores go: every target's complete and rescoring versions keep theirs.
        try await fence.transaction(on: connection) { tx in try await ModelVersionStore.obsoleteScoresDelete(keepingBase: base, on: tx) }
        // Housekeeping: the switch is done whatever becomes of it, so only a failure that ends the step
        // (a lost connection, cancellation) goes up.
        do {
            try await connection.simpleQuery(SelectionQueries.jobTableVacuum)
        } catch let error where !Self.endsTheStep(error) {
            logger.warning("could not vacuum tov.jobs after a switch; autovacuum will", metadata: ["error": "\(error)"])
        }
    }

    private enum SwitchOutcome {
        case switched(SelectionWriter.Change)
        /// Rows that became ready after the rescoring began were enqueued: the switch waits for them.
        case rowsMissed
        case targetGone
    }

    /// Logs a change, and sets the selection gauges for the target `default` (what tov.selected and
    /// tov.status describe, and the gauges' help text says), so a single-target daemon reports as it
    /// always did; every target's figures are in tov.target_status.
    private func record(_ change: SelectionWriter.Change, target: TargetSettings) {
        if target.name == Settings.defaultTarget {
            metrics.selectionVersion.set(to: Double(change.selectionVersion))
            metrics.selectionSize.set(to: Double(change.size))
        }
        if change.changed {
            logger.info("selection updated", metadata: [
                "target": "\(target.name)", "selection_version": "\(change.selectionVersion)", "size": "\(change.size)",
                "entered": "\(change.entered)", "left": "\(change.left)",
            ])
        }
    }
}

/// Re-enqueues ready rows that have no score under a live version and no job: rows a worker
/// committed while a new version was being created, or work lost to a crash. Per live version of
/// every target, each against its own base model's U; a version belongs to one target, so the rows
/// it enqueues are that target's work alone. It also deletes the jobs of versions dropped with
/// their target, which no worker could score.
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
        let orphaned = try await fence.transaction(on: connection) { tx in try await ModelVersionStore.jobOfGoneVersionDeleteMany(on: tx) }
        if orphaned > 0 {
            logger.notice("sweeper deleted the jobs of model versions dropped with their target", metadata: ["jobs": "\(orphaned)"])
        }
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
