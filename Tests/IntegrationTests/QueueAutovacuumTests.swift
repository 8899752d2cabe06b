import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// Migration 007: the churned queue tables carry autovacuum settings of their own (a fixed
/// threshold, no cost delay), and its down migration gives them back the server's defaults.
@Suite("Queue tables have their own autovacuum settings")
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
}
