import Foundation
import PQ
import Testing
import TovTesting

/// `tovd export` against a real server: the selection alone, and the selection with Z_val (the
/// training set docs/evaluation.md recommends).
@Suite("Export")
struct ExportTests {
    /// Runs `tovd export <arguments> -o file` and returns its lines as JSON objects.
    static func export(_ arguments: [String], conninfo: String) async throws -> [[String: Any]] {
        let file = NSTemporaryDirectory() + "tovd-export-\(UUID().uuidString.prefix(8)).jsonl"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let run = try TovdProcess(["export"] + arguments + ["-o", file], conninfo: conninfo)
        #expect(await run.waitForExit() == 0, "\(run.log)")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test func withValidationWritesSelectionThenZvalEachTextOnce() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let ids = try await TovTestDatabase.insertCandidates(4, on: c, prefix: "pool")
            // Rows 3 and 1 selected (inserted out of order: the export orders by id); 2 and 4 are not.
            _ = try await c.execute("""
                INSERT INTO tov.selection_items (target_id, candidate_id, score, reason, length_bin)
                VALUES (1, $1, 0.5, 'random', 0), (1, $2, 0.9, 'score', 1)
                """, [ids[2], ids[0]])
            // Z_val: one new row, one repeating a selected row, one repeating an unselected pool row
            // (kept: it is not in the selection), and a duplicate of the new row.
            _ = try await c.execute("""
                INSERT INTO tov.validation (prompt, response) VALUES
                    ('zval prompt a', 'zval response a'), ('pool prompt 1', 'pool response 1'),
                    ('pool prompt 2', 'pool response 2'), ('zval prompt a', 'zval response a')
                """)

            let lines = try await Self.export(["--with-validation"], conninfo: conninfo)
            let summary = lines.map { "\($0["set"]!) \($0["prompt"]!)" }
            #expect(summary == ["selected pool prompt 1", "selected pool prompt 3", "validation zval prompt a", "validation pool prompt 2"])
            #expect(lines[0]["reason"] as? String == "score" && lines[0]["score"] as? Double == 0.9)
            #expect(lines[2]["score"] is NSNull && lines[2]["reason"] is NSNull)
            let zvalIds = lines.filter { $0["set"] as? String == "validation" }.compactMap { $0["id"] as? Int }
            #expect(zvalIds == zvalIds.sorted() && zvalIds.count == 2)

            // --selected alone: the selection only, every row as it is.
            let selected = try await Self.export(["--selected"], conninfo: conninfo)
            #expect(selected.map { $0["prompt"] as! String } == ["pool prompt 1", "pool prompt 3"])
            #expect(selected.allSatisfy { $0["set"] as? String == "selected" })
        }
    }

    /// Defect 9 of issue 24: Z_val rows were written with `source: null` (hard-coded although
    /// tov.validation.source exists), and DISTINCT ON over both sets also dropped a selected row whose
    /// text another selected row repeats.
    @Test func withValidationKeepsZvalSourceAndEverySelectedRow() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            // Two pool rows with the same text, both selected; a third selected row.
            let twins = try await c.query("""
                INSERT INTO tov.candidates (prompt, response, source) VALUES
                    ('same prompt', 'same response', 'twin a'), ('same prompt', 'same response', 'twin b'),
                    ('other prompt', 'other response', 'other')
                RETURNING id
                """).map { try $0.get(Int64.self, "id") }
            _ = try await c.execute("""
                INSERT INTO tov.selection_items (target_id, candidate_id, score, reason, length_bin)
                SELECT 1, unnest($1::bigint[]), 0.5, 'score', 0
                """, [twins])
            _ = try await c.execute("""
                INSERT INTO tov.validation (prompt, response, source) VALUES
                    ('zval prompt', 'zval response', 'zval source'), ('same prompt', 'same response', 'dup of selected'),
                    ('zval prompt', 'zval response', 'dup of zval'), ('zval plain', 'zval plain', NULL)
                """)

            let lines = try await Self.export(["--with-validation"], conninfo: conninfo)
            let summary = lines.map { "\($0["set"]!) \($0["source"]!)" }
            #expect(summary == ["selected twin a", "selected twin b", "selected other", "validation zval source", "validation <null>"],
                    "\(summary)")
            let selected = try await Self.export(["--selected"], conninfo: conninfo)
            #expect(selected.count == 3)
            #expect(lines.prefix(3).map { $0["id"] as? Int } == selected.map { $0["id"] as? Int })
        }
    }
}
