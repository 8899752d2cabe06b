@testable import Daemon
import Foundation
import Logging
import PQ
import Surrogate
import Testing
import TovTesting

/// Issue 26, Method A on the worker's side: a new row is scored under every live version of every
/// target, its base losses computed once per base model and shared; φ of each version uses its
/// target's score_fn, read under a lock that a change of that target's settings waits for. A real
/// ScoringWorker with real (small, randomly initialised) checkpoints against PostgreSQL.
@Suite("Scoring worker with several targets")
struct TargetWorkerTests {
    static let epochs = 2

    /// Base model 1 with L = 2 θ_bas checkpoints; targets `default` (global score_fn improvement),
    /// `drop` (its own score_fn abs) and `third` (its own relu), each with a complete version of
    /// its own θ_val on base model 1 (versions 1, 2, 3).
    static func threeTargetsWithCheckpoints(_ c: Connection) async throws {
        try await c.simpleQuery("""
            UPDATE tov.settings SET value = '"improvement"' WHERE key = 'score_fn';
            INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (0, \(epochs), '{}', 'complete');
            INSERT INTO tov.targets (name, settings) VALUES ('drop', '{"score_fn": "abs"}'), ('third', '{"score_fn": "relu"}');
            INSERT INTO tov.model_versions (base_version, zval_version, method, status, target_id)
            SELECT 1, 1, 'A', 'complete', target_id FROM tov.targets ORDER BY target_id;
            """)
        let sample = (0..<40).map { Array("row prompt \($0) row response \($0 * 7)".utf8) }
        let tokenizer = Tokenizer.train(sample: sample, vocabSize: 300)
        let config = ModelConfig(layers: 1, width: 16, heads: 2, context: 32, vocabSize: 300)
        func store(version: Int?, kind: String, epoch: Int, seed: UInt64) async throws {
            let bytes = SurrogateCheckpoint.encode(model: Model(config: config, seed: seed), tokenizer: tokenizer)
            try await c.execute(Queries.checkpointInsert, [1, version.map(Int32.init), kind, epoch, bytes, SHA256.hexDigest(of: Data(bytes))])
        }
        for epoch in 1...epochs {
            try await store(version: nil, kind: "base", epoch: epoch, seed: UInt64(epoch))
            for version in 1...3 { try await store(version: version, kind: "val", epoch: epoch, seed: UInt64(100 * version + epoch)) }
        }
    }

    static func worker(conninfo: String, clock: DaemonClock = .continuous, scoreDelay: Duration? = nil) -> ScoringWorker {
        let metrics = DaemonMetrics()
        var configuration = ScoringWorker.Configuration(conninfo: conninfo, name: "targets")
        configuration.faultScoreDelay = scoreDelay
        return ScoringWorker(configuration: configuration, wakeup: WakeupSignal(),
                             models: ModelCache(logger: Logger(label: "test"), clock: clock), settings: SettingsCache(clock: clock), metrics: metrics,
                             health: HealthState(metrics: metrics), clock: clock, logger: Logger(label: "test"))
    }

    /// Score rows whose φ is not tov.phi of their stored losses under the score_fn their version's
    /// target sees (its own, else the global one).
    static let notUnderItsTargetsFunction = """
        s.score IS DISTINCT FROM tov.phi(s.base_losses, s.val_losses,
            tov.target_setting((SELECT m.target_id FROM tov.model_versions m WHERE m.model_version = s.model_version), 'score_fn') #>> '{}')
        """

    /// 12 new rows, three targets: one base_losses row per row, one score per row per target
    /// version, 12 rows through θ_bas and 36 through θ_val ((1 + K)·L passes per row, not 2K·L),
    /// and each version's φ under its own target's function.
    @Test func aNewRowIsScoredOnceUnderTheBaseAndOncePerTargetVersion() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.threeTargetsWithCheckpoints(c)
            let ids = try await TovTestDatabase.insertCandidates(12, on: c)
            let worker = Self.worker(conninfo: conninfo)
            #expect(try await worker.runOneBatch(on: c) == 12)

            #expect(try await TovTestDatabase.count("tov.ready", on: c) == 12)
            #expect(try await TovTestDatabase.count("tov.jobs", on: c) == 0)
            #expect(try await TovTestDatabase.count("tov.base_losses", on: c, where: "base_version = 1") == 12)
            let perVersion = try await c.query("SELECT model_version, count(*) FROM tov.scores GROUP BY 1 ORDER BY 1")
                .map { "\(try $0.get(Int32.self, 0)):\(try $0.get(Int64.self, 1))" }
            #expect(perVersion == ["1:12", "2:12", "3:12"])
            #expect(worker.forwardRowCounts == ForwardRows(base: 12, val: 36), "base losses computed once per row and base model, θ_val once per version")
            // Every version's score rows carry the one set of base losses stored for the row.
            #expect(try await TovTestDatabase.count("tov.scores s JOIN tov.base_losses b ON b.candidate_id = s.candidate_id AND b.base_version = 1", on: c,
                                                    where: "s.base_losses IS DISTINCT FROM b.losses") == 0)
            #expect(try await TovTestDatabase.count("tov.scores s", on: c, where: Self.notUnderItsTargetsFunction) == 0)
            // On these rows each version's φ differs from what either other function gives, so the
            // check above tells the three functions apart.
            for (version, others) in [(1, ["abs", "relu"]), (2, ["improvement", "relu"]), (3, ["improvement", "abs"])] {
                for other in others {
                    #expect(try await TovTestDatabase.count("tov.scores", on: c, where: """
                        model_version = \(version) AND score <> tov.phi(base_losses, val_losses, '\(other)')
                        """) > 0, "version \(version)'s scores are also \(other)'s")
                }
            }

            // A row that comes later finds its base losses stored and computes none.
            let later = try await TovTestDatabase.insertCandidates(1, on: c, prefix: "later")
            try await c.execute("""
                INSERT INTO tov.base_losses (candidate_id, base_version, losses, uncertainty, tokens)
                SELECT $1, 1, losses, uncertainty, tokens FROM tov.base_losses WHERE candidate_id = $2
                """, [later[0], ids[0]])
            #expect(try await worker.runOneBatch(on: c) == 1)
            #expect(worker.forwardRowCounts == ForwardRows(base: 12, val: 39))
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "candidate_id = \(later[0])") == 3)
        }
    }

    /// A change of a target's own score_fn waits for a worker's transaction that read it (the lock
    /// covers tov.targets, not only tov.settings); afterwards the worker writes the new function.
    @Test func aTargetsScoreFunctionChangeWaitsForTheWorkersCommit() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.threeTargetsWithCheckpoints(c)
            let writer = try await Connection.connect(conninfo)
            defer { writer.close() }
            let admin = try await Connection.connect(conninfo)
            defer { admin.close() }

            try await writer.execute("BEGIN")
            try await writer.query(Queries.scoreFunctionLock)
            let read = try await writer.query(Queries.targetScoreFunctionLockMany, [[Int32(2)]]).map { try $0.getOptional(String.self, "score_fn") }
            #expect(read == ["abs"])
            let change = Task {
                try await admin.execute(#"UPDATE tov.targets SET settings = '{"score_fn": "relu"}' WHERE name = 'drop'"#)
            }
            #expect(try await TovTestDatabase.eventually {
                try await TovTestDatabase.count("pg_stat_activity", on: c,
                                                where: "pid = \(admin.backendPID) AND wait_event_type = 'Lock' AND query LIKE 'UPDATE tov.targets%'") == 1
            }, "the target's settings change did not wait for the worker's transaction")
            try await writer.execute("COMMIT")
            try await change.value

            // The next batch reads the new value.
            try await TovTestDatabase.insertCandidates(4, on: c)
            #expect(try await Self.worker(conninfo: conninfo).runOneBatch(on: c) == 4)
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "model_version = 2") == 4)
            #expect(try await TovTestDatabase.count("tov.scores s", on: c, where: Self.notUnderItsTargetsFunction) == 0)
        }
    }

    /// A Z_val write left uncommitted (a user's open transaction) does not hold the target's row: a
    /// worker locks it at once, so scoring that target goes on while the session stays open.
    @Test func anOpenZvalWriteDoesNotHoldUpScoring() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.threeTargetsWithCheckpoints(c)
            let user = try await Connection.connect(conninfo)
            defer { user.close() }
            try await user.execute("BEGIN")
            try await user.execute("INSERT INTO tov.validation (target, prompt, response) VALUES ('drop', 'q', 'a')")
            let writer = try await Connection.connect(conninfo)
            defer { writer.close() }
            try await writer.execute("BEGIN")
            // Fails with lock_not_available if the lock waits for the user's transaction.
            try await writer.execute("SET LOCAL lock_timeout = '2s'")
            try await writer.query(Queries.scoreFunctionLock)
            let read = try await writer.query(Queries.targetScoreFunctionLockMany, [[Int32(2)]]).map { try $0.getOptional(String.self, "score_fn") }
            #expect(read == ["abs"])
            try await writer.execute("COMMIT")
            try await user.execute("COMMIT")
        }
    }

    /// A target dropped while a batch scores rows for its version: the batch still commits, with
    /// the other targets' scores and the rows' readiness, and writes nothing for the gone version
    /// (its scores would violate their foreign key and fail the whole batch).
    @Test func aTargetDroppedDuringABatchLosesOnlyItsOwnScores() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.threeTargetsWithCheckpoints(c)
            try await TovTestDatabase.insertCandidates(8, on: c)
            let manual = ManualClock()
            let worker = Self.worker(conninfo: conninfo, clock: DaemonClock(manual), scoreDelay: .seconds(1))
            let workerConnection = try await Connection.connect(conninfo)
            defer { workerConnection.close() }
            let batch = Task { try await worker.runOneBatch(on: workerConnection) }
            // Two sleepers: the batch's lease renewal, and the batch itself, claimed and about to score
            // under the versions it loaded (version 2 among them).
            #expect(await manual.waitForSleepers(2), "the batch did not reach its scoring")
            try await c.execute("DELETE FROM tov.targets WHERE name = 'drop'")
            manual.advance(by: .seconds(1))
            #expect(try await batch.value == 8)

            #expect(try await TovTestDatabase.count("tov.ready", on: c) == 8)
            #expect(try await TovTestDatabase.count("tov.jobs", on: c) == 0)
            let perVersion = try await c.query("SELECT model_version, count(*) FROM tov.scores GROUP BY 1 ORDER BY 1")
                .map { "\(try $0.get(Int32.self, 0)):\(try $0.get(Int64.self, 1))" }
            #expect(perVersion == ["1:8", "3:8"])
            #expect(worker.forwardRowCounts == ForwardRows(base: 8, val: 24), "version 2 was scored, then not written")
        }
    }
}
