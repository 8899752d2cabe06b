import Foundation
import Logging
import PQ

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
    /// rescoring after a refresh, when the base losses are cached).
    public static func run(on connection: Connection, rows: Int, batchSize: Int, includeBase: Bool, logger: Logger) async throws -> Result {
        guard let live = try await ModelCache(logger: logger).live(on: connection).last else {
            throw DaemonError(.checkpoint, "no live model version to benchmark: wait until `tovd status` shows one")
        }
        var texts: [RowText] = []
        var tokens = 0
        for row in try await connection.query("""
            SELECT c.id, convert_to(c.prompt, getdatabaseencoding()), convert_to(c.response, getdatabaseencoding()), s.tokens
            FROM tov.scores s JOIN tov.candidates c ON c.id = s.candidate_id
            WHERE s.model_version = $1 ORDER BY c.id LIMIT $2
            """, [live.modelVersion, rows]) {
            texts.append(RowText(id: try row.get(Int64.self, 0), prompt: try row.get([UInt8].self, 1), response: try row.get([UInt8].self, 2)))
            tokens += Int(try row.get(Int32.self, 3))
        }
        let started = ContinuousClock.now
        for start in stride(from: 0, to: texts.count, by: batchSize) {
            let batch = Array(texts[start..<min(start + batchSize, texts.count)])
            if includeBase { _ = try live.baseLosses(batch) }
            _ = try live.valLosses(batch)
        }
        return Result(rows: texts.count, tokens: tokens, seconds: (ContinuousClock.now - started).seconds)
    }
}
