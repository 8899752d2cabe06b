import EmbeddedPostgres
import Foundation
import PQ

/// The PostgreSQL server integration tests run against.
///
/// `TOVD_TEST_DATABASE_URL` names an existing server (its role must be able to CREATE DATABASE);
/// otherwise one private cluster is started per test process, in a temporary directory with fsync
/// off, and stopped when the process exits. Every test gets a database of its own.
public enum TestDatabase {
    /// Started once per process, on a thread of its own: initdb takes seconds, and blocking Swift's
    /// cooperative pool that long would stall every other test.
    private static let server: Task<String, Error> = Task.detached {
        if let url = ProcessInfo.processInfo.environment["TOVD_TEST_DATABASE_URL"], !url.isEmpty { return url }
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do {
                    let directory = "/var/tmp/tovd-test-\(getpid())-\(UUID().uuidString.prefix(6))"
                    let cluster = LocalCluster(directory: directory)
                    let conninfo = try cluster.start(fast: true)
                    clusterToStop = cluster
                    atexit {
                        try? TestDatabase.clusterToStop?.stop(mode: .immediate)
                        if let dir = TestDatabase.clusterToStop?.directory { try? FileManager.default.removeItem(atPath: dir) }
                    }
                    continuation.resume(returning: conninfo)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
    }

    public static func serverConninfo() async throws -> String { try await server.value }

    nonisolated(unsafe) static var clusterToStop: LocalCluster?

    /// The cluster-wide roles of migration 001, created once before any test migrates, as an
    /// administrator or the first install does in production. Tests migrate dozens of databases of
    /// one fresh cluster at the same moment; racing them all on creating the roles once made a test
    /// fail with "role tov_writer does not exist".
    private static let roles: Task<Void, Error> = Task {
        let admin = try await Connection.connect(try await serverConninfo())
        defer { admin.close() }
        try await admin.simpleQuery("""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tov_writer') THEN CREATE ROLE tov_writer NOLOGIN; END IF;
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tov_reader') THEN CREATE ROLE tov_reader NOLOGIN; END IF;
            END $$
            """)
    }

    /// Runs `body` with a cluster of its own and its conninfo, started for it and stopped and removed
    /// afterwards: for tests that restart the server or need a cluster in its first state (no
    /// roles), which the shared server must not be put through.
    public static func withPrivateCluster<T>(_ name: String, port: Int = 5432,
                                             _ body: (LocalCluster, String) async throws -> T) async throws -> T {
        let directory = "/var/tmp/tovd-\(name)-\(getpid())-\(UUID().uuidString.prefix(6))"
        let cluster = LocalCluster(directory: directory, port: port)
        defer {
            try? cluster.stop(mode: .immediate)
            if cluster.home != cluster.directory { try? FileManager.default.removeItem(atPath: cluster.home) }
            try? FileManager.default.removeItem(atPath: directory)
        }
        let conninfo = try await Task.detached { try cluster.start(fast: true) }.value
        return try await body(cluster, conninfo)
    }

    /// Runs `body` with the conninfo of a new, empty database, dropped afterwards.
    public static func withFreshDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
        let server = try await serverConninfo()
        try await roles.value
        let name = "tovtest_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased())"
        let admin = try await Connection.connect(server)
        defer { admin.close() }
        try await admin.simpleQuery("CREATE DATABASE \(name)")
        let conninfo = server + " dbname=\(name)"
        do {
            let result = try await body(conninfo)
            try? await admin.simpleQuery("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            return result
        } catch {
            try? await admin.simpleQuery("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            throw error
        }
    }
}
