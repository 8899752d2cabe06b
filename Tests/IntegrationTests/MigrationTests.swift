import Daemon
import Foundation
import PQ
import Testing
import TovTesting

@Suite("Migrations against a real server")
struct MigrationTests {
    @Test func upDownUpRoundTrip() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            let migrator = Migrator()
            #expect(try await migrator.currentVersion(on: connection) == 0)
            #expect(try await migrator.up(on: connection) == Array(1...migrator.latestVersion))
            try await migrator.validate(on: connection)
            #expect(try await migrator.up(on: connection).isEmpty)

            try await TovTestDatabase.insertCandidates(3, on: connection)
            #expect(try await migrator.down(on: connection, steps: migrator.latestVersion).count == migrator.latestVersion)
            #expect(try await migrator.currentVersion(on: connection) == 0)
            let schema = try await connection.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'tov'")
            #expect(try schema.first!.get(Int64.self, 0) == 0)

            try await migrator.up(on: connection)
            try await migrator.validate(on: connection)
            #expect(try await TovTestDatabase.count("tov.candidates", on: connection) == 0)
            #expect(try await migrator.list(on: connection).allSatisfy { $0.appliedAt != nil })
        }
    }

    @Test func concurrentUpAppliesEachMigrationOnce() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        let connection = try await Connection.connect(conninfo)
                        defer { connection.close() }
                        return try await Migrator().up(on: connection)
                    }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(applied.sorted() == Array(1...Migrator().latestVersion))
        }
    }

    /// A cluster without the roles and several databases installed at the same moment, as on a
    /// first deployment of several tenants: every install succeeds. (The shared test cluster has the
    /// roles made up front, so this runs on a cluster of its own.)
    @Test func firstInstallsOfSeveralDatabasesAtOnce() async throws {
        try await TestDatabase.withPrivateCluster("roles", port: 5434) { _, conninfo in
            let admin = try await Connection.connect(conninfo)
            defer { admin.close() }
            let names = (0..<6).map { "install\($0)" }
            for name in names { try await admin.simpleQuery("CREATE DATABASE \(name)") }
            let applied = try await withThrowingTaskGroup(of: Int.self) { group in
                for name in names {
                    group.addTask {
                        let connection = try await Connection.connect(conninfo + " dbname=\(name)")
                        defer { connection.close() }
                        return try await Migrator().up(on: connection).count
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(applied == names.count * Migrator().latestVersion)
            let roles = try await admin.query("SELECT count(*) FROM pg_roles WHERE rolname IN ('tov_writer', 'tov_reader')")
            #expect(try roles.first!.get(Int64.self, 0) == 2)
        }
    }

    @Test func newerSchemaIsRefused() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            try await connection.execute("INSERT INTO tov_migrate.versions (version, name) VALUES (999, 'from_the_future')")
            await #expect(throws: DaemonError.self) { try await Migrator().validate(on: connection) }
            await #expect(throws: DaemonError.self) { try await Migrator().up(on: connection) }

            // The daemon itself refuses with a clear message and exit status 3.
            let daemon = try TovdProcess(["run", "--metrics-port=-1"], conninfo: conninfo)
            let status = await daemon.waitForExit(timeout: .seconds(30))
            #expect(status == 3)
            #expect(daemon.log.contains("newer than this tovd knows"))
        }
    }

    /// Schema 15 measures a version's Z_val signal after its switch: a version made before it was
    /// measured at its refresh and must not be measured again (nor block anything), one made after
    /// starts pending, and the down migration drops the record and nothing else.
    @Test func versionsMadeBeforeTheSignalMovedCountAsMeasured() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let version = try #require(Migration.all.first { $0.name == "zval_signal_after_switch" }?.version)
            let migrator = Migrator()
            try await migrator.up(on: c, to: version - 1)
            try await c.simpleQuery("""
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (16, 2, '{}', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status, trained_at, zval_agreement)
                VALUES (1, 1, 'A', 'complete', now(), 0.8), (1, 1, 'A', 'failed', NULL, NULL);
                """)
            try await migrator.up(on: c, to: version)
            try await c.execute("INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 2, 'A', 'training')")
            let measured = try await c.query("SELECT zval_signal_measured_at IS NOT NULL AS m FROM tov.model_versions ORDER BY model_version")
                .map { try $0.get(Bool.self, "m") }
            #expect(measured == [true, true, false])
            #expect(try await migrator.down(on: c, steps: 1) == [version])
            let agreements = try await c.query("SELECT zval_agreement FROM tov.model_versions ORDER BY model_version")
                .map { try $0.getOptional(Double.self, "zval_agreement") }
            #expect(agreements == [0.8, nil, nil])
        }
    }

    /// Schema 16 stores checkpoint bytes uncompressed (they are LZ4 frames already); its down migration
    /// puts PostgreSQL's default storage back.
    @Test func checkpointBytesAreStoredUncompressed() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let version = try #require(Migration.all.first { $0.name == "checkpoint_storage" }?.version)
            let migrator = Migrator()
            func storage() async throws -> [String] {
                try await c.query("""
                    SELECT attstorage::text AS storage FROM pg_attribute
                    WHERE attrelid IN ('tov.checkpoints'::regclass, 'tov.theta0s'::regclass) AND attname = 'data'
                    ORDER BY attrelid::regclass::text
                    """).map { try $0.get(String.self, "storage") }
            }
            try await migrator.up(on: c, to: version)
            #expect(try await storage() == ["e", "e"])
            #expect(try await migrator.down(on: c, steps: 1) == [version])
            #expect(try await storage() == ["x", "x"])
        }
    }

    /// The Z_val signal's verdict (tov.zval_signal), one definition for both status views: each band's
    /// edge, a Z_val of one context, and nothing measured.
    @Test func theZvalSignalsVerdict() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            let cases: [(Double?, Double?, Int32?, String?)] = [
                (0.9, 0.95, 30, "good"), (0.7, 0.85, 30, "good"), (0.69, 0.95, 30, "fair"), (0.9, 0.84, 30, "fair"),
                (0.49, 0.95, 30, "low"), (0.9, 0.69, 30, "low"), (nil, nil, 1, "low"), (nil, nil, nil, nil), (0.9, nil, 12, nil),
            ]
            for (transfer, helped, groups, expected) in cases {
                let verdict = try await connection.query("SELECT tov.zval_signal($1::float8, $2::float8, $3::int) AS v", [transfer, helped, groups])
                    .first!.getOptional(String.self, "v")
                #expect(verdict == expected, "transfer \(String(describing: transfer)), helped \(String(describing: helped)), groups \(String(describing: groups))")
            }
        }
    }

    @Test func settingsAreCheckedByTheDatabase() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            for (key, value) in [("bins", "\"ten\""), ("budget", "{\"fraction\": 2}"), ("budget", "{\"rows\": -1}"),
                                 ("policy", "\"best\""), ("no_such_key", "1"), ("epochs", "0"), ("score_fn", "3")] {
                await #expect(throws: PQError.self, "\(key)=\(value) must be refused") {
                    try await connection.execute("""
                        INSERT INTO tov.settings (key, value) VALUES ($1, $2::jsonb)
                        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
                        """, [key, value])
                }
            }
            try await connection.execute("UPDATE tov.settings SET value = '{\"rows\": 100}' WHERE key = 'budget'")
        }
    }
}
