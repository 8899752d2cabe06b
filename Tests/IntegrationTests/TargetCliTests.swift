@testable import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// `tovd target`, `import --target`, `refresh --target`, and status and explain with several targets,
/// on states set up by hand in a real database (the daemon's per-target training is the trainer's).
@Suite("tovd target, status and explain with several targets")
struct TargetCliTests {
    /// Runs `tovd <arguments>`; returns its exit status and output.
    static func tovd(_ arguments: [String], _ conninfo: String) async throws -> (status: Int32?, log: String) {
        let run = try TovdProcess(arguments, conninfo: conninfo)
        let status = await run.waitForExit()
        return (status, run.log)
    }

    static func zvalFile(_ rows: Int, prefix: String) throws -> String {
        let file = NSTemporaryDirectory() + "tovd-zval-\(UUID().uuidString.prefix(8)).jsonl"
        let lines = (1...rows).map { #"{"prompt": "\#(prefix) prompt \#($0)", "response": "\#(prefix) response \#($0)"}"# }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func addImportListRefreshDisableDrop() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }

            var run = try await Self.tovd(["target", "add", "drop", "--budget", #"{"rows": 2}"#, "--policy", "score_only", "--bins", "3"], conninfo)
            #expect(run.status == 0, "\(run.log)")
            let stored = try await c.query("SELECT target_id, settings::text AS settings, enabled FROM tov.targets WHERE name = 'drop'")
            try #require(stored.count == 1, "\(run.log)")
            let dropID = Int(try stored.rows[0].get(Int32.self, "target_id"))
            #expect(try stored.rows[0].get(String.self, "settings") == #"{"bins": 3, "budget": {"rows": 2}, "policy": "score_only"}"#)
            #expect(try stored.rows[0].get(Bool.self, "enabled"))

            // Errors say what to do, and change nothing.
            run = try await Self.tovd(["target", "add", "drop"], conninfo)
            #expect(run.status != 0 && run.log.contains("exists already"), "\(run.log)")
            run = try await Self.tovd(["target", "add", "no spaces"], conninfo)
            #expect(run.status != 0 && run.log.contains("must start with a letter or digit"), "\(run.log)")
            run = try await Self.tovd(["target", "add", "wide", "--bins", "1000"], conninfo)
            #expect(run.status != 0 && run.log.contains("--bins 1000") && run.log.contains("bins"), "\(run.log)")
            run = try await Self.tovd(["target", "add", "wide", "--budget", "5000"], conninfo)
            #expect(run.status != 0 && run.log.contains("budget"), "\(run.log)")
            #expect(try await TovTestDatabase.count("tov.targets", on: c) == 2)

            // Its own settings change, or go back to the global value; a global key is refused with the list.
            run = try await Self.tovd(["target", "set", "drop", "--bins", "4", "--unset", "policy"], conninfo)
            #expect(run.status == 0 && run.log.contains(#"now sets {"bins": 4, "budget": {"rows": 2}}"#), "\(run.log)")
            run = try await Self.tovd(["target", "set", "drop", "--unset", "u_size"], conninfo)
            #expect(run.status != 0 && run.log.contains("u_size is global")
                    && run.log.contains("a target may set only bins, budget, policy, score_fn, score_share, val_lr_ratio, zval_debounce_seconds"), "\(run.log)")
            run = try await Self.tovd(["target", "set", "drop", "--policy", "nonsense"], conninfo)
            #expect(run.status != 0 && run.log.contains("--policy"), "\(run.log)")
            run = try await Self.tovd(["target", "set", "nope", "--bins", "4"], conninfo)
            #expect(run.status != 0 && run.log.contains("no target named nope; the targets are: default, drop"), "\(run.log)")
            run = try await Self.tovd(["target", "set", "drop", "--bins", "3", "--policy", "score_only"], conninfo)
            #expect(run.status == 0, "\(run.log)")
            #expect(try await c.query("SELECT settings::text AS s FROM tov.targets WHERE name = 'drop'").first!.get(String.self, "s")
                    == #"{"bins": 3, "budget": {"rows": 2}, "policy": "score_only"}"#)

            // A target's Z_val, loaded by import.
            let file = try Self.zvalFile(3, prefix: "drop zval")
            defer { try? FileManager.default.removeItem(atPath: file) }
            run = try await Self.tovd(["import", file, "--into", "validation", "--target", "drop"], conninfo)
            #expect(run.status == 0 && run.log.contains("imported 3 rows into tov.validation for target drop"), "\(run.log)")
            #expect(try await TovTestDatabase.count("tov.validation", on: c, where: "target = 'drop'") == 3)
            run = try await Self.tovd(["import", file, "--into", "validation", "--target", "nope"], conninfo)
            #expect(run.status != 0 && run.log.contains("no target named nope; the targets are: default, drop"), "\(run.log)")
            run = try await Self.tovd(["import", file, "--target", "drop"], conninfo)
            #expect(run.status != 0 && run.log.contains("--into validation"), "\(run.log)")
            // tov_writer may load Z_val but not read tov.targets: the foreign key still names a wrong target.
            let writer = "writer_\(UUID().uuidString.prefix(8).lowercased())"
            try await c.simpleQuery("CREATE ROLE \(writer) LOGIN IN ROLE tov_writer")
            defer { Task { try? await c.simpleQuery("DROP OWNED BY \(writer); DROP ROLE IF EXISTS \(writer)") } }
            run = try await Self.tovd(["import", file, "--into", "validation", "--target", "nope"], conninfo + " user=\(writer)")
            #expect(run.status != 0 && run.log.contains("no target named nope"), "\(run.log)")
            run = try await Self.tovd(["import", file, "--into", "validation", "--target", "drop", "--strict"], conninfo + " user=\(writer)")
            #expect(run.status == 0, "\(run.log)")
            try await c.simpleQuery("DELETE FROM tov.validation WHERE id > (SELECT min(id) + 2 FROM tov.validation)")
            #expect(try await TovTestDatabase.count("tov.validation", on: c) == 3)
            #expect(try await TovTestDatabase.count("tov.candidates", on: c) == 0)

            run = try await Self.tovd(["target", "list"], conninfo)
            #expect(run.status == 0, "\(run.log)")
            let dropLine = run.log.split(separator: "\n").first { $0.hasPrefix("drop ") }.map(String.init) ?? ""
            #expect(dropLine.contains("Z_val version 3, 3 rows") && dropLine.contains("no model yet"), "\(run.log)")
            #expect(run.log.contains(#"own settings: bins = 3, budget = {"rows": 2}, policy = "score_only""#), "\(run.log)")
            run = try await Self.tovd(["target", "list", "--json"], conninfo)
            let listed = try #require(try JSONSerialization.jsonObject(with: Data(run.log.utf8)) as? [[String: Any]], "\(run.log)")
            #expect(listed.map { $0["name"] as? String } == ["default", "drop"])
            #expect(listed[1]["zval_rows"] as? Int == 3 && listed[1]["model_version"] is NSNull)

            // refresh --target asks for that target; without it, for every target.
            run = try await Self.tovd(["refresh", "--target", "drop"], conninfo)
            #expect(run.status == 0, "\(run.log)")
            run = try await Self.tovd(["refresh"], conninfo)
            #expect(run.status == 0, "\(run.log)")
            let requests = try await c.query("SELECT target_id FROM tov.training_requests ORDER BY id")
                .map { try $0.getOptional(Int32.self, "target_id").map(Int.init) }
            #expect(requests == [dropID, nil])
            run = try await Self.tovd(["refresh", "--target", "nope"], conninfo)
            #expect(run.status != 0 && run.log.contains("the targets are: default, drop"), "\(run.log)")

            run = try await Self.tovd(["target", "disable", "drop"], conninfo)
            #expect(run.status == 0, "\(run.log)")
            #expect(try await TovTestDatabase.count("tov.targets", on: c, where: "name = 'drop' AND NOT enabled") == 1)
            run = try await Self.tovd(["target", "enable", "nope"], conninfo)
            #expect(run.status != 0 && run.log.contains("no target named nope; the targets are: default, drop"), "\(run.log)")

            // Drop says what it deletes and wants --yes when there is data; history stays.
            let ids = try await TovTestDatabase.insertCandidates(2, on: c)
            try await c.execute("""
                INSERT INTO tov.selection_items (target_id, candidate_id, score, reason, length_bin) VALUES ($1, $2, 1, 'score', 0);
                """, [dropID, ids[0]])
            try await c.execute("""
                INSERT INTO tov.selection_history (target_id, selection_version, candidate_id, change, reason) VALUES ($1, 1, $2, 'in', 'score')
                """, [dropID, ids[0]])
            run = try await Self.tovd(["target", "drop", "drop"], conninfo)
            #expect(run.status != 0 && run.log.contains("deletes 3 Z_val rows") && run.log.contains("the 1 rows of its selection")
                    && run.log.contains("--yes"), "\(run.log)")
            #expect(try await TovTestDatabase.count("tov.targets", on: c, where: "name = 'drop'") == 1)
            run = try await Self.tovd(["target", "drop", "default", "--yes"], conninfo)
            #expect(run.status != 0 && run.log.contains("disable default"), "\(run.log)")
            run = try await Self.tovd(["target", "drop", "drop", "--yes"], conninfo)
            #expect(run.status == 0 && run.log.contains("dropped target drop"), "\(run.log)")
            #expect(try await TovTestDatabase.count("tov.targets", on: c) == 1)
            #expect(try await TovTestDatabase.count("tov.validation", on: c) == 0)
            #expect(try await TovTestDatabase.count("tov.selection_items", on: c) == 0)
            #expect(try await TovTestDatabase.count("tov.selection_history", on: c, where: "target_id = \(dropID)") == 1)
            run = try await Self.tovd(["target", "drop", "drop"], conninfo)
            #expect(run.status != 0 && run.log.contains("no target named drop; the targets are: default"), "\(run.log)")
        }
    }

    /// Two targets with a model version each on one base model: 'default' current, 'drop' one
    /// Z_val change behind with its next version being rescored. Returns (drop's id, candidate ids,
    /// default's version, drop's version).
    static func twoTargets(on c: Connection) async throws -> (drop: Int, ids: [Int64], versions: [Int]) {
        let ids = try await TovTestDatabase.insertCandidates(4, on: c)
        let drop = Int(try await c.query("INSERT INTO tov.targets (name, settings) VALUES ('drop', '{\"budget\": {\"rows\": 1}}') RETURNING target_id")
            .first!.get(Int32.self, "target_id"))
        try await c.simpleQuery("""
            INSERT INTO tov.validation (prompt, response) VALUES ('d1', 'd1'), ('d2', 'd2');
            INSERT INTO tov.validation (target, prompt, response) VALUES ('drop', 'x1', 'x1');
            INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (1, 1, '{}', 'complete');
            """)
        // Each version was trained on its target's Z_val version as it was then; drop's Z_val moved on.
        let versions = try await c.query("""
            INSERT INTO tov.model_versions (target_id, base_version, zval_version, method, status)
            SELECT 1, max(base_version), (SELECT version FROM tov.target_zval WHERE target_id = 1), 'A', 'complete'::tov.model_status FROM tov.base_models
            UNION ALL
            SELECT $1, max(base_version), 0, 'A', 'complete'::tov.model_status FROM tov.base_models
            RETURNING model_version
            """, [drop]).map { Int(try $0.get(Int32.self, "model_version")) }
        try await c.execute("""
            INSERT INTO tov.model_versions (target_id, base_version, zval_version, method, status, rescore_total, trained_at, reason)
            SELECT $1, max(base_version), 1, 'A', 'scoring', 4, now(), 'Z_val changed' FROM tov.base_models
            """, [drop])
        try await c.execute("""
            INSERT INTO tov.jobs (candidate_id, model_version)
            SELECT unnest($1::bigint[]), (SELECT max(model_version) FROM tov.model_versions) ON CONFLICT DO NOTHING
            """, [Array(ids.prefix(3))])
        // Every row scored under both complete versions, with opposite orders; each target selected its best.
        try await c.execute("""
            INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens)
            SELECT id, $2::int, n, 2, 1, '{2}'::real[], '{1}'::real[], 0.1, 5 FROM unnest($1::bigint[]) WITH ORDINALITY AS r(id, n)
            UNION ALL
            SELECT id, $3::int, -n, 2, 1, '{2}'::real[], '{1}'::real[], 0.1, 5 FROM unnest($1::bigint[]) WITH ORDINALITY AS r(id, n)
            """, [ids, versions[0], versions[1]])
        try await c.execute("""
            INSERT INTO tov.selection_items (target_id, candidate_id, score, reason, length_bin) VALUES (1, $1, 4, 'score', 0), ($2, $3, -1, 'score', 0);
            """, [ids[3], drop, ids[0]])
        try await c.execute("UPDATE tov.selection_state SET selection_version = 5, model_version = $1 WHERE target_id = 1", [versions[0]])
        try await c.execute("UPDATE tov.selection_state SET selection_version = 2, model_version = $1 WHERE target_id = $2", [versions[1], drop])
        return (drop, ids, versions)
    }

    @Test func statusShowsEachTarget() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            // One target: today's text, no per-target section; --json has the one target.
            let single = try await StatusReport.load(on: c)
            #expect(single.targets.map(\.name) == ["default"])
            #expect(!single.humanReadable.contains("targets "), "\(single.humanReadable)")

            let setup = try await Self.twoTargets(on: c)
            let report = try await StatusReport.load(on: c)
            try #require(report.targets.count == 2)
            let (d, drop) = (report.targets[0], report.targets[1])
            #expect(d.name == "default" && d.modelVersion == setup.versions[0] && d.zvalRows == 2 && d.selectionSize == 1
                    && d.selectionVersion == 5 && d.zvalCurrent == true && d.nextModelVersion == nil)
            #expect(drop.name == "drop" && drop.modelVersion == setup.versions[1] && drop.zvalRows == 1 && drop.selectionSize == 1
                    && drop.selectionVersion == 2 && drop.zvalCurrent == false && drop.nextModelStatus == "scoring"
                    && drop.rescorePending == 3 && drop.rescoreTotal == 4 && drop.settings == ["budget": #"{"rows": 1}"#])
            // tov.status (and its lines) stay the target 'default''s.
            #expect(report.modelVersion == setup.versions[0] && report.selected == 1 && report.zvalRows == 2 && report.nextModelVersion == nil)
            let text = report.humanReadable
            #expect(text.contains("targets     2"), "\(text)")
            let dropLine = text.split(separator: "\n").first { $0.hasPrefix("  drop") }.map(String.init) ?? ""
            #expect(dropLine.contains("model \(setup.versions[1]), next \(setup.versions[1] + 1) scoring (3 of 4 rows left)")
                    && dropLine.contains("Z_val version 1, 1 rows") && dropLine.contains("selection 1 rows (version 2), from an older Z_val"),
                    "\(text)")
            #expect(text.contains("from the current Z_val"), "\(text)")

            let run = try await Self.tovd(["status", "--json"], conninfo)
            #expect(run.status == 0, "\(run.log)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.log.utf8)) as? [String: Any], "\(run.log)")
            let targets = try #require(json["targets"] as? [[String: Any]])
            #expect(targets.map { $0["name"] as? String } == ["default", "drop"])
            #expect(targets[1]["zval_current"] as? Bool == false && targets[1]["next_model_status"] as? String == "scoring"
                    && targets[1]["selection_size"] as? Int == 1)
            #expect(json["model_version"] as? Int == setup.versions[0])

            // What every instance copies into its metrics is the target 'default''s too (a bare
            // `status = 'complete'` subquery sees one version per target and fails).
            let figures = try #require(try await InstanceStore.figures(on: c))
            #expect(figures.modelVersion == setup.versions[0] && figures.selectionVersion == 5 && figures.selectionSize == 1)
        }
    }

    @Test func explainUnderEachTarget() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let setup = try await Self.twoTargets(on: c)
            let row = setup.ids[0]  // drop's pick, not default's

            let underDrop = try await Explanation.load(candidateID: row, target: "drop", on: c).lines
            #expect(underDrop.first?.hasPrefix("model version \(setup.versions[1])") == true, "\(underDrop)")
            #expect(underDrop.contains { $0.hasPrefix("in: selected by score") }, "\(underDrop)")
            // drop's own budget ({"rows": 1}) is the one explained, not the global 5 %.
            #expect(underDrop.contains { $0.contains("budget 1 of 4 eligible rows") }, "\(underDrop)")
            let underDefault = try await Explanation.load(candidateID: row, on: c).lines
            #expect(underDefault.first?.hasPrefix("model version \(setup.versions[0])") == true, "\(underDefault)")
            #expect(underDefault.last?.hasPrefix("out: not in the current selection") == true, "\(underDefault)")

            var run = try await Self.tovd(["explain", "\(row)"], conninfo)
            #expect(run.status == 0, "\(run.log)")
            #expect(run.log.contains("  target default\n    model version \(setup.versions[0])")
                    && run.log.contains("  target drop\n    model version \(setup.versions[1])"), "\(run.log)")
            run = try await Self.tovd(["explain", "\(row)", "--target", "drop"], conninfo)
            #expect(run.status == 0 && !run.log.contains("target default") && run.log.contains("in: selected by score"), "\(run.log)")
            run = try await Self.tovd(["explain", "999999"], conninfo)
            #expect(run.status == 0 && run.log.components(separatedBy: "no candidate with id 999999").count == 2, "\(run.log)")
            run = try await Self.tovd(["explain", "\(row)", "--target", "nope"], conninfo)
            #expect(run.status != 0 && run.log.contains("the targets are: default, drop"), "\(run.log)")
        }
    }

    /// Every new flag is in its command's --help, with an example that uses it.
    @Test func helpShowsEachNewFlagWithAnExample() async throws {
        let expected: [([String], [String])] = [
            (["target", "--help"], ["add", "list", "enable", "disable", "drop", "tovd target add drop --budget"]),
            (["target", "add", "--help"], ["--budget", "--policy", "--bins", "--score-fn", "--val-lr-ratio", "--zval-debounce-seconds",
                                           "--disabled", "tovd target add drop --budget '{\"rows\": 5000}' --policy score_only --bins 20"]),
            (["target", "drop", "--help"], ["--yes", "tovd target drop drop --yes"]),
            (["target", "set", "--help"], ["--unset", "--bins", "tovd target set drop --unset budget --unset bins"]),
            (["target", "list", "--help"], ["--json", "tovd target list --json"]),
            (["import", "--help"], ["--target", "tovd import drop-zval.jsonl --into validation --target drop"]),
            (["refresh", "--help"], ["--target", "tovd refresh --target drop"]),
            (["explain", "--help"], ["--target", "tovd explain 123 --target drop"]),
            (["export", "--help"], ["--target", "--manifest", "--as-of", "tovd export --target drop --with-validation",
                                    "--manifest train.manifest.json", "tovd export --as-of train.manifest.json"]),
            (["status", "--help"], ["targets [{name"]),
        ]
        for (arguments, needles) in expected {
            let run = try await Self.tovd(arguments, "")
            #expect(run.status == 0, "\(arguments): \(run.log)")
            // ArgumentParser wraps discussion text at the terminal width: compare with spaces collapsed.
            let text = run.log.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            for needle in needles { #expect(text.contains(needle), "tovd \(arguments.joined(separator: " ")) lacks \(needle): \(run.log)") }
        }
    }
}
