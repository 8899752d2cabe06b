import Daemon
import Foundation
import PQ
import Surrogate
import Testing
import TovTesting

/// `tovd export --target`, `--manifest` and `--as-of` against a real server: a manifest written, the
/// selection moved on (rows in and out), and the old rows written again exactly from the history.
@Suite("Export manifest")
struct ExportManifestTests {
    static func tovd(_ arguments: [String], _ conninfo: String) async throws -> (status: Int32?, log: String) {
        let run = try TovdProcess(arguments, conninfo: conninfo)
        let status = await run.waitForExit()
        return (status, run.log)
    }

    static func temporary(_ name: String) -> String { NSTemporaryDirectory() + "tovd-\(name)-\(UUID().uuidString.prefix(8))" }

    static func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// Moves the target's selection to `version` with exactly `items` (id, reason), writing the history
    /// rows the selection keeper writes: 'out' for rows that left, 'in' for rows that entered.
    static func select(_ items: [(Int64, String)], version: Int64, target: Int, modelVersion: Int?, on c: Connection) async throws {
        let now = Set(items.map(\.0))
        let before = try await c.query("SELECT candidate_id, reason FROM tov.selection_items WHERE target_id = $1", [target])
            .map { (try $0.get(Int64.self, "candidate_id"), try $0.get(String.self, "reason")) }
        for (id, reason) in before where !now.contains(id) {
            try await c.execute("DELETE FROM tov.selection_items WHERE target_id = $1 AND candidate_id = $2", [target, id])
            try await c.execute("""
                INSERT INTO tov.selection_history (target_id, selection_version, candidate_id, change, reason) VALUES ($1, $2, $3, 'out', $4)
                """, [target, version, id, reason])
        }
        let kept = Set(before.map(\.0))
        for (id, reason) in items where !kept.contains(id) {
            try await c.execute("""
                INSERT INTO tov.selection_items (target_id, candidate_id, score, reason, length_bin) VALUES ($1, $2, 0.5, $3, 0)
                """, [target, id, reason])
            try await c.execute("""
                INSERT INTO tov.selection_history (target_id, selection_version, candidate_id, change, reason) VALUES ($1, $2, $3, 'in', $4)
                """, [target, version, id, reason])
        }
        try await c.execute("""
            UPDATE tov.selection_state SET selection_version = $1, model_version = $2, computed_at = now(),
                settings = '{"bins": 10, "budget": {"rows": 3}, "policy": "score_random", "score_fn": "improvement", "seed": 0}'
            WHERE target_id = $3
            """, [version, modelVersion, target])
    }

    @Test func asOfWritesTheManifestsRowsAfterTheSelectionMovedOn() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let ids = try await TovTestDatabase.insertCandidates(8, on: c)
            let drop = Int(try await c.query("INSERT INTO tov.targets (name) VALUES ('drop') RETURNING target_id").first!.get(Int32.self, "target_id"))
            try await c.simpleQuery("""
                INSERT INTO tov.validation (target, prompt, response) VALUES ('drop', 'z1', 'z1'), ('drop', 'z2', 'z2');
                INSERT INTO tov.validation (prompt, response) VALUES ('default zval', 'default zval');
                INSERT INTO tov.base_models (u_size, epochs, config, status)
                    VALUES (16, 2, '{"lr": 0.0003, "seed": 0, "epochs": 2, "surrogate": {"heads": 4, "width": 256}}', 'complete');
                """)
            let version = Int(try await c.query("""
                INSERT INTO tov.model_versions (target_id, base_version, zval_version, method, status, val_lr_ratio)
                SELECT $1, max(base_version), 1, 'A', 'complete', 0.1 FROM tov.base_models RETURNING model_version
                """, [drop]).first!.get(Int32.self, "model_version"))
            // Versions 1 and 2 of drop's selection; default's selection is other rows.
            try await Self.select([(ids[0], "score"), (ids[1], "score"), (ids[2], "random")], version: 1, target: drop, modelVersion: version, on: c)
            // (ids[3] drawn by importance, as score_dsir's second part does.)
            try await Self.select([(ids[0], "score"), (ids[2], "random"), (ids[3], "importance")], version: 2, target: drop, modelVersion: version, on: c)
            try await Self.select([(ids[7], "score")], version: 1, target: 1, modelVersion: nil, on: c)

            let output = Self.temporary("export") + ".jsonl", manifest = Self.temporary("manifest") + ".json"
            let again = Self.temporary("again") + ".jsonl"
            defer { for f in [output, manifest, again] { try? FileManager.default.removeItem(atPath: f) } }
            var run = try await Self.tovd(["export", "--target", "drop", "--with-validation", "-o", output, "--manifest", manifest], conninfo)
            #expect(run.status == 0, "\(run.log)")
            let exported = try Self.lines(output)
            #expect(exported.map { "\($0["set"]!) \($0["prompt"]!)" }
                    == ["selected row prompt 1", "selected row prompt 3", "selected row prompt 4", "validation z1", "validation z2"])

            let manifestText = try String(contentsOfFile: manifest, encoding: .utf8)
            let m = try #require(try JSONSerialization.jsonObject(with: Data(manifestText.utf8)) as? [String: Any])
            let expectedIDs = [ids[0], ids[2], ids[3]]
            #expect(m["target"] as? String == "drop" && m["target_id"] as? Int == drop && m["selection_version"] as? Int == 2)
            #expect(m["model_version"] as? Int == version && m["theta0"] as? String == "bootstrap" && m["schema_version"] as? Int == Migrator().latestVersion)
            #expect(m["zval_rows"] as? Int == 2 && m["zval_version"] as? Int == 1 && m["validation_rows_written"] as? Int == 2)
            #expect((m["tovd_version"] as? String)?.isEmpty == false && (m["exported_at"] as? String)?.hasSuffix("Z") == true)
            let rows = try #require(m["rows"] as? [String: Any])
            #expect((rows["ids"] as? [Int])?.map(Int64.init) == expectedIDs)
            #expect(rows["count"] as? Int == 3 && rows["score"] as? Int == 1 && rows["random"] as? Int == 1 && rows["importance"] as? Int == 1)
            #expect(rows["ids_sha256"] as? String == SHA256.hexDigest(of: Data(expectedIDs.map { "\($0)\n" }.joined().utf8)))
            // The settings as recorded (base model, version, selection) and their hash over the canonical
            // form, which is the `settings` value exactly as the compact, key-sorted file holds it.
            let settings = try #require(m["settings"] as? [String: Any])
            #expect((settings["base"] as? [String: Any])?["u_size"] as? Int == 16)
            #expect((settings["model"] as? [String: Any])?["method"] as? String == "A")
            #expect((settings["selection"] as? [String: Any])?["policy"] as? String == "score_random")
            let settingsText = try #require(manifestText.range(of: #""settings":"#).map { start in
                let from = manifestText[start.upperBound...]
                return String(from[..<from.range(of: #","settings_sha256""#)!.lowerBound])
            })
            #expect(settingsText.hasPrefix(#"{"base":{"epochs":2,"lr":0.0003"#), "\(settingsText)")
            #expect(m["settings_sha256"] as? String == SHA256.hexDigest(of: Data(settingsText.utf8)))

            // The selection moves on: one row out, two in, at versions 3 and 4.
            try await Self.select([(ids[0], "score"), (ids[3], "score"), (ids[4], "random")], version: 3, target: drop, modelVersion: version, on: c)
            try await Self.select([(ids[0], "score"), (ids[4], "random"), (ids[5], "score")], version: 4, target: drop, modelVersion: version, on: c)
            run = try await Self.tovd(["export", "--as-of", manifest, "-o", again], conninfo)
            #expect(run.status == 0, "\(run.log)")
            let reproduced = try Self.lines(again)
            #expect(reproduced.map { Int64($0["id"] as! Int) } == expectedIDs)
            #expect(reproduced.map { $0["prompt"] as? String } == exported.prefix(3).map { $0["prompt"] as? String })
            #expect(reproduced.allSatisfy { $0["selection_version"] as? Int == 2 && $0["set"] as? String == "selected" })
            let now = try await c.query("SELECT id FROM tov.selections WHERE target = 'drop' ORDER BY id").map { try $0.get(Int64.self, "id") }
            #expect(now == [ids[0], ids[4], ids[5]])

            // A dropped target's history stays: its manifest is still reproduced.
            run = try await Self.tovd(["target", "drop", "drop", "--yes"], conninfo)
            #expect(run.status == 0, "\(run.log)")
            try? FileManager.default.removeItem(atPath: again)
            run = try await Self.tovd(["export", "--as-of", manifest, "-o", again], conninfo)
            #expect(run.status == 0, "\(run.log)")
            #expect(try Self.lines(again).map { Int64($0["id"] as! Int) } == expectedIDs)

            // A row deleted from the pool since: its text is gone, and --as-of says so.
            try await c.execute("DELETE FROM tov.candidates WHERE id = $1", [ids[2]])
            try? FileManager.default.removeItem(atPath: again)
            run = try await Self.tovd(["export", "--as-of", manifest, "-o", again], conninfo)
            #expect(run.status != 0 && run.log.contains("1 of the 3 rows") && run.log.contains("deleted from tov.candidates"), "\(run.log)")
            #expect(!FileManager.default.fileExists(atPath: again))

            // History that cannot give the same rows fails loudly and writes nothing.
            try await c.execute("DELETE FROM tov.selection_history WHERE target_id = $1 AND candidate_id = $2 AND change = 'in'", [drop, ids[3]])
            try? FileManager.default.removeItem(atPath: again)
            run = try await Self.tovd(["export", "--as-of", manifest, "-o", again], conninfo)
            #expect(run.status != 0 && run.log.contains("cannot reproduce") && run.log.contains("1 of its rows missing"), "\(run.log)")
            #expect(!FileManager.default.fileExists(atPath: again))

            // A manifest whose ids were edited is refused before the database is asked.
            let edited = manifestText.replacingOccurrences(of: "\"ids\":[\(ids[0]),", with: "\"ids\":[\(ids[1]),")
            #expect(edited != manifestText)
            try edited.write(toFile: manifest, atomically: true, encoding: .utf8)
            run = try await Self.tovd(["export", "--as-of", manifest, "-o", again], conninfo)
            #expect(run.status != 0 && run.log.contains("edited or cut short"), "\(run.log)")
        }
    }

    @Test func aTargetsExportIsItsSelectionAndZval() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let ids = try await TovTestDatabase.insertCandidates(4, on: c)
            let drop = Int(try await c.query("INSERT INTO tov.targets (name) VALUES ('drop') RETURNING target_id").first!.get(Int32.self, "target_id"))
            try await c.simpleQuery("""
                INSERT INTO tov.validation (target, prompt, response) VALUES ('drop', 'drop zval', 'drop zval');
                INSERT INTO tov.validation (prompt, response) VALUES ('default zval', 'default zval');
                """)
            try await Self.select([(ids[0], "score"), (ids[1], "random")], version: 1, target: drop, modelVersion: nil, on: c)
            try await Self.select([(ids[3], "score")], version: 1, target: 1, modelVersion: nil, on: c)

            let output = Self.temporary("export") + ".jsonl", manifest = Self.temporary("manifest") + ".json"
            defer { for f in [output, manifest] { try? FileManager.default.removeItem(atPath: f) } }
            var run = try await Self.tovd(["export", "--target", "drop", "--with-validation", "-o", output], conninfo)
            #expect(run.status == 0, "\(run.log)")
            #expect(try Self.lines(output).map { "\($0["set"]!) \($0["prompt"]!)" }
                    == ["selected row prompt 1", "selected row prompt 2", "validation drop zval"])
            // Without --target: the target 'default', as before.
            run = try await Self.tovd(["export", "--with-validation", "-o", output, "--manifest", manifest], conninfo)
            #expect(run.status == 0, "\(run.log)")
            #expect(try Self.lines(output).map { "\($0["set"]!) \($0["prompt"]!)" } == ["selected row prompt 4", "validation default zval"])
            let m = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifest))) as? [String: Any])
            // Before any model version: no model, base or θ0, and the settings say so.
            #expect(m["target"] as? String == "default" && m["model_version"] is NSNull && m["theta0"] is NSNull)
            #expect((m["settings"] as? [String: Any])?["base"] is NSNull)

            run = try await Self.tovd(["export", "--target", "nope", "--selected"], conninfo)
            #expect(run.status != 0 && run.log.contains("no target named nope; the targets are: default, drop"), "\(run.log)")
            run = try await Self.tovd(["export", "--as-of", manifest, "--with-validation"], conninfo)
            #expect(run.status != 0 && run.log.contains("keeps no history"), "\(run.log)")
        }
    }
}
