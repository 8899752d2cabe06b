@testable import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// The churned queue tables: migration 008 gives them autovacuum settings of their own (a fixed
/// threshold, no cost delay; its down migration gives them back the server's defaults), and each
/// switch vacuums tov.jobs.
@Suite("Queue tables stay small")
struct QueueAutovacuumTests {
    static func options(on c: Connection) async throws -> [String: [String]] {
        var options: [String: [String]] = [:]
        for row in try await c.query("""
            SELECT relname::text, coalesce(reloptions, '{}') FROM pg_class
            WHERE oid IN ('tov.jobs'::regclass, 'tov.scores_removed'::regclass)
            """) {
            options[try row.get(String.self, 0)] = try row.get([String].self, 1)
        }
        return options
    }

    @Test func upSetsThemAndDownResetsThem() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let migrator = Migrator()
            try await migrator.up(on: c, to: 8)
            let up = try await Self.options(on: c)
            for table in ["jobs", "scores_removed"] {
                #expect(up[table]?.contains("autovacuum_vacuum_scale_factor=0") == true, "\(table): \(up[table] ?? [])")
                #expect(up[table]?.contains("autovacuum_vacuum_cost_delay=0") == true, "\(table): \(up[table] ?? [])")
            }
            #expect(up["jobs"]?.contains("autovacuum_analyze_threshold=1000") == true)
            #expect(try await migrator.down(on: c, steps: 1) == [8])
            #expect(try await Self.options(on: c) == ["jobs": [], "scores_removed": []])
        }
    }

    /// A switch vacuums tov.jobs: a refresh's deleted jobs are gone at once, not at autovacuum's next
    /// visit (issue 24, defect 15). Without the VACUUM, the dead tuples stay and the table's manual
    /// vacuum count does not move.
    @Test func aSwitchVacuumsTheQueue() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            // A complete version and one that has scored every row: the keeper's next step switches.
            // The rows' jobs, scored and deleted, leave dead tuples that only a VACUUM removes.
            try await c.simpleQuery("""
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (0, 1, '{}', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 1, 'A', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 1, 'A', 'scoring');
                INSERT INTO tov.candidates (prompt, response) SELECT 'p' || i, 'r' FROM generate_series(1, 500) i;
                DELETE FROM tov.jobs;
                """)
            func jobStatistics() async throws -> (dead: Int64, vacuums: Int64) {
                let row = try await c.query("SELECT n_dead_tup, vacuum_count FROM pg_stat_user_tables WHERE relid = 'tov.jobs'::regclass").first!
                return (try row.get(Int64.self, "n_dead_tup"), try row.get(Int64.self, "vacuum_count"))
            }
            let before = try await jobStatistics()
            #expect(before.vacuums == 0)

            let (manual, keeper, fence) = try await ServiceClockTests.leadingKeeper(minimumGap: .milliseconds(200), on: c)
            let step = Task { try await keeper.step(fence: fence, on: c) }
            #expect(await manual.waitForSleepers(1))
            manual.advance(by: .milliseconds(200))
            _ = try await step.value

            let status = try await c.query("SELECT status::text AS status FROM tov.model_versions ORDER BY model_version")
                .map { try $0.get(String.self, "status") }
            #expect(status == ["superseded", "complete"], "the step switched")
            let after = try await jobStatistics()
            #expect(after.vacuums == 1 && after.dead == 0, "dead tuples \(after.dead) after the switch (\(before.dead) before)")
        }
    }
}
