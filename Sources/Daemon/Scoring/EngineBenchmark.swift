import Foundation
import Logging
import PQ
import Selection
import Surrogate

/// The pure engine's scoring rate on rows already in the database, for `tovd bench daemon`: the
/// same live checkpoints a worker loads and the same batch size, with no claims, transactions or
/// writes. The daemon's end-to-end rate divided by this is what the database path costs.
public enum EngineBenchmark {
    public struct Result: Sendable {
        public var rows: Int
        /// Response tokens averaged over (the unit of `tov.scores.tokens`).
        public var tokens: Int
        public var seconds: Double
        public var rowsPerSecond: Double { Double(rows) / seconds }
        public var tokensPerSecond: Double { Double(tokens) / seconds }
    }

    /// Scores up to `rows` candidates that have a score under the complete version, in batches of
    /// `batchSize`: θ_bas^1..L and θ_val^1..L (`includeBase`, as for a new row) or θ_val only (as for
    /// rescoring after a refresh, when the base losses are cached), in the daemon's `precision`.
    public static func run(on connection: Connection, rows: Int, batchSize: Int, includeBase: Bool, precision: ScoringPrecision,
                           logger: Logger) async throws -> Result {
        guard let live = try await ModelCache(logger: logger).live(on: connection).last else {
            throw DaemonError(.checkpoint, "no live model version to benchmark: wait until `tovd status` shows one")
        }
        var texts: [RowText] = []
        var tokens = 0
        for row in try await connection.query(Queries.scoredRowTextMany, [live.modelVersion, rows]) {
            texts.append(RowText(id: try row.get(Int64.self, "id"), prompt: try row.get([UInt8].self, "prompt"),
                                 response: try row.get([UInt8].self, "response")))
            tokens += Int(try row.get(Int32.self, "tokens"))
        }
        let options = Model.ScoringOptions(precision: precision)
        let started = ContinuousClock.now
        for start in stride(from: 0, to: texts.count, by: batchSize) {
            let batch = Array(texts[start..<min(start + batchSize, texts.count)])
            if includeBase { _ = try live.baseLosses(batch, options: options) }
            _ = try live.valLosses(batch, options: options)
        }
        return Result(rows: texts.count, tokens: tokens, seconds: (ContinuousClock.now - started).seconds)
    }
}

/// What one PostgreSQL sustains for `tovd bench capacity`: K simulated scorers doing exactly the
/// worker's statements per batch (claim, U check, cached base losses, then one transaction that
/// completes the jobs and writes ready rows, base losses and scores) with made-up losses instead of
/// a model, and the leader's selection update at most every 200 ms, as the daemon runs it.
public enum CapacityBenchmark {
    public struct Result: Sendable {
        public var rows: Int
        public var seconds: Double
        public var selectionUpdates: Int
        public var rowsPerSecond: Double { Double(rows) / seconds }
    }

    /// Scores every pending new row under model version `modelVersion` (which must exist, with its
    /// base model, and need no checkpoints) with `scorers` concurrent connections, while a leader
    /// connection keeps the selection current. Returns when no job is left.
    public static func run(conninfo: String, scorers: Int, batchSize: Int, modelVersion: Int, baseVersion: Int, epochs: Int,
                           selection: SelectionSettings) async throws -> Result {
        let started = ContinuousClock.now
        let done = StopFlag()
        let leader = Task {
            let c = try await Connection.connect(conninfo, applicationName: "tovd bench capacity leader")
            defer { c.close() }
            var updates = 0
            repeat {
                let tick = ContinuousClock.now
                _ = try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: modelVersion, settings: selection) }
                updates += 1
                let rest = Duration.milliseconds(200) - (ContinuousClock.now - tick)
                if rest > .zero { try await Task.sleep(for: rest) }
            } while !done.isSet
            return updates
        }
        let rows = try await withThrowingTaskGroup(of: Int.self) { group in
            for k in 0..<scorers {
                group.addTask {
                    let c = try await Connection.connect(conninfo, applicationName: "tovd bench capacity scorer")
                    defer { c.close() }
                    var scored = 0
                    while true {
                        let n = try await simulateBatch(on: c, worker: "bench-\(k)", batchSize: batchSize, modelVersion: modelVersion,
                                                        baseVersion: baseVersion, epochs: epochs)
                        if n == 0 { return scored }
                        scored += n
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        let seconds = (ContinuousClock.now - started).seconds
        done.set()
        let updates = try await leader.value
        return Result(rows: rows, seconds: seconds, selectionUpdates: updates)
    }

    /// One worker batch without the model: the statements of ScoringWorker.runOneBatch for new rows.
    static func simulateBatch(on c: Connection, worker: String, batchSize: Int, modelVersion: Int, baseVersion: Int, epochs: Int) async throws -> Int {
        let jobs = try await ScoringWorker.claim(on: c, batchSize: batchSize, leaseSeconds: 120, worker: worker,
                                                 skipping: [], maxTextBytes: Settings().maxTextBytes)
        guard !jobs.isEmpty else { return 0 }
        let ids = jobs.map(\.candidateID)
        _ = try await c.query(Queries.baseSubsetContainsMany, [baseVersion, ids])
        _ = try await c.query(Queries.baseLossesGetMany, [baseVersion, ids])
        // Deterministic stand-ins for the losses: φ spread over rows so the selection has work to do.
        let base = ids.flatMap { id in (0..<epochs).map { l in Float(3 + Double((id &* 2_654_435_761 &+ Int64(l)) % 1000) / 1000) } }
        let val = ids.flatMap { id in (0..<epochs).map { l in Float(3 + Double((id &* 40_503 &+ Int64(l)) % 1000) / 1000) } }
        let means = { (flat: [Float]) in stride(from: 0, to: flat.count, by: epochs).map { flat[$0..<($0 + epochs)].reduce(0, +) / Float(epochs) } }
        let tokens = jobs.map { Int32(min(16 + $0.responseBytes / 4, 255)) }
        try await c.transaction { tx in
            let owned = try await tx.query(Queries.jobCompleteMany, [ids, jobs.map { Int32($0.modelVersion) }, jobs.map { Int32($0.attempts) }]).count
            guard owned > 0 else { return }
            try await tx.execute(Queries.readyInsertMany, [ids, jobs.map { Int32($0.promptBytes) }, jobs.map { Int32($0.responseBytes) }])
            try await tx.execute(Queries.baseLossesInsertMany, [ids, baseVersion, base, ids.map { _ in Float(-2) }, tokens, epochs])
            let function = try await tx.query(Queries.scoreFunctionLock).first.map { try $0.get(String.self, "score_fn") } ?? "improvement"
            try await tx.execute(Queries.scoreInsertMany, [
                ids, ids.map { _ in Int32(modelVersion) }, base, val, function, means(base), means(val),
                ids.map { _ in Float(-2) }, epochs, tokens, ids.map { _ in 0.0 },
            ])
            try await tx.query(Queries.scoresNotify)
        }
        return jobs.count
    }
}
