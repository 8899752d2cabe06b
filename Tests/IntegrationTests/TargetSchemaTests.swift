import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// The SQL contract of several targets (migration 010, issue 26): what plain SQL users do with
/// targets, and what a single-target database of version 9 becomes. Real server, real triggers.
@Suite("Targets: the SQL contract")
struct TargetSchemaTests {
    static func int(_ sql: String, _ binds: [PQValue?] = [], on c: Connection) async throws -> Int64 {
        try await c.query(sql, binds).first!.get(Int64.self, 0)
    }

    /// A version 9 database with Z_val, a model version and a selection becomes the target
    /// `default`, and the queries of DESIGN.md §3 read the same values as before the migration.
    @Test func aSingleTargetDatabaseBecomesTheTargetDefault() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Migrator().up(on: c, to: 9)
            let ids = try await TovTestDatabase.insertCandidates(3, on: c)
            try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('q', 'a'), ('q2', 'a2')")
            try await c.execute("INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (16, 2, '{}', 'complete')")
            try await c.execute("INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 1, 'A', 'complete')")
            try await c.execute("UPDATE tov.selection_state SET selection_version = 4, model_version = 1")
            try await c.execute("INSERT INTO tov.selection_items (candidate_id, score, reason, length_bin) VALUES ($1, 0.5, 'score', 0)", [ids[0]])
            try await c.execute("INSERT INTO tov.selection_history (selection_version, candidate_id, change, reason, model_version) VALUES (4, $1, 'in', 'score', 1)", [ids[0]])
            let before = try await c.query("SELECT zval_version, zval_rows, selection_version, selection_size, model_version FROM tov.status").first!
            try await Migrator().up(on: c)
            let after = try await c.query("SELECT zval_version, zval_rows, selection_version, selection_size, model_version, targets FROM tov.status").first!
            for column in ["zval_version", "zval_rows", "selection_version", "selection_size"] {
                #expect(try after.get(Int64.self, column) == before.get(Int64.self, column), "\(column)")
            }
            #expect(try after.get(Int32.self, "model_version") == before.get(Int32.self, "model_version"))
            #expect(try after.get(Int64.self, "targets") == 1)
            #expect(try await Self.int("SELECT id FROM tov.selected", on: c) == ids[0])
            #expect(try await c.query("SELECT target FROM tov.selections").first!.get(String.self, "target") == "default")
            #expect(try await c.query("SELECT target FROM tov.validation GROUP BY target").map { try $0.get(String.self, "target") } == ["default"])
            #expect(try await Self.int("SELECT version FROM tov.zval_version", on: c) == before.get(Int64.self, "zval_version"))
            // A writer of version 9 (no target column) still writes the target `default`'s rows.
            try await c.execute("INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 2, 'A', 'training')")
            #expect(try await Self.int("SELECT count(*) FROM tov.model_versions WHERE target_id = tov.default_target_id()", on: c) == 2)
        }
    }

    /// Each statement on tov.validation bumps the Z_val version of exactly the targets whose rows it
    /// changed; a statement that changes nothing bumps nothing.
    @Test func zvalVersionsArePerTarget() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute("INSERT INTO tov.targets (name) VALUES ('drop'), ('ropes')")
            let version = { (name: String) in try await Self.int("SELECT z.version FROM tov.target_zval z JOIN tov.targets t USING (target_id) WHERE t.name = $1", [name], on: c) }
            try await c.execute("INSERT INTO tov.validation (target, prompt, response) VALUES ('drop', 'q', 'a'), ('drop', 'q2', 'a2')")
            #expect(try await version("drop") == 1)
            #expect(try await version("ropes") == 0)
            #expect(try await version("default") == 0)
            try await c.execute("UPDATE tov.validation SET target = 'ropes' WHERE prompt = 'q2'")
            #expect(try await version("drop") == 2)
            #expect(try await version("ropes") == 1)
            try await c.execute("DELETE FROM tov.validation WHERE prompt = 'no such row'")
            #expect(try await version("drop") == 2)
            try await c.execute("DELETE FROM tov.validation WHERE target = 'ropes'")
            #expect(try await version("ropes") == 2)
            try await c.execute("TRUNCATE tov.validation CASCADE")  // tov.validation_rejects refers to it
            #expect(try await version("drop") == 3)
            #expect(try await version("default") == 1)
        }
    }

    /// Per-target settings accept only the per-target keys, each with the global rule; a key a target
    /// does not set reads the global value.
    @Test func aTargetSetsOnlyItsOwnKeys() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute("INSERT INTO tov.targets (name, settings) VALUES ('drop', '{\"budget\": {\"rows\": 50}, \"bins\": 4}')")
            for bad in ["{\"u_size\": 64}", "{\"bins\": 0}", "{\"budget\": 5}", "[]", "{\"score_fn\": \"max\"}"] {
                await #expect(throws: PQError.self, "\(bad)") {
                    try await c.execute("UPDATE tov.targets SET settings = $1::jsonb WHERE name = 'drop'", [bad])
                }
            }
            for bad in ["", "-x", "a b", String(repeating: "x", count: 64), "dröp"] {
                await #expect(throws: PQError.self, "\(bad)") { try await c.execute("INSERT INTO tov.targets (name) VALUES ($1)", [bad]) }
            }
            try await c.execute("UPDATE tov.settings SET value = '7' WHERE key = 'bins'")
            let drop = try await Self.int("SELECT target_id FROM tov.targets WHERE name = 'drop'", on: c)
            #expect(try await c.query("SELECT tov.target_setting($1, 'bins')::text", [Int32(drop)]).first!.get(String.self, 0) == "4")
            #expect(try await c.query("SELECT tov.target_setting(tov.default_target_id(), 'bins')::text").first!.get(String.self, 0) == "7")
            // The daemon reads the same: the target's own value over the global one.
            let settings = try await SettingsCache.load(on: c)
            #expect(settings.target(named: "drop")?.settings.selection.bins == 4)
            #expect(settings.target(named: "default")?.settings.selection.bins == 7)
            #expect(settings.selection.bins == 7)
        }
    }

    /// A new target has its own empty selection; dropping one takes its Z_val, versions, scores and
    /// selection along, keeps its history, and leaves the other targets' rows alone.
    @Test func droppingATargetTakesOnlyItsOwnRows() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let ids = try await TovTestDatabase.insertCandidates(4, on: c)
            try await c.execute("INSERT INTO tov.targets (name) VALUES ('drop')")
            let drop = try await Self.int("SELECT target_id FROM tov.targets WHERE name = 'drop'", on: c)
            #expect(try await Self.int("SELECT count(*) FROM tov.selection_state WHERE target_id = $1", [Int32(drop)], on: c) == 1)
            try await c.execute("INSERT INTO tov.validation (target, prompt, response) VALUES ('drop', 'q', 'a'), ('default', 'q', 'a')")
            try await c.execute("INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (16, 2, '{}', 'complete')")
            try await c.execute("""
                INSERT INTO tov.model_versions (base_version, zval_version, method, status, target_id)
                VALUES (1, 1, 'A', 'complete', tov.default_target_id()), (1, 1, 'A', 'complete', $1)
                """, [Int32(drop)])
            // One complete version per target, not one in all.
            await #expect(throws: PQError.self) {
                try await c.execute("INSERT INTO tov.model_versions (base_version, zval_version, method, status, target_id) VALUES (1, 2, 'A', 'complete', $1)", [Int32(drop)])
            }
            try await c.execute("""
                INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens)
                SELECT id, v, 0.1, 1, 0.9, '{1,1}', '{0.9,0.9}', 0, 5 FROM unnest($1::bigint[]) id CROSS JOIN (VALUES (1), (2)) m(v)
                """, [ids])
            for target in [Int32(1), Int32(drop)] {
                try await c.execute("INSERT INTO tov.selection_items (target_id, candidate_id, score, reason, length_bin) VALUES ($1, $2, 0.1, 'score', 0)",
                                    [target, ids[0]])
                try await c.execute("""
                    INSERT INTO tov.selection_history (target_id, selection_version, candidate_id, change, reason, model_version)
                    VALUES ($1, 1, $2, 'in', 'score', $1)
                    """, [target, ids[0]])
            }
            #expect(try await Self.int("SELECT count(*) FROM tov.selections", on: c) == 2)
            #expect(try await Self.int("SELECT count(*) FROM tov.selected", on: c) == 1)
            #expect(try await Self.int("SELECT count(*) FROM tov.target_status", on: c) == 2)

            try await c.execute("DELETE FROM tov.targets WHERE name = 'drop'")
            #expect(try await Self.int("SELECT count(*) FROM tov.validation", on: c) == 1)
            #expect(try await Self.int("SELECT count(*) FROM tov.model_versions", on: c) == 1)
            #expect(try await Self.int("SELECT count(*) FROM tov.scores", on: c) == 4)
            #expect(try await Self.int("SELECT count(*) FROM tov.selection_items", on: c) == 1)
            #expect(try await Self.int("SELECT count(*) FROM tov.selected", on: c) == 1)
            // The dropped target's history stays (an export manifest can be checked against it), and
            // its cascaded selection row says it left.
            #expect(try await Self.int("SELECT count(*) FROM tov.selection_history WHERE target_id = $1 AND change = 'in'", [Int32(drop)], on: c) == 1)
        }
    }

    /// Going down to version 9 refuses while targets other than `default` exist (it would lose them),
    /// and works once they are dropped.
    @Test func downRefusesToLoseTargets() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute("INSERT INTO tov.targets (name) VALUES ('drop')")
            try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('q', 'a')")
            // Down to version 10 first: the migrations after it do not concern targets.
            let above = Migrator().latestVersion - 10
            if above > 0 { #expect(try await Migrator().down(on: c, steps: above).count == above) }
            await #expect(throws: (any Error).self) { try await Migrator().down(on: c) }
            #expect(try await Self.int("SELECT count(*) FROM tov.targets", on: c) == 2)
            try await c.execute("DELETE FROM tov.targets WHERE name = 'drop'")
            #expect(try await Migrator().down(on: c) == [10])
            #expect(try await Self.int("SELECT version FROM tov.zval_version", on: c) == 1)
            #expect(try await Self.int("SELECT count(*) FROM tov.validation", on: c) == 1)
        }
    }
}
