import Foundation
import Logging
import PQ
import Selection
import ServiceLifecycle
import Surrogate
import Synchronization

/// One claim → validate → score → commit loop on its own database connection.
///
/// A batch is claimed with `FOR UPDATE SKIP LOCKED` and a lease, processed outside any transaction,
/// and completed in one transaction that first deletes the jobs *whose attempt number still matches*:
/// a worker whose lease expired (and whose rows another worker re-claimed) gets nothing back and so
/// writes nothing. A claim holds at most one row on a retry, processed alone after the fresh rows and
/// charged only for that try (`tried_alone`), so a row that crashed the process cannot take a batch
/// down with it again, and neither rows that merely shared a batch with it nor a retried row that
/// was waiting its turn when the process was killed are charged for it.
///
/// While a batch is processed its leases are renewed every `leaseSeconds`/3 (``LeaseRenewal``), so
/// a batch slower than its lease is not taken over; fencing is unchanged. On graceful shutdown an
/// unfinished batch stops waiting for its scoring and gives its claims back (attempts not charged),
/// so another instance takes the rows at once instead of after the lease.
public final class ScoringWorker: Service, Sendable {
    public struct Configuration: Sendable {
        public var conninfo: String
        public var name: String
        public var batchSize = TovDaemon.Defaults.batchSize
        public var leaseSeconds = TovDaemon.Defaults.leaseSeconds
        public var pollInterval: Duration = .milliseconds(Int(TovDaemon.Defaults.pollSeconds * 1000))
        /// Already resolved against the CPU (TovDaemon): .bf16 only where it can run.
        public var scoringPrecision: ScoringPrecision = .preferred
        /// Test-only (``Faults/scoreDelay``): every batch that scores rows with a model takes this much longer.
        public var faultScoreDelay: Duration?

        public init(conninfo: String, name: String) {
            self.conninfo = conninfo
            self.name = name
        }
    }

    let configuration: Configuration
    let wakeup: WakeupSignal
    let models: ModelCache
    let settings: SettingsCache
    let metrics: DaemonMetrics
    let health: HealthState
    let logger: Logger
    let clock: DaemonClock
    /// Where a failed batch is reported besides the log (the instance's tov.workers.last_error).
    let onError: @Sendable (String) -> Void
    private let stopFlag = StopFlag()
    /// What this worker's batches ran through the model (a test signal, and a benchmark's count).
    public var forwardRowCounts: ForwardRows { forwardRows.withLock { $0 } }
    private let forwardRows = Mutex(ForwardRows())

    public init(configuration: Configuration, wakeup: WakeupSignal, models: ModelCache, settings: SettingsCache,
                metrics: DaemonMetrics, health: HealthState, clock: DaemonClock, logger: Logger,
                onError: @escaping @Sendable (String) -> Void = { _ in }) {
        self.clock = clock
        self.onError = onError
        self.configuration = configuration
        self.wakeup = wakeup
        self.models = models
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.logger = logger
    }

    public func run() async throws {
        let loop = DatabaseLoop(conninfo: configuration.conninfo, name: "worker \(configuration.name)", logger: logger, stopping: stopFlag, clock: clock)
        try await withGracefulShutdownHandler {
            try await loop.run(onConnectionLost: { _ in
                health.setDatabase(up: false, worker: configuration.name)
            }, onError: { error in
                // A bad checkpoint or a query error must not kill the daemon: the claimed rows' jobs say
                // why, and they are retried.
                logger.error("batch failed", metadata: ["error": "\(error)"])
                onError("\(configuration.name): batch failed: \(error)")
            }) {
                let connection = try await loop.connection()
                health.setDatabase(up: true, worker: configuration.name)
                let claimed = try await runOneBatch(on: connection)
                if claimed == 0 { await wakeup.wait(timeout: configuration.pollInterval, on: clock) }
            }
        } onGracefulShutdown: {
            self.stopFlag.set()
            self.wakeup.signal()
        }
    }

    /// Claims and completes one batch. Returns the number of jobs claimed (0: nothing to do).
    func runOneBatch(on connection: Connection) async throws -> Int {
        let started = clock.now
        let current = try await settings.current(on: connection)
        // Models first: a version whose checkpoint cannot be loaded (missing, corrupt) is known
        // before any row is claimed, and its jobs are left unclaimed so they are not charged.
        var live = try await models.versions(on: connection)
        let jobs = try await claim(on: connection, skipping: live.unloadable, maxTextBytes: current.maxTextBytes)
        guard !jobs.isEmpty else { return 0 }
        metrics.rowsClaimed.increment(by: Int64(jobs.count))
        metrics.lagSeconds.set(to: jobs.map(\.ageSeconds).max() ?? 0)
        let lease = LeaseRenewal(jobs: jobs, leaseSeconds: configuration.leaseSeconds, connection: connection, clock: clock, logger: logger)
        lease.start()
        var unfinished = jobs
        do {
            // A version that went live between the two queries: load it too.
            if jobs.contains(where: { job in
                job.modelVersion > 0 && !live.unloadable.contains(job.modelVersion) && !live.loaded.contains { $0.modelVersion == job.modelVersion }
            }) {
                live = try await models.versions(on: connection)
            }
            // The fresh rows first, then the retry alone, charged just before it is scored: a kill
            // while the fresh rows are scored (a deploy, the OOM killer, the fault suite's SIGKILLs,
            // which come early in a process's life, when its first batch also warms the models) says
            // nothing about the retried row, and the row it does say something about is alone.
            let fresh = jobs.filter { !$0.isRetry }
            if !fresh.isEmpty {
                try await process(fresh, live: live, settings: current, lease: lease, on: connection)
                unfinished.removeAll { !$0.isRetry }
            }
            for job in jobs where job.isRetry {
                // (A job out of tries is not tried again: `process` rejects it.)
                if job.failedTries < current.maxAttempts {
                    let marked = try await connection.query(Queries.jobTryAloneMark, [job.candidateID, Int32(job.modelVersion), Int32(job.attempts)])
                    // Re-claimed by another worker after our lease ran out: it is theirs to score.
                    guard !marked.isEmpty else { unfinished.removeAll { $0.key == job.key }; continue }
                }
                try await process([job], live: live, settings: current, lease: lease, on: connection)
                unfinished.removeAll { $0.key == job.key }
            }
        } catch is WorkerStopping {
            await lease.stop()
            try await release(unfinished, on: connection)
            return jobs.count
        } catch {
            await lease.stop()
            // The jobs say why (tov.jobs.last_error) and are retried at once, not after the lease.
            try? await connection.execute(Queries.jobFailMany, [
                unfinished.map(\.candidateID), unfinished.map { Int32($0.modelVersion) }, unfinished.map { Int32($0.attempts) },
                String("\(error)".prefix(500)),
            ])
            throw error
        }
        await lease.stop()
        let elapsed = clock.now - started
        metrics.batchSeconds.record(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        return jobs.count
    }

    func claim(on connection: Connection, skipping unloadable: Set<Int> = [], maxTextBytes: Int) async throws -> [ClaimedJob] {
        try await Self.claim(on: connection, batchSize: configuration.batchSize, leaseSeconds: configuration.leaseSeconds,
                             worker: configuration.name, skipping: unloadable, maxTextBytes: maxTextBytes)
    }

    /// The claim statement and the decoding of its rows: the worker's, and `tovd bench capacity`'s
    /// simulated scorers', so the bench cannot drift from what workers run.
    static func claim(on connection: Connection, batchSize: Int, leaseSeconds: Double, worker: String,
                      skipping unloadable: Set<Int>, maxTextBytes: Int) async throws -> [ClaimedJob] {
        // The skip list goes as an array literal in a string: PQ sends an *empty* [Int32] as an
        // empty bytea (an empty Swift array casts to [UInt8]), which the server refuses.
        let skipped = "{" + unloadable.sorted().map(String.init).joined(separator: ",") + "}"
        let rows = try await connection.query(Queries.jobClaimMany, [batchSize, leaseSeconds, worker, skipped, maxTextBytes])
        return try rows.map { row in
            ClaimedJob(
                candidateID: try row.get(Int64.self, "candidate_id"),
                modelVersion: Int(try row.get(Int32.self, "model_version")),
                attempts: Int(try row.get(Int32.self, "attempts")),
                triedAlone: Int(try row.get(Int32.self, "tried_alone")),
                prompt: try row.getOptional([UInt8].self, "prompt"),
                response: try row.getOptional([UInt8].self, "response"),
                ageSeconds: try row.get(Double.self, "age_seconds"),
                promptBytes: Int(try row.get(Int32.self, "prompt_bytes")),
                responseBytes: Int(try row.get(Int32.self, "response_bytes")))
        }
    }

    /// Gives the claims of an interrupted batch back: another worker may take them at once, and
    /// the attempt is not charged (the rows did nothing wrong).
    private func release(_ jobs: [ClaimedJob], on connection: Connection) async throws {
        guard !jobs.isEmpty else { return }
        let released = try await connection.execute(Queries.jobReleaseMany, [
            jobs.map(\.candidateID), jobs.map { Int32($0.modelVersion) }, jobs.map { Int32($0.attempts) }, jobs.map { Int32($0.triedAlone) },
        ])
        logger.info("stopping: claims of the unfinished batch released", metadata: ["rows": "\(released)", "worker": "\(configuration.name)"])
    }

    /// Validates and scores `jobs`, then completes them in one fenced transaction.
    func process(_ jobs: [ClaimedJob], live: ModelCache.Live, settings: Settings, lease: LeaseRenewal,
                 on connection: Connection) async throws {
        var outcome = BatchOutcome(jobs: [])
        outcome.waitFor = live.unloadable
        let validator = RowValidator(maxTextBytes: settings.maxTextBytes)

        // Which rows go to which model version.
        var rowsByVersion: [Int: [ClaimedJob]] = [:]
        for job in jobs {
            if live.unloadable.contains(job.modelVersion) {
                // Its version failed to load after the claim: give the job back untouched.
                outcome.released.append(job)
                continue
            }
            outcome.jobs.append(job)
            if job.failedTries >= settings.maxAttempts {
                outcome.rejects.append(.init(job: job, reason: .repeatedFailure,
                    detail: "scoring did not finish in \(job.failedTries) tries (its batch's, then \(job.triedAlone) alone: crash or lease timeout; max_attempts \(settings.maxAttempts)); see the daemon's log for batch errors"))
                continue
            }
            guard let prompt = job.prompt, let response = job.response else {
                // Over max_text_bytes, found by the claim without fetching the text. Only a new row
                // (model_version 0): a rescoring job's row is fetched whatever the limit is now.
                let (field, bytes) = job.promptBytes > settings.maxTextBytes ? ("prompt", job.promptBytes) : ("response", job.responseBytes)
                outcome.rejects.append(.init(job: job, reason: .tooLong,
                    detail: "\(field) is \(bytes) bytes, over the limit of \(settings.maxTextBytes) (setting max_text_bytes)"))
                continue
            }
            if job.modelVersion == 0 {
                switch validator.check(prompt: prompt, response: response) {
                case .reject(let reason, let detail):
                    outcome.rejects.append(.init(job: job, reason: reason, detail: detail))
                    continue
                case .ready(let promptBytes, let responseBytes):
                    outcome.ready.append((job.candidateID, promptBytes, responseBytes))
                }
                for version in live.loaded { rowsByVersion[version.modelVersion, default: []].append(job) }
            } else if live.loaded.contains(where: { $0.modelVersion == job.modelVersion }) {
                rowsByVersion[job.modelVersion, default: []].append(job)
            }
            // A rescore job for a version that is no longer live is simply completed.
        }

        if let delay = configuration.faultScoreDelay, !rowsByVersion.isEmpty {
            try await untilStopped { [clock] in try await clock.sleep(for: delay) }
        }
        for version in live.loaded {
            guard var rows = rowsByVersion[version.modelVersion], !rows.isEmpty else { continue }
            // U rows are never scored: their loss under θ_bas is biased by having trained on them.
            let inU = try await baseSubsetMembers(version.baseVersion, rows.map(\.candidateID), on: connection)
            rows.removeAll { inU.contains($0.candidateID) }
            guard !rows.isEmpty else { continue }
            let base = try await baseLosses(for: rows, version: version, outcome: &outcome, on: connection)
            let texts = rows.map(\.text)
            let scoring = Model.ScoringOptions(precision: configuration.scoringPrecision)
            let val = try await untilStopped { try await runOffPool(name: "tovd-score") { try version.valLosses(texts, options: scoring) } }
            forwardRows.withLock { $0.val += rows.count }
            for (index, job) in rows.enumerated() {
                guard let record = base[job.candidateID] else { continue }
                if let detail = Self.nonFiniteLosses(base: record, val: val[index], modelVersion: version.modelVersion) {
                    outcome.unscorable.append(.init(candidateID: job.candidateID, modelVersion: version.modelVersion, detail: detail))
                    continue
                }
                outcome.scores.append(.init(candidateID: job.candidateID, modelVersion: version.modelVersion,
                                            base: record, valLosses: val[index], importance: version.importance(texts[index])))
            }
        }
        // The score_fn each version's target had when the settings were read: used only where the
        // database's (read under lock at commit) is one the settings parser would refuse.
        var cachedFunctions: [Int: String] = [:]
        for version in live.loaded {
            let target = live.targets[version.modelVersion].flatMap { id in settings.targets.first { $0.id == id } }
            cachedFunctions[version.modelVersion] = (target?.settings ?? settings).selection.scoreFunction.rawValue
        }
        try await lease.paused {
            try await complete(outcome, cachedFunctions: cachedFunctions, fallback: settings.selection.scoreFunction.rawValue, on: connection)
        }
    }

    /// Why a row's losses cannot be a score (NaN or ±inf anywhere: NaN sorts above every number in
    /// Postgres and would top the selection), or nil when they can.
    static func nonFiniteLosses(base: BaseLossRecord, val: [Float], modelVersion: Int) -> String? {
        if (base.losses + val).allSatisfy(\.isFinite) && !base.uncertainty.isNaN { return nil }
        return "losses under model version \(modelVersion) are not finite (θ_bas \(base.losses), θ_val \(val)): the surrogate diverged; "
            + "lower the lr setting (or val_lr_ratio) so that a new model is trained"
    }

    /// Awaits `work` unless a graceful stop is requested first, in which case it throws
    /// ``WorkerStopping`` at once and `work` finishes unobserved (scoring cannot be interrupted, but
    /// its result is no longer wanted: the batch's claims are released).
    private func untilStopped<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let once = ResumeOnce<T>()
        return try await withCheckedThrowingContinuation { continuation in
            once.install(continuation)
            let token = stopFlag.onSet { once.resume(with: .failure(WorkerStopping())) }
            Task {
                let result: Result<T, Error>
                do { result = .success(try await work()) } catch { result = .failure(error) }
                if let token { self.stopFlag.remove(token) }
                once.resume(with: result)
            }
        }
    }

    /// ℓ(θ_bas^l, x) for every row: from `tov.base_losses` when cached, computed otherwise. Computed
    /// once per row and base version in a batch: a new row scored under K targets' versions on one
    /// base model takes the losses the first version computed (`outcome.baseLosses`) for the others.
    private func baseLosses(for rows: [ClaimedJob], version: LoadedVersion, outcome: inout BatchOutcome,
                            on connection: Connection) async throws -> [Int64: BaseLossRecord] {
        var result: [Int64: BaseLossRecord] = [:]
        for known in outcome.baseLosses where known.baseVersion == version.baseVersion {
            result[known.candidateID] = known.record
        }
        let unknown = rows.map(\.candidateID).filter { result[$0] == nil }
        if !unknown.isEmpty {
            for row in try await connection.query(Queries.baseLossesGetMany, [version.baseVersion, unknown]) {
                result[try row.get(Int64.self, "candidate_id")] = BaseLossRecord(
                    losses: try row.get([Float].self, "losses"), uncertainty: try row.get(Float.self, "uncertainty"), tokens: Int(try row.get(Int32.self, "tokens")))
            }
        }
        let missing = rows.filter { result[$0.candidateID] == nil }
        if !missing.isEmpty {
            let texts = missing.map(\.text)
            let scoring = Model.ScoringOptions(precision: configuration.scoringPrecision)
            let computed = try await untilStopped { try await runOffPool(name: "tovd-score") { try version.baseLosses(texts, options: scoring) } }
            forwardRows.withLock { $0.base += missing.count }
            for (job, record) in zip(missing, computed) {
                result[job.candidateID] = record
                // Non-finite base losses are never cached: the row is recorded as unscorable instead.
                guard record.losses.allSatisfy(\.isFinite) && !record.uncertainty.isNaN else { continue }
                outcome.baseLosses.append(.init(candidateID: job.candidateID, baseVersion: version.baseVersion, record: record))
            }
        }
        return result
    }

    private func baseSubsetMembers(_ baseVersion: Int, _ ids: [Int64], on connection: Connection) async throws -> Set<Int64> {
        var members = Set<Int64>()
        for row in try await connection.query(Queries.baseSubsetContainsMany, [baseVersion, ids]) {
            members.insert(try row.get(Int64.self, "candidate_id"))
        }
        return members
    }

    /// Writes the batch's results and ends its claims in one transaction; rows whose lease was lost
    /// are dropped from the results, and so are results for a version whose target was dropped
    /// meanwhile (its versions went with it). φ of each version uses its target's `score_fn`, read
    /// under lock in this transaction; `cachedFunctions` (per version) and then `fallback` apply
    /// only where the stored value is one the settings parser refuses.
    private func complete(_ outcome: BatchOutcome, cachedFunctions: [Int: String], fallback: String,
                          on connection: Connection) async throws {
        let jobs = outcome.jobs
        let written = try await connection.transaction { tx -> (owned: Int, rejected: Int, ready: Int, scored: Int, unscorable: Int) in
            // Never with empty arrays (all jobs released): PQ would send them as bytea.
            let owned = jobs.isEmpty ? Set<JobKey>() : Set(try await tx.query(Queries.jobCompleteMany, [
                jobs.map(\.candidateID), jobs.map { Int32($0.modelVersion) }, jobs.map { Int32($0.attempts) },
            ]).map { JobKey(candidateID: try $0.get(Int64.self, "candidate_id"), modelVersion: Int(try $0.get(Int32.self, "model_version"))) })
            if !outcome.released.isEmpty {
                let released = outcome.released
                try await tx.execute(Queries.jobReleaseMany, [
                    released.map(\.candidateID), released.map { Int32($0.modelVersion) }, released.map { Int32($0.attempts) },
                    released.map { Int32($0.triedAlone) },
                ])
            }
            var rejected = 0
            let rejects = outcome.rejects.filter { owned.contains($0.key) }
            for reject in rejects {
                rejected += try await tx.execute(Queries.rejectInsert, [reject.candidateID, reject.reason.rawValue, reject.detail, reject.attempts])
            }
            let ready = outcome.ready.filter { owned.contains(JobKey(candidateID: $0.0, modelVersion: 0)) }
            if !ready.isEmpty {
                try await tx.execute(Queries.readyInsertMany, [ready.map(\.0), ready.map { Int32($0.1) }, ready.map { Int32($0.2) }])
                if !outcome.waitFor.isEmpty {
                    // Versions whose checkpoints do not load yet: the new rows wait in the queue for them.
                    try await tx.execute(Queries.jobEnqueueForVersionsMany, [ready.map(\.0), outcome.waitFor.sorted().map(Int32.init)])
                }
            }
            let ownedIDs = Set(owned.map(\.candidateID))
            // One statement per base version and L for the base losses, one per L and score_fn for the scores:
            // a 64-row batch costs a handful of round trips, not two per row.
            let baseLosses = outcome.baseLosses.filter { ownedIDs.contains($0.candidateID) }
            for (key, group) in Dictionary(grouping: baseLosses, by: { [$0.baseVersion, $0.record.losses.count] }) {
                try await tx.execute(Queries.baseLossesInsertMany, [
                    group.map(\.candidateID), key[0], group.flatMap(\.record.losses),
                    group.map(\.record.uncertainty), group.map { Int32($0.record.tokens) }, key[1],
                ])
            }
            let isOwned = { (candidateID: Int64, modelVersion: Int) in
                owned.contains(JobKey(candidateID: candidateID, modelVersion: modelVersion))
                    || owned.contains(JobKey(candidateID: candidateID, modelVersion: 0))
            }
            var scores = outcome.scores.filter { isOwned($0.candidateID, $0.modelVersion) }
            var unscorable = outcome.unscorable.filter { isOwned($0.candidateID, $0.modelVersion) }
            // Each version's score_fn: its target's own, else the global one, read with share locks
            // on both (the global row first) so that a change of either waits for this commit, and
            // the leader's recompute after it sees every row written before it.
            var functions: [Int: String?] = [:]
            if !scores.isEmpty || !unscorable.isEmpty {
                try await tx.query(Queries.scoreFunctionLock)
                let versions = Set(scores.map(\.modelVersion) + unscorable.map(\.modelVersion)).sorted().map(Int32.init)
                for row in try await tx.query(Queries.targetScoreFunctionLockMany, [versions]) {
                    functions[Int(try row.get(Int32.self, "model_version"))] = try row.getOptional(String.self, "score_fn")
                }
                // A version not found was deleted with its target: nothing of it is written.
                scores.removeAll { functions[$0.modelVersion] == nil }
                unscorable.removeAll { functions[$0.modelVersion] == nil }
            }
            // A value the settings parser would refuse cannot be in force; keep the cached one then.
            let function = { (version: Int) -> String in
                functions[version].flatMap { $0 }.flatMap(ScoreFunction.init(rawValue:))?.rawValue ?? cachedFunctions[version] ?? fallback
            }
            var scored = 0
            // One statement per (L, score_fn): K targets with different functions cost K statements, not K per row.
            for (key, group) in Dictionary(grouping: scores, by: { ScoreGroup(epochs: $0.base.losses.count, function: function($0.modelVersion)) }) {
                scored += try await tx.execute(Queries.scoreInsertMany, [
                    group.map(\.candidateID), group.map { Int32($0.modelVersion) },
                    group.flatMap(\.base.losses), group.flatMap(\.valLosses), key.function,
                    group.map { $0.base.losses.reduce(0, +) / Float($0.base.losses.count) },
                    group.map { $0.valLosses.reduce(0, +) / Float($0.valLosses.count) },
                    group.map(\.base.uncertainty), key.epochs, group.map { Int32($0.base.tokens) }, group.map(\.importance),
                ])
            }
            var unscorableRows = 0
            if !unscorable.isEmpty {
                unscorableRows = Int(try await tx.query(Queries.unscorableInsertMany, [
                    unscorable.map(\.candidateID), unscorable.map { Int32($0.modelVersion) }, unscorable.map(\.detail),
                ]).first!.get(Int64.self, "rows"))
            }
            // Last, so a rejection wins over anything this batch wrote for the same row.
            var removedScores = 0
            if !rejects.isEmpty {
                let removed = try await tx.query(Queries.rejectedRowRemoveMany, [rejects.map(\.candidateID)]).first!
                removedScores = Int(try removed.get(Int64.self, "scores"))
            }
            if scored > 0 || removedScores > 0 { try await tx.query(Queries.scoresNotify) }
            return (owned.count, rejected, ready.count, scored, unscorableRows)
        }
        metrics.rowsRejected.increment(by: Int64(written.rejected))
        metrics.rowsReady.increment(by: Int64(written.ready))
        metrics.rowsScored.increment(by: Int64(written.scored))
        if written.unscorable > 0 {
            logger.warning("rows with non-finite losses were not scored (tov.unscorable); the model version diverged", metadata: [
                "rows": "\(written.unscorable)", "model_versions": "\(Set(outcome.unscorable.map(\.modelVersion)).sorted())",
                "detail": "\(outcome.unscorable.first!.detail)",
            ])
        }
        if written.owned < jobs.count {
            metrics.leaseLost.increment(by: Int64(jobs.count - written.owned))
            logger.warning("lease lost before completion; results of those rows were discarded",
                           metadata: ["lost": "\(jobs.count - written.owned)", "worker": "\(configuration.name)"])
        }
        logger.debug("batch committed", metadata: [
            "rows": "\(jobs.count)", "ready": "\(written.ready)", "rejected": "\(written.rejected)", "scored": "\(written.scored)",
        ])
    }
}

/// Thrown from an await the worker abandons because a graceful stop was requested.
struct WorkerStopping: Error {}

/// Score rows written by one statement: same number of epochs L, same score_fn.
private struct ScoreGroup: Hashable {
    var epochs: Int
    var function: String
}

/// Rows a worker ran through the model since it started: through θ_bas^1..L (base losses it had to
/// compute, not read from tov.base_losses) and through one version's θ_val^1..L (counted per
/// version). Each row is L forward passes; a new row under K targets' versions on one base model
/// costs 1 + K of them (Method A's (1 + K)·L).
public struct ForwardRows: Sendable, Equatable {
    public var base = 0
    public var val = 0
}
