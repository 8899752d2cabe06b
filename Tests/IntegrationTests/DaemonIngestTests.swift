import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// The daemon as a real child process against a real server: claiming, exactly-once, leases.
@Suite("Daemon ingest", .serialized)
struct DaemonIngestTests {
    /// A migrated database where the pool never reaches |U|: these tests exercise ingest only.
    static func withIngestDatabase(_ body: (String) async throws -> Void) async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            try await c.execute("UPDATE tov.settings SET value = '10000000' WHERE key = 'u_size'")
            c.close()
            try await body(conninfo)
        }
    }

    static func startDaemon(_ conninfo: String, _ extra: [String] = []) throws -> TovdProcess {
        try TovdProcess(["run", "--metrics-port", "0", "--poll-interval", "0.2", "--log-level", "debug"] + extra, conninfo: conninfo)
    }

    /// Rows that reached a final state (ready or rejected) and rows still queued.
    static func progress(_ connection: Connection) async throws -> (done: Int, queued: Int) {
        let done = try await TovTestDatabase.count("tov.ready", on: connection) + TovTestDatabase.count("tov.rejects", on: connection)
        return (done, try await TovTestDatabase.count("tov.jobs", on: connection))
    }

    /// Sum of a counter over the /metrics of the given daemons.
    static func metric(_ name: String, _ daemons: [TovdProcess]) async -> Double {
        var total = 0.0
        for daemon in daemons { total += await daemon.metric(name) ?? 0 }
        return total
    }

    @Test func twoDaemonsProcessEveryRowExactlyOnce() async throws {
        try await Self.withIngestDatabase { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            let daemons = [try Self.startDaemon(conninfo, ["--batch-size", "50"]), try Self.startDaemon(conninfo, ["--batch-size", "50"])]
            defer { daemons.forEach { $0.terminate() } }
            // Inserted while the daemons run, by four concurrent writers.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        let c = try await Connection.connect(conninfo)
                        defer { c.close() }
                        for _ in 0..<25 { try await TovTestDatabase.insertCandidates(50, on: c, prefix: "w\(writer)") }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(60)) { try await Self.progress(connection) == (5000, 0) })
            let ready = try await TovTestDatabase.count("tov.ready", on: connection)
            #expect(ready == 5000)
            // Each row was completed by exactly one worker: the daemons' counters add up to the pool.
            #expect(await Self.metric("tovd_rows_processed_total", daemons) == 5000)
            #expect(await Self.metric("tovd_leases_lost_total", daemons) == 0)
            for daemon in daemons { daemon.terminate() }
            for daemon in daemons { #expect(await daemon.waitForExit() == 0, "\(daemon.log.suffix(2000))") }
        }
    }

    @Test func uncommittedRowsWaitAndOutOfOrderCommitsAreProcessed() async throws {
        try await Self.withIngestDatabase { conninfo in
            let connection = try await Connection.connect(conninfo)
            let open = try await Connection.connect(conninfo)
            defer { connection.close(); open.close() }
            let daemon = try Self.startDaemon(conninfo)
            defer { daemon.terminate() }
            // `open` takes the lower id and commits last.
            try await open.execute("BEGIN")
            let early = try await open.query("INSERT INTO tov.candidates (prompt, response) VALUES ('early', 'id') RETURNING id").first!.get(Int64.self, 0)
            let late = try await TovTestDatabase.insertCandidates(1, on: connection)[0]
            #expect(early < late)
            #expect(try await TovTestDatabase.eventually { try await TovTestDatabase.count("tov.ready", on: connection) == 1 })
            // The event: a row committed later still is processed, so the worker has claimed since;
            // the uncommitted row was not among its claims.
            try await TovTestDatabase.insertCandidates(1, on: connection)
            #expect(try await TovTestDatabase.eventually { try await TovTestDatabase.count("tov.ready", on: connection) == 2 })
            #expect(try await TovTestDatabase.count("tov.ready", on: connection, where: "candidate_id = \(early)") == 0)
            try await open.execute("COMMIT")
            #expect(try await TovTestDatabase.eventually { try await TovTestDatabase.count("tov.ready", on: connection) == 3 })
        }
    }

    @Test func badRowsAreRejectedAndTheRestOfTheBatchIsProcessed() async throws {
        try await Self.withIngestDatabase { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            try await connection.execute("UPDATE tov.settings SET value = '1000' WHERE key = 'max_text_bytes'")
            try await TovTestDatabase.insertCandidates(20, on: connection)
            try await connection.execute("""
                INSERT INTO tov.candidates (prompt, response) VALUES
                  ('', 'empty prompt'), ('prompt', '   '), ('long', repeat('x', 5000)), ('binary', E'\\x01\\x02\\x03\\x04'),
                  ('ten megabytes', repeat('y', 10000000))
                """)
            try await TovTestDatabase.insertCandidates(20, on: connection)
            let daemon = try Self.startDaemon(conninfo, ["--batch-size", "100"])
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually { try await Self.progress(connection) == (45, 0) })
            let reasons = try await connection.query("SELECT reason::text FROM tov.rejects ORDER BY candidate_id").map { try $0.get(String.self, 0) }
            #expect(reasons == ["empty_prompt", "empty_response", "too_long", "binary_content", "too_long"])
            #expect(try await TovTestDatabase.count("tov.ready", on: connection) == 40)
        }
    }

    @Test func pollingAloneProcessesRowsWhenListenIsOff() async throws {
        try await Self.withIngestDatabase { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            let daemon = try Self.startDaemon(conninfo, ["--no-listen"])
            defer { daemon.terminate() }
            // Rows inserted once it runs (the event: it says it is ready) reach it by polling alone.
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) { daemon.log.contains("tovd is ready") }, "\(daemon.log)")
            try await TovTestDatabase.insertCandidates(10, on: connection)
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) { try await Self.progress(connection) == (10, 0) })
        }
    }

    @Test func sigkillMidBatchLosesNothing() async throws {
        try await Self.withIngestDatabase { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            try await TovTestDatabase.insertCandidates(3000, on: connection)
            // Short leases so the killed daemon's claims expire quickly.
            for _ in 0..<5 {
                let victim = try Self.startDaemon(conninfo, ["--batch-size", "200", "--lease-seconds", "1"])
                // Chaos schedule (a random moment to kill), not a wait for an event.
                try await Task.sleep(for: .milliseconds(Int.random(in: 150...500)))
                victim.kill()
                _ = await victim.waitForExit()
            }
            let survivor = try Self.startDaemon(conninfo, ["--batch-size", "200", "--lease-seconds", "1"])
            defer { survivor.terminate() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(60)) { try await Self.progress(connection) == (3000, 0) })
            #expect(try await TovTestDatabase.count("tov.ready", on: connection) == 3000)
        }
    }

    @Test func sigtermExitsZeroAndReleasesLocks() async throws {
        try await Self.withIngestDatabase { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            let daemon = try Self.startDaemon(conninfo)
            #expect(try await TovTestDatabase.eventually { daemon.log.contains("tovd is ready") })
            daemon.terminate()
            #expect(await daemon.waitForExit(timeout: .seconds(20)) == 0, "\(daemon.log.suffix(2000))")
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(5)) {
                try await TovTestDatabase.count("pg_locks", on: connection, where: "locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") == 0
            })
        }
    }
}
