import PQ
import Selection

/// `tov.selected` against the Swift reference `select()` (Sources/Selection) on the same stored
/// scores: the one check that the fault suite (TovTesting's ``PipelineFigures``) and `tovd bench
/// selection` / `tovd bench switch` run. It lives here because both the tovd CLI and TovTesting
/// depend on Daemon, and reading the scores is SQL, which Selection (pure, no database) must not hold.
public enum SelectionReference {
    public struct Comparison: Sendable {
        /// Scored rows the reference selected from.
        public var scoredRows: Int
        /// Time of the reference `select()` alone (the benches print it next to the SQL update).
        public var referenceTime: Duration
        /// The target's selection holds exactly the reference's rows, each with the reference's reason and length bin.
        public var matches: Bool
    }

    /// Compares the selection of `target` (by name; tov.selected is the target `default`'s) with
    /// `select(_:settings:)` over the scores of model version `version`, or of the target's complete
    /// version when nil. `settings` are the target's own selection settings.
    public static func compare(version: Int?, settings: SelectionSettings, target: String = Settings.defaultTarget,
                               on connection: Connection) async throws -> Comparison {
        let scored = try await scoreMany(version: version, target: target, on: connection)
        let clock = ContinuousClock()
        let started = clock.now
        let reference = select(scored, settings: settings)
        let referenceTime = clock.now - started
        let expected = reference.items.map { SelectedRow(id: $0.id, reason: $0.reason.rawValue, lengthBin: $0.lengthBin) }.sorted { $0.id < $1.id }
        let actual = try await selectedMany(target: target, on: connection)
        return Comparison(scoredRows: scored.count, referenceTime: referenceTime, matches: expected == actual)
    }

    struct SelectedRow: Equatable {
        var id: Int64
        var reason: String
        var lengthBin: Int
    }

    /// The scores of `version` (nil: the complete version of `target`) as the reference reads them.
    static func scoreMany(version: Int?, target: String, on connection: Connection) async throws -> [ScoredRow] {
        try await connection.query("""
            SELECT candidate_id, score, uncertainty, tokens, importance FROM tov.scores
            WHERE model_version = coalesce($1::int, (
                SELECT m.model_version FROM tov.model_versions m JOIN tov.targets t USING (target_id)
                WHERE m.status = 'complete' AND t.name = $2))
            """, [version, target]).map {
            ScoredRow(id: try $0.get(Int64.self, "candidate_id"), score: try $0.get(Double.self, "score"),
                      uncertainty: Double(try $0.get(Float.self, "uncertainty")), length: Int(try $0.get(Int32.self, "tokens")),
                      importance: try $0.get(Double.self, "importance"))
        }
    }

    static func selectedMany(target: String, on connection: Connection) async throws -> [SelectedRow] {
        try await connection.query("SELECT id, reason, length_bin FROM tov.selections WHERE target = $1 ORDER BY id", [target]).map {
            SelectedRow(id: try $0.get(Int64.self, "id"), reason: try $0.get(String.self, "reason"),
                        lengthBin: Int(try $0.get(Int32.self, "length_bin")))
        }
    }
}
