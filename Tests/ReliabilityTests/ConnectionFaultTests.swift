import Daemon
import EmbeddedPostgres
import Foundation
import PQ
import Testing
import TovTesting

/// `tovd run` when the database cannot be had: down during a stop, or refusing the login.
@Suite("Reliability: connection faults")
struct ConnectionFaultTests {
    static func migrate(_ conninfo: String) async throws {
        let c = try await Connection.connect(conninfo)
        defer { c.close() }
        try await Migrator().up(on: c)
    }

    /// Reproduces issue 16: PostgreSQL stopped under a running daemon, SIGTERM 2 s later. Every retry
    /// loop must end on the graceful shutdown instead of waiting for the database.
    @Test func sigtermDuringADatabaseOutageStopsWithinSeconds() async throws {
        try await TestDatabase.withPrivateCluster("outage-sigterm") { cluster, conninfo in
            try await Self.migrate(conninfo)
            let daemon = try TovdProcess(["run", "--metrics-port", "0", "--poll-interval", "0.2", "--workers", "2"], conninfo: conninfo)
            defer { daemon.kill() }
            #expect(try await TovTestDatabase.eventually { daemon.log.contains("tovd is ready") }, "\(daemon.log)")
            try await Task.detached { try cluster.stop(mode: .immediate) }.value
            #expect(try await TovTestDatabase.eventually { daemon.log.contains("cannot reach the database; retrying") }, "\(daemon.log.suffix(2000))")
            // Deep in its retry loops. The event: a service's 5th connect attempt is logged (1.5 s of
            // backoff behind it, 1.6 s ahead), so the SIGTERM lands in a backoff's wait.
            #expect(try await TovTestDatabase.eventually { daemon.log.contains("cannot reach the database; retrying attempt=5") },
                    "\(daemon.log.suffix(2000))")
            let sent = ContinuousClock.now
            daemon.terminate()
            let status = await daemon.waitForExit(timeout: .seconds(15))
            let took = ContinuousClock.now - sent
            print("reliability: SIGTERM during a database outage: stopped in \(String(format: "%.2f", Double(took.components.seconds) + Double(took.components.attoseconds) * 1e-18)) s")
            #expect(status == 0, "\(daemon.log.suffix(2000))")
            #expect(took < .seconds(6), "\(daemon.log.suffix(2000))")
        }
    }

    /// A wrong password is not an outage: `tovd run` stops at once with a message that says what to
    /// fix (systemd's restart policy does the retrying), and the password appears nowhere in its output.
    @Test func wrongPasswordStopsTheDaemonWithoutLoggingIt() async throws {
        try await TestDatabase.withPrivateCluster("wrong-password") { cluster, conninfo in
            try await Self.migrate(conninfo)
            try await TestDatabase.requirePassword(role: "tovd_login", password: "right%pass@word", in: cluster, admin: conninfo)
            let wrong = "postgresql://tovd_login:wr%25ong%40secret@/postgres?host=\(cluster.home)&port=\(cluster.port)"
            let daemon = try TovdProcess(["run", "--metrics-port", "0"], conninfo: wrong)
            defer { daemon.kill() }
            let status = await daemon.waitForExit(timeout: .seconds(15))
            #expect(status != nil && status != 0, "\(daemon.log.suffix(2000))")
            #expect(daemon.log.contains("password authentication failed") && daemon.log.contains("retrying will not help"), "\(daemon.log)")
            #expect(!daemon.log.contains("cannot reach the database; retrying"), "\(daemon.log)")
            for fragment in ["wr%25ong", "wr%ong", "secret"] { #expect(!daemon.log.contains(fragment), "\(daemon.log)") }
        }
    }
}
