import Foundation
import Logging
import PQ
import Selection
import ServiceLifecycle

/// One claim → validate → score → commit loop on its own database connection.
///
/// A batch is claimed with `FOR UPDATE SKIP LOCKED` and a lease, processed outside any transaction,
/// and completed in one transaction that first deletes the jobs *whose attempt number still matches*:
/// a worker whose lease expired (and whose rows another worker re-claimed) gets nothing back and so
/// writes nothing. A claim holds at most one row on a retry, processed alone before the fresh rows,
/// so a row that crashed the process cannot take a batch down with it again, and rows that merely
/// shared a batch with it are not charged for its crashes.
public final class ScoringWorker: Service, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var conninfo: String
        public var name: String
        public var batchSize = 64
        public var leaseSeconds = 120.0
        public var pollInterval: Duration = .seconds(2)

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
    private let stopFlag = StopFlag()

    public init(configuration: Configuration, wakeup: WakeupSignal, models: ModelCache, settings: SettingsCache,
                metrics: DaemonMetrics, health: HealthState, logger: Logger) {
        self.configuration = configuration
        self.wakeup = wakeup
        self.models = models
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.logger = logger
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            var connection: Connection?
            while !stopFlag.isSet && !Task.isCancelled {
                do {
                    if connection == nil || !(connection!.isConnected) {
                        connection = try await connectWithBackoff()
                    }
                    let claimed = try await runOneBatch(on: connection!)
                    if claimed == 0 { await wakeup.wait(timeout: configuration.pollInterval) }
                } catch let error as PQError where error.isConnectionProblem {
                    logger.warning("worker lost its database connection; reconnecting", metadata: ["error": "\(error)"])
                    health.setDatabase(up: false, worker: configuration.name)
                    connection?.close()
                    connection = nil
                } catch is CancellationError {
                    break
                } catch {
                    // Anything else (a bad checkpoint, a query error) must not kill the daemon: log it,
                    // back off, try again. The claimed rows' leases expire and they are retried.
                    logger.error("batch failed", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            connection?.close()
        } onGracefulShutdown: {
            self.stopFlag.set()
            self.wakeup.signal()
        }
    }

    private func connectWithBackoff() async throws -> Connection {
        let connection = try await Connection.connectRetrying(configuration.conninfo, as: "worker", logger: logger)
        health.setDatabase(up: true, worker: configuration.name)
        return connection
    }

    /// Claims and completes one batch. Returns the number of jobs claimed (0: nothing to do).
    func runOneBatch(on connection: Connection) async throws -> Int {
        let started = ContinuousClock.now
        let current = try await settings.current(on: connection)
        // Models first: a checkpoint that cannot be loaded (missing, corrupt) must fail before any
        // row is claimed, or every retry would charge an attempt to rows that did nothing wrong.
        var live = try await models.live(on: connection)
        let jobs = try await claim(on: connection)
        guard !jobs.isEmpty else { return 0 }
        metrics.rowsClaimed.increment(by: Int64(jobs.count))
        metrics.lagSeconds.set(to: jobs.map(\.ageSeconds).max() ?? 0)
        // A version that went live between the two queries: load it too.
        if jobs.contains(where: { job in job.modelVersion > 0 && !live.contains { $0.modelVersion == job.modelVersion } }) {
            live = try await models.live(on: connection)
        }
        let fresh = jobs.filter { $0.attempts <= 1 }
        let retries = jobs.filter { $0.attempts > 1 }
        // The retry first, alone and committed before the fresh rows are touched: if the fresh
        // batch crashes us, the retried row is not charged for it.
        for job in retries {
            try await process([job], live: live, settings: current, on: connection)
        }
        if !fresh.isEmpty {
            try await process(fresh, live: live, settings: current, on: connection)
        }
        let elapsed = ContinuousClock.now - started
        metrics.batchSeconds.record(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        return jobs.count
    }

    func claim(on connection: Connection) async throws -> [ClaimedJob] {
        let rows = try await connection.query(Queries.jobClaimMany, [
            configuration.batchSize, configuration.leaseSeconds, configuration.name,
        ])
        return try rows.map { row in
            ClaimedJob(
                candidateID: try row.get(Int64.self, 0),
                modelVersion: Int(try row.get(Int32.self, 1)),
                attempts: Int(try row.get(Int32.self, 2)),
                prompt: try row.get([UInt8].self, 3),
                response: try row.get([UInt8].self, 4),
                ageSeconds: try row.get(Double.self, 5))
        }
    }

    /// Validates and scores `jobs`, then completes them in one fenced transaction.
    func process(_ jobs: [ClaimedJob], live: [LoadedVersion], settings: Settings, on connection: Connection) async throws {
        var outcome = BatchOutcome(jobs: jobs)
        let validator = RowValidator(maxTextBytes: settings.maxTextBytes)

        // Which rows go to which model version.
        var rowsByVersion: [Int: [ClaimedJob]] = [:]
        for job in jobs {
            if job.attempts > settings.maxAttempts {
                outcome.rejects.append(.init(job: job, reason: .repeatedFailure,
                    detail: "scoring did not finish after \(job.attempts - 1) attempts (crash or lease timeout); see the daemon's log for batch errors"))
                continue
            }
            if job.modelVersion == 0 {
                switch validator.check(prompt: job.prompt, response: job.response) {
                case .reject(let reason, let detail):
                    outcome.rejects.append(.init(job: job, reason: reason, detail: detail))
                    continue
                case .ready(let promptBytes, let responseBytes):
                    outcome.ready.append((job.candidateID, promptBytes, responseBytes))
                }
                for version in live { rowsByVersion[version.modelVersion, default: []].append(job) }
            } else if live.contains(where: { $0.modelVersion == job.modelVersion }) {
                rowsByVersion[job.modelVersion, default: []].append(job)
            }
            // A rescore job for a version that is no longer live is simply completed.
        }

        for version in live {
            guard var rows = rowsByVersion[version.modelVersion], !rows.isEmpty else { continue }
            // U rows are never scored: their loss under θ_bas is biased by having trained on them.
            let inU = try await baseSubsetMembers(version.baseVersion, rows.map(\.candidateID), on: connection)
            rows.removeAll { inU.contains($0.candidateID) }
            guard !rows.isEmpty else { continue }
            let base = try await baseLosses(for: rows, version: version, outcome: &outcome, on: connection)
            let texts = rows.map { RowText(id: $0.candidateID, prompt: $0.prompt, response: $0.response) }
            let val = try await runOffPool(name: "tovd-score") { try version.valLosses(texts) }
            for (index, job) in rows.enumerated() {
                guard let record = base[job.candidateID] else { continue }
                outcome.scores.append(.init(candidateID: job.candidateID, modelVersion: version.modelVersion,
                                            base: record, valLosses: val[index]))
            }
        }
        try await complete(outcome, scoreFunction: settings.selection.scoreFunction.rawValue, on: connection)
    }

    /// ℓ(θ_bas^l, x) for every row: from `tov.base_losses` when cached, computed otherwise.
    private func baseLosses(for rows: [ClaimedJob], version: LoadedVersion, outcome: inout BatchOutcome,
                            on connection: Connection) async throws -> [Int64: BaseLossRecord] {
        var result: [Int64: BaseLossRecord] = [:]
        for known in outcome.baseLosses where known.baseVersion == version.baseVersion {
            result[known.candidateID] = known.record
        }
        let unknown = rows.map(\.candidateID).filter { result[$0] == nil }
        if !unknown.isEmpty {
            for row in try await connection.query(Queries.baseLossesGetMany, [version.baseVersion, unknown]) {
                result[try row.get(Int64.self, 0)] = BaseLossRecord(
                    losses: try row.get([Float].self, 1), uncertainty: try row.get(Float.self, 2), tokens: Int(try row.get(Int32.self, 3)))
            }
        }
        let missing = rows.filter { result[$0.candidateID] == nil }
        if !missing.isEmpty {
            let texts = missing.map { RowText(id: $0.candidateID, prompt: $0.prompt, response: $0.response) }
            let computed = try await runOffPool(name: "tovd-score") { try version.baseLosses(texts) }
            for (job, record) in zip(missing, computed) {
                result[job.candidateID] = record
                outcome.baseLosses.append(.init(candidateID: job.candidateID, baseVersion: version.baseVersion, record: record))
            }
        }
        return result
    }

    private func baseSubsetMembers(_ baseVersion: Int, _ ids: [Int64], on connection: Connection) async throws -> Set<Int64> {
        var members = Set<Int64>()
        for row in try await connection.query(Queries.baseSubsetContainsMany, [baseVersion, ids]) {
            members.insert(try row.get(Int64.self, 0))
        }
        return members
    }

    /// Writes the batch's results and ends its claims in one transaction; rows whose lease was lost
    /// are dropped from the results.
    private func complete(_ outcome: BatchOutcome, scoreFunction: String, on connection: Connection) async throws {
        let jobs = outcome.jobs
        let written = try await connection.transaction { tx -> (owned: Int, rejected: Int, ready: Int, scored: Int) in
            var owned = Set<JobKey>()
            for row in try await tx.query(Queries.jobCompleteMany, [
                jobs.map(\.candidateID), jobs.map { Int32($0.modelVersion) }, jobs.map { Int32($0.attempts) },
            ]) {
                owned.insert(JobKey(candidateID: try row.get(Int64.self, 0), modelVersion: Int(try row.get(Int32.self, 1))))
            }
            var rejected = 0
            for reject in outcome.rejects where owned.contains(reject.key) {
                rejected += try await tx.execute(Queries.rejectInsert, [reject.candidateID, reject.reason.rawValue, reject.detail, reject.attempts])
            }
            let ready = outcome.ready.filter { owned.contains(JobKey(candidateID: $0.0, modelVersion: 0)) }
            if !ready.isEmpty {
                try await tx.execute(Queries.readyInsertMany, [ready.map(\.0), ready.map { Int32($0.1) }, ready.map { Int32($0.2) }])
            }
            let ownedIDs = Set(owned.map(\.candidateID))
            // One statement per base version and L for the base losses, one per L for the scores:
            // a 64-row batch costs a handful of round trips, not two per row.
            let baseLosses = outcome.baseLosses.filter { ownedIDs.contains($0.candidateID) }
            for (key, group) in Dictionary(grouping: baseLosses, by: { [$0.baseVersion, $0.record.losses.count] }) {
                try await tx.execute(Queries.baseLossesInsertMany, [
                    group.map(\.candidateID), key[0], group.flatMap(\.record.losses),
                    group.map(\.record.uncertainty), group.map { Int32($0.record.tokens) }, key[1],
                ])
            }
            let scores = outcome.scores.filter {
                owned.contains(JobKey(candidateID: $0.candidateID, modelVersion: $0.modelVersion))
                    || owned.contains(JobKey(candidateID: $0.candidateID, modelVersion: 0))
            }
            var scored = 0
            let locked = scores.isEmpty ? nil : try await tx.query(Queries.scoreFunctionLock).first.map { try $0.get(String.self, 0) }
            // A value the settings parser would refuse cannot be in force; keep the cached one then.
            let function = locked.flatMap(ScoreFunction.init(rawValue:))?.rawValue ?? scoreFunction
            for (epochs, group) in Dictionary(grouping: scores, by: { $0.base.losses.count }) {
                scored += try await tx.execute(Queries.scoreInsertMany, [
                    group.map(\.candidateID), group.map { Int32($0.modelVersion) },
                    group.flatMap(\.base.losses), group.flatMap(\.valLosses), function,
                    group.map { $0.base.losses.reduce(0, +) / Float($0.base.losses.count) },
                    group.map { $0.valLosses.reduce(0, +) / Float($0.valLosses.count) },
                    group.map(\.base.uncertainty), epochs, group.map { Int32($0.base.tokens) },
                ])
            }
            if scored > 0 { try await tx.query(Queries.scoresNotify) }
            return (owned.count, rejected, ready.count, scored)
        }
        metrics.rowsRejected.increment(by: Int64(written.rejected))
        metrics.rowsReady.increment(by: Int64(written.ready))
        metrics.rowsScored.increment(by: Int64(written.scored))
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

/// A claimed job with the raw bytes of its row.
struct ClaimedJob: Sendable {
    var candidateID: Int64
    var modelVersion: Int
    var attempts: Int
    var prompt: [UInt8]
    var response: [UInt8]
    var ageSeconds: Double
}

struct JobKey: Hashable {
    var candidateID: Int64
    var modelVersion: Int
}

/// Everything one batch will write, gathered before the completing transaction.
struct BatchOutcome {
    struct Reject {
        var candidateID: Int64, modelVersion: Int, attempts: Int
        var reason: RejectReason, detail: String
        init(job: ClaimedJob, reason: RejectReason, detail: String) {
            candidateID = job.candidateID
            modelVersion = job.modelVersion
            attempts = job.attempts
            self.reason = reason
            self.detail = detail
        }
        var key: JobKey { JobKey(candidateID: candidateID, modelVersion: modelVersion) }
    }
    struct BaseLoss { var candidateID: Int64, baseVersion: Int, record: BaseLossRecord }
    struct Score { var candidateID: Int64, modelVersion: Int, base: BaseLossRecord, valLosses: [Float] }

    var jobs: [ClaimedJob]
    var rejects: [Reject] = []
    var ready: [(Int64, Int, Int)] = []
    var baseLosses: [BaseLoss] = []
    var scores: [Score] = []
}

/// A flag set once from the graceful-shutdown handler and read by the loop.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
