@testable import Daemon
import Foundation
import PQ
import Selection
import Testing
import TovTesting

/// The statements that bin a model version's scores must not join the pool to itself, whatever the
/// planner's statistics say (issue 24, defect 15). With statistics taken before a new version's
/// scores arrived (autovacuum's VACUUM ANALYZE after the previous switch deleted the old scores),
/// the planner expects one row of the new version, and the old re-binning statement joined its
/// ntile ranking back to tov.scores through a nested loop that rescanned the ranking per row: n²,
/// 134 s at 20,000 rows. The test puts the statistics in exactly that state, checks that they are
/// (so it cannot pass because the planner happened to know better), and inspects the plans.
@Suite("Selection statements keep plans without self-joins of the pool")
struct SelectionPlanTests {
    static let rows = 6000
    static let settings = SelectionSettings()

    @Test func switchAndUpdatesAfterStaleStatistics() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery("""
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (16, 1, '{}', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 1, 'A', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 2, 'A', 'scoring');
                """)
            let ids = try await TovTestDatabase.insertCandidates(Self.rows, on: c)
            try await Self.addScores(ids, version: 1, on: c)
            _ = try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: 1, settings: Self.settings) }
            // What autovacuum does after a switch deletes the old scores: statistics without version 2.
            try await c.simpleQuery("VACUUM ANALYZE tov.scores")
            try await Self.addScores(ids, version: 2, on: c)

            // The switch: every row of version 2 binned from scratch.
            let rebin = try await Self.plan(LengthBins.rebinAll, [2, Self.settings.bins, "0"], on: c)
            let estimate = Self.scans(of: "scores", in: rebin).map { $0["Plan Rows"] as? Double ?? .infinity }.min() ?? .infinity
            #expect(estimate <= 10, "the statistics should expect almost no row of version 2 (they are stale), yet a scan expects \(estimate)")
            #expect(Self.joinsReadingScores(in: rebin).isEmpty, "rebinAll joins tov.scores: \(Self.joinsReadingScores(in: rebin))")
            _ = try await c.transaction { tx in
                try await tx.execute("UPDATE tov.model_versions SET status = 'superseded' WHERE status = 'complete'")
                try await tx.execute("UPDATE tov.model_versions SET status = 'complete' WHERE model_version = 2")
                return try await SelectionWriter.update(in: tx, modelVersion: 2, settings: Self.settings)
            }
            try await Self.expectReferenceSelection(version: 2, on: c)

            // Incremental updates under the same statistics: new rows are binned by key and the
            // boundaries move, each without joining the pool.
            let new = try await TovTestDatabase.insertCandidates(300, on: c, prefix: "new")
            try await Self.addScores(new, version: 2, on: c)
            try await c.execute("DELETE FROM tov.candidates WHERE id = ANY($1::bigint[])", [Array(ids.prefix(40))])
            var firsts: ([Int32], [Int64], [Int32]) = ([], [], [])
            for row in try await c.query(LengthBins.firstKeyOfEachBin, [2, Self.settings.bins]) {
                firsts.2.append(try row.get(Int32.self, 0))
                firsts.0.append(try row.get(Int32.self, 1))
                firsts.1.append(try row.get(Int64.self, 2))
            }
            let statements: [(String, String, [PQValue?])] = [
                ("binNewRows", LengthBins.binNewRows, [2, new, "0", firsts.0, firsts.1, firsts.2]),
                ("moveLastRowsUp", LengthBins.moveLastRowsUp, [2, 3, 40]),
                ("moveFirstRowsDown", LengthBins.moveFirstRowsDown, [2, 3, 40]),
            ]
            for (name, sql, params) in statements {
                let plan = try await Self.plan(sql, params, on: c)
                #expect(Self.joinsReadingScores(in: plan).isEmpty, "\(name) joins tov.scores: \(Self.joinsReadingScores(in: plan))")
            }
            _ = try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: 2, settings: Self.settings) }
            try await Self.expectReferenceSelection(version: 2, on: c)
        }
    }

    /// After many refreshes, the old versions' scores are deleted by a scan of tov.scores, never
    /// once per superseded version: no join over tov.scores, and exactly the superseded and failed
    /// versions' rows go.
    @Test func obsoleteScoresDeleteWithoutJoiningVersions() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery("""
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (16, 1, '{}', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status)
                SELECT 1, g, 'A', 'superseded' FROM generate_series(1, 40) g;
                UPDATE tov.model_versions SET status = 'failed' WHERE model_version = 40;
                INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 41, 'A', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 42, 'A', 'scoring');
                """)
            let ids = try await TovTestDatabase.insertCandidates(2000, on: c)
            for version in [39, 40, 41, 42] { try await Self.addScores(ids, version: version, on: c) }
            try await c.simpleQuery("VACUUM ANALYZE tov.scores, tov.model_versions")
            let plan = try await Self.plan(SelectionQueries.scoreObsoleteDeleteMany, [], on: c)
            #expect(Self.joinsReadingScores(in: plan).isEmpty, "joins tov.scores: \(Self.joinsReadingScores(in: plan))")
            #expect(try await c.execute(SelectionQueries.scoreObsoleteDeleteMany) == 2 * ids.count)
            let left = try await c.query("SELECT model_version, count(*) FROM tov.scores GROUP BY 1 ORDER BY 1").map {
                "\(try $0.get(Int32.self, 0)):\(try $0.get(Int64.self, 1))"
            }
            #expect(left == ["41:\(ids.count)", "42:\(ids.count)"])
        }
    }

    /// Scores of `version` for `ids`, unbinned, as workers write them; a row's length is a function
    /// of its id, so every version gives it the same one.
    static func addScores(_ ids: [Int64], version: Int, on c: Connection) async throws {
        try await c.execute("""
            INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens)
            SELECT id, $2::int, tov.phi(l, '{0}', 'improvement'), 1, 1, l, '{0}', -random(), 1 + (id * 7919 % 300)::int
            FROM unnest($1::bigint[]) AS f(id) CROSS JOIN LATERAL (SELECT ARRAY[random()::real] AS l) r
            """, [ids, version])
    }

    /// The planner's plan for `sql` with `params` (EXPLAIN without ANALYZE: nothing runs).
    static func plan(_ sql: String, _ params: [PQValue?], on c: Connection) async throws -> [String: Any] {
        let text = try await c.query("EXPLAIN (FORMAT JSON) " + sql, params).first!.get(String.self, 0)
        let document = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
        return document[0]["Plan"] as! [String: Any]
    }

    static func nodes(_ plan: [String: Any]) -> [[String: Any]] {
        [plan] + ((plan["Plans"] as? [[String: Any]]) ?? []).flatMap(nodes)
    }

    static func scans(of relation: String, in plan: [String: Any]) -> [[String: Any]] {
        nodes(plan).filter { $0["Relation Name"] as? String == relation && ($0["Node Type"] as? String)?.hasSuffix("Scan") == true }
    }

    /// Join nodes (nested loop, hash, merge) with a scan of tov.scores below them, by type.
    static func joinsReadingScores(in plan: [String: Any]) -> [String] {
        nodes(plan).filter { node in
            ["Nested Loop", "Hash Join", "Merge Join"].contains(node["Node Type"] as? String ?? "") && !scans(of: "scores", in: node).isEmpty
        }.map { "\($0["Node Type"]!) \($0["Join Type"] ?? "")" }
    }

    /// `tov.selected` and every stored bin equal the reference on the scores of `version`.
    static func expectReferenceSelection(version: Int, on c: Connection) async throws {
        let rows = try await c.query("SELECT candidate_id, score, uncertainty, tokens FROM tov.scores WHERE model_version = $1::int", [version]).map {
            ScoredRow(id: try $0.get(Int64.self, 0), score: try $0.get(Double.self, 1),
                      uncertainty: Double(try $0.get(Float.self, 2)), length: Int(try $0.get(Int32.self, 3)))
        }
        let expected = select(rows, settings: settings).items.map { "\($0.id)/\($0.reason.rawValue)/\($0.lengthBin)" }
        let actual = try await c.query("SELECT id, reason, length_bin FROM tov.selected ORDER BY id").map {
            "\(try $0.get(Int64.self, 0))/\(try $0.get(String.self, 1))/\(try $0.get(Int32.self, 2))"
        }
        #expect(actual == expected)
        let reference = lengthBins(rows, bins: settings.bins)
        let stored = try await c.query("SELECT candidate_id, length_bin FROM tov.scores WHERE model_version = $1::int AND length_bin IS NOT NULL", [version])
        let wrong = try stored.filter { reference[try $0.get(Int64.self, 0)] != Int(try $0.get(Int32.self, 1)) }.count
        #expect(wrong == 0 && stored.count == rows.count, "\(wrong) rows in the wrong bin, \(stored.count) of \(rows.count) binned")
    }
}
