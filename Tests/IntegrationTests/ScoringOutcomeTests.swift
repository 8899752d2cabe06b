@testable import Daemon
import Foundation
import PQ
import Surrogate
import Testing
import TovTesting

/// What the worker does with rows and models that cannot be scored normally: rows over
/// `max_text_bytes`, losses that are not finite, a row rejected while a version rescores it, a
/// live version whose checkpoint is corrupt while another is fine.
@Suite("Scoring outcomes", .serialized)
struct ScoringOutcomeTests {
    static let daemonArguments = ["run", "--metrics-port=-1", "--poll-interval", "0.2"]

    /// A tiny pipeline with `rows` candidates, bootstrapped and settled by a daemon that is then
    /// stopped; returns (complete model version, its base version).
    static func settledPipeline(_ c: Connection, conninfo: String, rows: Int = 60) async throws -> (version: Int, base: Int) {
        try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
        try await c.execute("INSERT INTO tov.validation (prompt, response) SELECT 'row prompt', 'row response ' || g FROM generate_series(1, 5) g")
        try await TovTestDatabase.insertCandidates(rows, on: c)
        let daemon = try TovdProcess(daemonArguments, conninfo: conninfo)
        let figures = try await PipelineFigures.settle(on: c)
        #expect(figures.isConsistent, "\(figures)\n\(daemon.log.suffix(2000))")
        daemon.terminate()
        #expect(await daemon.waitForExit() == 0)
        let row = try await c.query("SELECT model_version, base_version FROM tov.model_versions WHERE status = 'complete'").first!
        return (Int(try row.get(Int32.self, 0)), Int(try row.get(Int32.self, 1)))
    }

    // MARK: - Sizes

    @Test func rowsOverMaxTextBytesAreFlaggedByTheClaimAndRejectedWithTheirSizes() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute("UPDATE tov.settings SET value = '1000' WHERE key = 'max_text_bytes'")
            try await TovTestDatabase.insertCandidates(3, on: c)
            let long = try await c.query("""
                INSERT INTO tov.candidates (prompt, response) VALUES ('p', repeat('x', 5000)), (repeat('é', 600), 'r') RETURNING id
                """).map { try $0.get(Int64.self, 0) }

            // The claim measures in SQL and does not fetch what cannot be scored.
            let claimed = try await c.query(Queries.jobClaimMany, [10, 60.0, "probe", "{}", 1000])
            #expect(claimed.count == 5)
            for row in claimed {
                let id = try row.get(Int64.self, "candidate_id")
                let sizes = (Int(try row.get(Int32.self, "prompt_bytes")), Int(try row.get(Int32.self, "response_bytes")))
                let unfetched = (try row.isNull("prompt"), try row.isNull("response"))
                if id == long[0] {
                    #expect(unfetched == (true, true) && sizes == (1, 5000))
                } else if id == long[1] {
                    #expect(unfetched == (true, true) && sizes == (1200, 1))
                } else {
                    #expect(unfetched == (false, false) && sizes.0 < 1000)
                }
            }
            try await c.execute(Queries.jobReleaseMany, [
                try claimed.map { try $0.get(Int64.self, "candidate_id") }, claimed.map { _ in Int32(0) }, claimed.map { _ in Int32(1) },
                claimed.map { _ in Int32(0) },
            ])

            let daemon = try TovdProcess(Self.daemonArguments + ["--no-leader", "--log-level", "debug"], conninfo: conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually { try await TovTestDatabase.count("tov.jobs", on: c) == 0 }, "\(daemon.log.suffix(2000))")
            let rejects = try await c.query("SELECT candidate_id, reason::text, detail FROM tov.rejects ORDER BY candidate_id")
                .map { (try $0.get(Int64.self, 0), try $0.get(String.self, 1), try $0.get(String.self, 2)) }
            #expect(rejects.map(\.0) == long && rejects.allSatisfy { $0.1 == "too_long" })
            #expect(rejects.first?.2 == "response is 5000 bytes, over the limit of 1000 (setting max_text_bytes)")
            #expect(rejects.last?.2 == "prompt is 1200 bytes, over the limit of 1000 (setting max_text_bytes)")
            #expect(try await TovTestDatabase.count("tov.ready", on: c) == 3)
        }
    }

    // MARK: - Non-finite losses

    @Test func nonFiniteLossesAreRecordedNeverStoredAsScores() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let (version, base) = try await Self.settledPipeline(c, conninfo: conninfo)

            // θ_val diverged: its weights are NaN, as a training run that blew up leaves them.
            // Stored with its true hash, as the trainer stores it, so the checkpoint loads.
            var probe: SurrogateCheckpoint?
            for row in try await c.query("SELECT id, data FROM tov.checkpoints WHERE model_version = $1 AND kind = 'val'", [version]) {
                let checkpoint = try SurrogateCheckpoint.decode(try row.get([UInt8].self, 1))
                let diverged = try Model(config: checkpoint.model.config, parameters: checkpoint.model.parameters.map { _ in Float.nan })
                let bytes = SurrogateCheckpoint.encode(model: diverged, tokenizer: checkpoint.tokenizer, metadata: checkpoint.metadata)
                try await c.execute("UPDATE tov.checkpoints SET data = $2, sha256 = $3 WHERE id = $1",
                                    [try row.get(Int64.self, 0), bytes, SHA256.hexDigest(of: Data(bytes))])
                probe = try SurrogateCheckpoint.decode(bytes)
            }
            // The scenario is real: this model's loss on a row is not finite.
            let example = probe!.tokenizer.example(prompt: Array("new prompt".utf8), response: Array("new response".utf8))
            #expect(!probe!.model.losses([example])[0].meanNLL.isFinite)

            let fresh = try await TovTestDatabase.insertCandidates(10, on: c, prefix: "new")
            let daemon = try TovdProcess(Self.daemonArguments, conninfo: conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually {
                let unscorable = try await TovTestDatabase.count("tov.unscorable", on: c)
                let queued = try await TovTestDatabase.count("tov.jobs", on: c)
                return unscorable == 10 && queued == 0
            }, "\(daemon.log.suffix(2000))")
            let idList = fresh.map(String.init).joined(separator: ",")
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "candidate_id IN (\(idList))") == 0)
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "score = 'NaN' OR base_loss = 'NaN' OR val_loss = 'NaN'") == 0)
            #expect(try await TovTestDatabase.count("tov.ready", on: c, where: "candidate_id IN (\(idList))") == 10)
            #expect(try await c.query("SELECT nonfinite_rows FROM tov.model_versions WHERE model_version = $1", [version]).first!.get(Int32.self, 0) == 10)
            let detail = try await c.query("SELECT detail FROM tov.unscorable LIMIT 1").first.map { try $0.get(String.self, 0) } ?? ""
            #expect(detail.contains("not finite") && detail.contains("lr"))
            // Nothing loops: the sweeper's query finds nothing to enqueue again, and the daemon is fine.
            #expect(try await c.execute(Queries.jobEnqueueMissingScores, [version, base]) == 0)
            #expect(daemon.isRunning)
            #expect(try await PipelineFigures.selectionMatchesReference(on: c))
        }
    }

    // MARK: - Rejected during a rescoring

    @Test func aRowRejectedWhileBeingRescoredLeavesReadyScoresAndTheSelection() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let (version, _) = try await Self.settledPipeline(c, conninfo: conninfo)
            let poison = try await c.query("SELECT id FROM tov.selected ORDER BY id LIMIT 1").first!.get(Int64.self, 0)

            // A rescoring job for a selected row that crashed two workers (claimed, never completed).
            try await c.execute("UPDATE tov.settings SET value = '2' WHERE key = 'max_attempts'")
            try await c.execute("INSERT INTO tov.jobs (candidate_id, model_version) VALUES ($1, $2)", [poison, version])
            // Its first try (as if in a batch) and one try alone (counted as the worker counts it).
            for crash in 0..<2 {
                let claimed = try await c.query(Queries.jobClaimMany, [10, 60.0, "crashed-\(crash)", "{}", 1 << 20])
                #expect(claimed.count == 1)
                if crash == 1 {
                    #expect(try await c.query(Queries.jobTryAloneMark, [poison, Int32(version), try claimed.first!.get(Int32.self, "attempts")]).count == 1)
                }
                // The crashed worker's lease runs out (set in the past rather than waited for).
                try await c.execute("UPDATE tov.jobs SET lease_until = now() - interval '1 second' WHERE candidate_id = $1", [poison])
            }

            let daemon = try TovdProcess(Self.daemonArguments, conninfo: conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually {
                try await TovTestDatabase.count("tov.rejects", on: c, where: "candidate_id = \(poison) AND reason = 'repeated_failure'") == 1
            }, "\(daemon.log.suffix(2000))")
            // ready ∩ rejects = ∅, and the selection is recomputed without it.
            let figures = try await PipelineFigures.settle(on: c, timeout: .seconds(30))
            #expect(figures.isConsistent && figures.doubled == 0, "\(figures)\n\(daemon.log.suffix(2000))")
            #expect(try await TovTestDatabase.count("tov.ready", on: c, where: "candidate_id = \(poison)") == 0)
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "candidate_id = \(poison)") == 0)
            #expect(try await TovTestDatabase.count("tov.selected", on: c, where: "id = \(poison)") == 0)
            #expect(try await TovTestDatabase.count("tov.selected", on: c) == 10)
        }
    }

    // MARK: - Corrupt checkpoint of one live version

    @Test func aCorruptVersionWaitsWhileAnotherLiveVersionKeepsScoring() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let (complete, _) = try await Self.settledPipeline(c, conninfo: conninfo)
            // A second live version being rescored, with the same θ_val but epoch 1 corrupted in
            // place (its stored sha256 stays right, the bytes do not).
            let next = Int(try await c.query("""
                INSERT INTO tov.model_versions (base_version, zval_version, method, status)
                SELECT base_version, zval_version, method, 'scoring' FROM tov.model_versions WHERE model_version = $1
                RETURNING model_version
                """, [complete]).first!.get(Int32.self, 0))
            try await c.execute("""
                INSERT INTO tov.checkpoints (base_version, model_version, kind, epoch, data, sha256)
                SELECT base_version, $2, kind, epoch, data, sha256 FROM tov.checkpoints WHERE model_version = $1
                """, [complete, next])
            try await c.execute("""
                UPDATE tov.checkpoints SET data = set_byte(data, length(data) / 2, (get_byte(data, length(data) / 2) + 1) % 256)
                WHERE model_version = $1 AND epoch = 1
                """, [next])

            let fresh = try await TovTestDatabase.insertCandidates(20, on: c, prefix: "new")
            let idList = fresh.map(String.init).joined(separator: ",")
            // No leader: nothing but the worker touches the two versions.
            let daemon = try TovdProcess(Self.daemonArguments + ["--no-leader", "--log-level", "debug"], conninfo: conninfo)
            defer { daemon.terminate() }
            // The complete version keeps scoring; the new rows wait, unclaimed, for the other one.
            #expect(try await TovTestDatabase.eventually {
                let scored = try await TovTestDatabase.count("tov.scores", on: c, where: "model_version = \(complete) AND candidate_id IN (\(idList))")
                let waiting = try await TovTestDatabase.count("tov.jobs", on: c, where: "model_version = \(next) AND attempts = 0")
                return scored == 20 && waiting == 20
            }, "\(daemon.log.suffix(2000))")
            let loadError = try await c.query("SELECT load_error FROM tov.checkpoints WHERE model_version = $1 AND epoch = 1", [next]).first!
                .getOptional(String.self, 0)
            #expect(loadError?.contains("is corrupt") == true)
            // The instance says so where an operator looks (tov.workers), not only in its log.
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) {
                let errors = try await c.query("SELECT last_error FROM tov.workers").map { try $0.getOptional(String.self, "last_error") }
                return errors.contains { $0?.contains("model version \(next) does not load") == true }
            }, "\(daemon.log.suffix(2000))")
            // Reported once, though loading is retried (2 s, 4 s, ...): wait for a retry (it logs "still
            // does not load" at debug level), then count the reports.
            #expect(try await daemon.logGains(1, of: "model version still does not load"), "\(daemon.log.suffix(2000))")
            #expect(daemon.log.components(separatedBy: "model version does not load").count - 1 == 1, "\(daemon.log.suffix(2000))")
            #expect(try await TovTestDatabase.count("tov.jobs", on: c, where: "attempts > 0") == 0)

            // Repaired: the waiting rows are scored under it and the error is cleared.
            try await c.execute("""
                UPDATE tov.checkpoints k SET data = o.data FROM tov.checkpoints o
                WHERE k.model_version = $2 AND o.model_version = $1 AND k.kind = o.kind AND k.epoch = o.epoch
                """, [complete, next])
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(60)) {
                try await TovTestDatabase.count("tov.scores", on: c, where: "model_version = \(next) AND candidate_id IN (\(idList))") == 20
            }, "\(daemon.log.suffix(2000))")
            #expect(try await TovTestDatabase.count("tov.checkpoints", on: c, where: "load_error IS NOT NULL") == 0)
            #expect(try await TovTestDatabase.count("tov.rejects", on: c) == 0)
        }
    }
}
