import Daemon
import Foundation
import PQ

/// Test databases with the tov schema applied, and helpers to fill them.
public enum TovTestDatabase {
    /// Runs `body` with the conninfo of a fresh database migrated to the latest schema; the database
    /// is dropped afterwards.
    public static func withMigrated<T>(_ body: (String) async throws -> T) async throws -> T {
        try await TestDatabase.withFreshDatabase { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            try await Migrator().up(on: connection)
            return try await body(conninfo)
        }
    }

    /// Inserts `count` candidates in one statement; returns their ids in order.
    @discardableResult
    public static func insertCandidates(_ count: Int, on connection: Connection, prefix: String = "row",
                                        source: String = "test") async throws -> [Int64] {
        let rows = try await connection.query("""
            INSERT INTO tov.candidates (prompt, response, source)
            SELECT $1 || ' prompt ' || g, $1 || ' response ' || g, $2 FROM generate_series(1, $3::int) g
            RETURNING id
            """, [prefix, source, count])
        return try rows.map { try $0.get(Int64.self, "id") }
    }

    /// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
    public static func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// `SELECT count(*) FROM <table>` for the fixed table names tests use.
    public static func count(_ table: String, on connection: Connection, where predicate: String = "true") async throws -> Int {
        Int(try await connection.query("SELECT count(*) AS n FROM \(table) WHERE \(predicate)").first!.get(Int64.self, "n"))
    }

    /// Returns once the instance `name` has written its heartbeat twice after the call (its reporter
    /// runs every 2 s): the process is alive and its loops have turned since, so whatever it would
    /// have done by then is visible. False on timeout.
    public static func instanceReportedTwice(_ name: String, on connection: Connection, timeout: Duration = .seconds(30)) async throws -> Bool {
        let since = try await connection.query("SELECT clock_timestamp()::text AS now").first!.get(String.self, "now")
        var seen: String?
        return try await eventually(timeout: timeout) {
            let written = try await connection.query(
                "SELECT max(heartbeat_at)::text AS at FROM tov.instances WHERE instance = $1 AND heartbeat_at > $2::timestamptz",
                [name, since]).first
            guard let at = try written?.getOptional(String.self, "at") else { return false }
            if seen == nil { seen = at }
            return at != seen
        }
    }

    /// Returns once the leader's trainer has taken two decisions after this call (it writes
    /// tov.leader_activity at every decision): the second decision read the database after the first
    /// was written, so it saw everything committed before the call. A test that asserts something did
    /// *not* happen waits for this event instead of sleeping for a guessed time.
    public static func trainerDecidedTwice(on connection: Connection, timeout: Duration = .seconds(30)) async throws -> Bool {
        let since = try await connection.query("SELECT clock_timestamp()::text AS now").first!.get(String.self, "now")
        var seen: String?
        return try await eventually(timeout: timeout) {
            let written = try await connection.query(
                "SELECT updated_at::text AS at FROM tov.leader_activity WHERE updated_at > $1::timestamptz", [since]).first
            guard let at = try written?.get(String.self, "at") else { return false }
            if seen == nil { seen = at }
            return at != seen
        }
    }
}
