@testable import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// Claims (fencing, poison rows) and who may do what (roles, a daemon without superuser).
@Suite("Reliability: claims and roles", .serialized)
struct ClaimsAndRolesTests {
    static func claim(_ c: Connection, worker: String, leaseSeconds: Double) async throws -> [(id: Int64, attempts: Int32)] {
        try await c.query(Queries.jobClaimMany, [100, leaseSeconds, worker, "{}", 1 << 20]).map { (try $0.get(Int64.self, "candidate_id"), try $0.get(Int32.self, "attempts")) }
    }

    static func complete(_ c: Connection, _ jobs: [(id: Int64, attempts: Int32)]) async throws -> Int {
        try await c.query(Queries.jobCompleteMany, [jobs.map(\.id), jobs.map { _ in Int32(0) }, jobs.map(\.attempts)]).count
    }

    // MARK: - 6. Fencing and poison rows

    @Test func aStaleWorkerCannotOverwriteANewerClaim() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let stale = try await Connection.connect(conninfo)
            let fresh = try await Connection.connect(conninfo)
            defer { stale.close(); fresh.close() }
            try await stale.execute("UPDATE tov.settings SET value = '10000000' WHERE key = 'u_size'")
            try await TovTestDatabase.insertCandidates(3, on: stale)
            let first = try await Self.claim(stale, worker: "stale", leaseSeconds: 1)
            #expect(first.count == 3 && first.allSatisfy { $0.attempts == 1 })
            // While the lease holds nobody else gets the rows.
            #expect(try await Self.claim(fresh, worker: "fresh", leaseSeconds: 60).isEmpty)
            // The lease runs out (database clock: the event is its lease_until passing); another worker takes the rows over.
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) {
                try await TovTestDatabase.count("tov.jobs", on: fresh, where: "lease_until <= now()") == 3
            })
            // Rows being retried come one per claim.
            var second: [(id: Int64, attempts: Int32)] = []
            for _ in 0..<3 {
                let claimed = try await Self.claim(fresh, worker: "fresh", leaseSeconds: 60)
                #expect(claimed.count == 1)
                second += claimed
            }
            #expect(second.count == 3 && second.allSatisfy { $0.attempts == 2 })
            // The stale worker finishes late: its completion matches nothing, so it writes nothing.
            #expect(try await Self.complete(stale, first) == 0)
            #expect(try await Self.complete(fresh, second) == 3)
            #expect(try await TovTestDatabase.count("tov.jobs", on: stale) == 0)
        }
    }

    /// `max_attempts` bounds the tries that failed: the batch's, then each try alone. A row whose
    /// claims were only ever killed in a batch (a kill from outside, while other rows were scored) has
    /// had one try however many claims it had, and is scored.
    @Test func aPoisonRowIsRetriedAtMostMaxAttemptsThenRejected() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute("UPDATE tov.settings SET value = '10000000' WHERE key = 'u_size'")
            try await c.execute("UPDATE tov.settings SET value = '2' WHERE key = 'max_attempts'")
            let poison = try await TovTestDatabase.insertCandidates(1, on: c, prefix: "poison")[0]
            // Its batch crashed (claimed, never completed), then it crashed alone: a worker claimed it,
            // counted the try alone as the worker does just before scoring, and never completed.
            for crash in 0..<2 {
                let claimed = try await Self.claim(c, worker: "crashed-\(crash)", leaseSeconds: 60)
                #expect(claimed.count == 1)
                if crash == 1 {
                    #expect(try await c.query(Queries.jobTryAloneMark, [poison, Int32(0), claimed[0].attempts]).count == 1)
                }
                // The crashed worker's lease runs out (set in the past rather than waited for).
                try await c.execute("UPDATE tov.jobs SET lease_until = now() - interval '1 second'")
            }
            // Claimed five times by processes killed while they scored other rows: never tried alone.
            let bystander = try await TovTestDatabase.insertCandidates(1, on: c, prefix: "bystander")[0]
            try await c.execute("UPDATE tov.jobs SET attempts = 5, lease_until = now() - interval '1 second' WHERE candidate_id = $1", [bystander])
            try await TovTestDatabase.insertCandidates(20, on: c)
            let daemon = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2"], conninfo: conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually {
                let ready = try await TovTestDatabase.count("tov.ready", on: c)
                let queued = try await TovTestDatabase.count("tov.jobs", on: c)
                return ready == 21 && queued == 0
            })
            let rejects = try await c.query("SELECT candidate_id, reason::text, attempts FROM tov.rejects")
            #expect(rejects.count == 1)
            #expect(try rejects.first?.get(Int64.self, "candidate_id") == poison)
            #expect(try rejects.first?.get(String.self, "reason") == "repeated_failure")
            #expect(try rejects.first?.get(Int32.self, "attempts") == 2, "two tries failed: its batch's and one alone")
            #expect(try await TovTestDatabase.count("tov.ready", on: c, where: "candidate_id = \(bystander)") == 1)
        }
    }

    // MARK: - Roles

    /// A login role that is a member of `group`, created once per cluster (roles are cluster-wide).
    static func loginRole(_ name: String, in group: String?, on admin: Connection) async throws {
        try await admin.simpleQuery("""
            DO $$ BEGIN
              CREATE ROLE \(name) LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$;
            """)
        if let group { try await admin.simpleQuery("GRANT \(group) TO \(name)") }
    }

    /// Runs `sql` and returns the SQLSTATE it failed with, or nil when it succeeded.
    static func failure(_ sql: String, on c: Connection) async -> String? {
        do {
            try await c.simpleQuery(sql)
            return nil
        } catch let error as PQError {
            return error.sqlState?.rawValue ?? "?"
        } catch {
            return "?"
        }
    }

    @Test func writerAndReaderCanDoOnlyWhatTheirRoleAllows() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let admin = try await Connection.connect(conninfo)
            defer { admin.close() }
            try await Self.loginRole("tovtest_etl", in: "tov_writer", on: admin)
            try await Self.loginRole("tovtest_trainer", in: "tov_reader", on: admin)
            try await TovTestDatabase.insertCandidates(5, on: admin)

            let writer = try await Connection.connect(conninfo + " user=tovtest_etl")
            defer { writer.close() }
            #expect(await Self.failure("INSERT INTO tov.candidates (prompt, response) VALUES ('p', 'r')", on: writer) == nil)
            #expect(await Self.failure("INSERT INTO tov.validation (prompt, response) VALUES ('p', 'r')", on: writer) == nil)
            let writerForbidden = [
                "SELECT * FROM tov.candidates",
                "UPDATE tov.candidates SET prompt = 'x'",
                "DELETE FROM tov.candidates",
                "TRUNCATE tov.candidates",
                "DELETE FROM tov.validation",
                "SELECT * FROM tov.selected",
                "SELECT * FROM tov.scores",
                "UPDATE tov.settings SET value = '1' WHERE key = 'bins'",
                "INSERT INTO tov.jobs (candidate_id) VALUES (1)",
                "DELETE FROM tov.jobs",
                "INSERT INTO tov.rejects (candidate_id, reason, detail) VALUES (1, 'empty_prompt', 'x')",
                "UPDATE tov.model_versions SET status = 'failed'",
                "CREATE TABLE tov.sneaky (x int)",
            ]
            for sql in writerForbidden {
                #expect(await Self.failure(sql, on: writer) == "42501", "tov_writer could run: \(sql)")
            }

            let reader = try await Connection.connect(conninfo + " user=tovtest_trainer")
            defer { reader.close() }
            #expect(await Self.failure("SELECT * FROM tov.selected", on: reader) == nil)
            #expect(await Self.failure("SELECT * FROM tov.status", on: reader) == nil)
            let readerForbidden = [
                "SELECT * FROM tov.candidates",
                "SELECT * FROM tov.scores",
                "SELECT * FROM tov.score_details",
                "SELECT * FROM tov.checkpoints",
                "INSERT INTO tov.candidates (prompt, response) VALUES ('p', 'r')",
                "INSERT INTO tov.validation (prompt, response) VALUES ('p', 'r')",
                "UPDATE tov.settings SET value = '1' WHERE key = 'bins'",
                "DELETE FROM tov.selection_items",
                "UPDATE tov.selection_state SET selection_version = 0",
                "CREATE TABLE tov.sneaky (x int)",
            ]
            for sql in readerForbidden {
                #expect(await Self.failure(sql, on: reader) == "42501", "tov_reader could run: \(sql)")
            }
            // The writer's rows were enqueued by the SECURITY DEFINER trigger despite no rights on tov.jobs.
            #expect(try await TovTestDatabase.count("tov.jobs", on: admin) == 6)
        }
    }

    @Test func theDaemonRunsWithoutSuperuser() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let admin = try await Connection.connect(conninfo)
            defer { admin.close() }
            try await Self.loginRole("tovtest_daemon", in: nil, on: admin)
            // What docs/operations.md asks an administrator to do, and nothing more. The group roles
            // are cluster-wide; a role without CREATEROLE needs them to exist already.
            let database = try await admin.query("SELECT current_database()").first!.get(String.self, 0)
            try await admin.simpleQuery("GRANT CREATE ON DATABASE \(database) TO tovtest_daemon")
            try await admin.simpleQuery("""
                DO $$ BEGIN CREATE ROLE tov_writer NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
                DO $$ BEGIN CREATE ROLE tov_reader NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
                """)

            let owner = conninfo + " user=tovtest_daemon"
            let c = try await Connection.connect(owner)
            defer { c.close() }
            #expect(try await c.query("SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user").first!.get(Bool.self, 0) == false)
            try await Migrator().up(on: c)
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 32, budgetRows: 10, bins: 2))
            try await c.execute("INSERT INTO tov.validation (prompt, response) SELECT 'row prompt', 'row response ' || g FROM generate_series(1, 5) g")
            try await TovTestDatabase.insertCandidates(200, on: c)
            let daemon = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2"], conninfo: owner)
            defer { daemon.terminate() }
            let figures = try await PipelineFigures.settle(on: c, timeout: .seconds(120))
            #expect(figures.isConsistent, "\(figures)\n\(daemon.log.suffix(2000))")
            #expect(figures.scored == 200 - 32)
            daemon.terminate()
            #expect(await daemon.waitForExit() == 0)
        }
    }
}

/// Bad state in the database itself: a corrupted checkpoint row.
@Suite("Reliability: corrupted checkpoints", .serialized)
struct CorruptedCheckpointTests {
    @Test func aCorruptCheckpointNeverCrashesTheDaemonNorChargesRows() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
            try await c.execute("INSERT INTO tov.validation (prompt, response) SELECT 'row prompt', 'row response ' || g FROM generate_series(1, 5) g")
            try await TovTestDatabase.insertCandidates(60, on: c)
            let first = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2"], conninfo: conninfo)
            #expect(try await PipelineFigures.settle(on: c).isConsistent)
            first.terminate()
            #expect(await first.waitForExit() == 0)

            // Flip one byte in the middle of a θ_val checkpoint; keep the original to repair it later.
            let id = try await c.query("SELECT id FROM tov.checkpoints WHERE kind = 'val' ORDER BY id LIMIT 1").first!.get(Int64.self, 0)
            try await c.execute("CREATE TABLE checkpoint_backup AS SELECT id, data FROM tov.checkpoints WHERE id = $1", [id])
            try await c.execute("""
                UPDATE tov.checkpoints SET data = set_byte(data, length(data) / 2, (get_byte(data, length(data) / 2) + 1) % 256) WHERE id = $1
                """, [id])
            try await TovTestDatabase.insertCandidates(40, on: c)
            let second = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2"], conninfo: conninfo)
            defer { second.terminate() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(20)) { second.log.contains("is corrupt") })
            // The worker goes on with the rows it can process: the 40 new rows are validated (the
            // event), and none of the rows waiting for the broken version was charged meanwhile.
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(30)) { try await TovTestDatabase.count("tov.ready", on: c) == 100 },
                    "\(second.log.suffix(2000))")
            #expect(second.isRunning)
            // No row was charged for the version that could not load: none waits for a retry (jobs
            // in flight, of new rows or of a version the trainer made meanwhile, hold a live lease),
            // nothing rejected.
            #expect(try await TovTestDatabase.count("tov.jobs", on: c, where: "attempts > 0 AND (lease_until IS NULL OR lease_until <= now())") == 0)
            #expect(try await TovTestDatabase.count("tov.rejects", on: c) == 0)

            // Repaired (here: restored; in production the leader retrains), scoring resumes by itself.
            try await c.execute("UPDATE tov.checkpoints k SET data = b.data FROM checkpoint_backup b WHERE k.id = b.id")
            let figures = try await PipelineFigures.settle(on: c)
            #expect(figures.isConsistent, "\(figures)\n\(second.log.suffix(2000))")
            #expect(figures.candidates == 100 && figures.rejected == 0)
        }
    }
}
