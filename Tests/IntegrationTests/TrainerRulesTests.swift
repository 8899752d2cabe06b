@testable import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// The trainer's rules against a real database: what the store reads into a snapshot, what its writes
/// leave behind, and the real daemon acting on them. Each test fails without the fix it names (issue
/// "The daemon's core, rebuilt to be read", defects 1, 2, 4, 5, 6, 14).
@Suite("Trainer rules in PostgreSQL", .serialized)
struct TrainerRulesTests {
    static let daemonArguments = ScoringOutcomeTests.daemonArguments

    // MARK: - Defect 1: lowering max_text_bytes never deletes scored rows

    @Test func loweringMaxTextBytesKeepsEveryScoredRowAndRescoresIt() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            // Rows of ~300 bytes among short ones, all scored under the first version.
            try await c.execute("""
                INSERT INTO tov.candidates (prompt, response) SELECT 'long prompt ' || g, repeat('long response ', 20) || g
                FROM generate_series(1, 20) g
                """)
            let (first, _) = try await ScoringOutcomeTests.settledPipeline(c, conninfo: conninfo)
            let readyBefore = try await TovTestDatabase.count("tov.ready", on: c)
            let longScored = try await TovTestDatabase.count("tov.scores s JOIN tov.candidates x ON x.id = s.candidate_id", on: c,
                                                             where: "s.model_version = \(first) AND octet_length(x.response) > 100")
            #expect(longScored > 0)

            // The limit goes below those rows, then a refresh rescores the pool.
            try await c.execute("UPDATE tov.settings SET value = '100' WHERE key = 'max_text_bytes'")
            try await c.execute("INSERT INTO tov.training_requests (kind) VALUES ('refresh')")
            let daemon = try TovdProcess(Self.daemonArguments, conninfo: conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually {
                try await TovTestDatabase.count("tov.model_versions", on: c, where: "status = 'complete' AND model_version > \(first)") == 1
            }, "\(daemon.log.suffix(2000))")
            let figures = try await PipelineFigures.settle(on: c)
            #expect(figures.isConsistent, "\(figures)")
            #expect(try await TovTestDatabase.count("tov.rejects", on: c) == 0)
            #expect(try await TovTestDatabase.count("tov.ready", on: c) == readyBefore)
            // The long rows are scored under the new version too (the old version's scores go with it,
            // as at every switch).
            #expect(try await TovTestDatabase.count("tov.scores s JOIN tov.candidates x ON x.id = s.candidate_id", on: c,
                                                    where: "s.model_version > \(first) AND octet_length(x.response) > 100") == longScored)
            // A new row over the limit is still refused at the pool's entry.
            try await c.execute("INSERT INTO tov.candidates (prompt, response) VALUES ('new', repeat('x', 500))")
            #expect(try await TovTestDatabase.eventually {
                try await TovTestDatabase.count("tov.rejects", on: c, where: "reason = 'too_long'") == 1
            })
        }
    }

    // MARK: - Defect 2: a missing checkpoint row is retrained

    @Test func aDeletedCheckpointRowOfTheLiveVersionIsRetrained() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let (first, _) = try await ScoringOutcomeTests.settledPipeline(c, conninfo: conninfo)
            try await c.execute("DELETE FROM tov.checkpoints WHERE model_version = $1 AND kind = 'val' AND epoch = 2", [first])
            // The snapshot sees it, though no worker could mark a row that is not there.
            let snapshot = try await TrainingStore.snapshot(settings: try await SettingsCache.load(on: c), memoryProblem: nil, on: c)
            #expect(snapshot.broken == [.init(owner: .version(first, target: 1, scoring: false), problem: "1 of 2 checkpoints missing")])
            #expect(snapshot.targets.map(\.currentInputsServed) == [false])

            let daemon = try TovdProcess(Self.daemonArguments, conninfo: conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually {
                try await TovTestDatabase.count("tov.model_versions", on: c, where: "status = 'complete' AND model_version > \(first)") == 1
            }, "\(daemon.log.suffix(2000))")
            let reason = try await c.query("SELECT reason FROM tov.model_versions WHERE status = 'complete'").first!.get(String.self, "reason")
            #expect(reason == "checkpoint of model version \(first) unreadable")
            #expect(try await PipelineFigures.settle(on: c).isConsistent)
            // And only one version: once replaced, the broken one asks for nothing more.
            #expect(try await TovTestDatabase.trainerDecidedTwice(on: c))
            #expect(try await TovTestDatabase.count("tov.model_versions", on: c, where: "model_version > \(first)") == 1)
        }
    }

    // MARK: - Defects 4 and 5: requests coalesce and survive a leader's death

    @Test func requestsAreServedWhenTheirWorkCompletesNotWhenItStarts() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let settings = try await SettingsCache.load(on: c)
            for _ in 0..<3 { try await c.execute("INSERT INTO tov.training_requests (kind) VALUES ('refresh')") }
            let pending = try await TrainingStore.snapshot(settings: settings, memoryProblem: nil, on: c).pendingRequests
            #expect(pending.count == 3 && pending.allSatisfy { $0.kind == .refresh })
            let ids = pending.map(\.id)

            // A leader starts a version for all three, then dies mid-training.
            let base = try await c.transaction { tx in
                try await TrainingStore.baseModelCreate(.init(uSize: 16, epochs: 1, config: BaseModelConfig(settings: settings),
                                                              reason: "test", seed: "1"), on: tx)
            }
            _ = try await c.transaction { tx in
                try await TrainingStore.requestsStart(ids, on: tx)
                return try await TrainingStore.modelVersionCreate(.init(target: 1, base: base, zvalVersion: 0, method: "A", valLearningRateRatio: 0.1,
                                                                         reason: "tovd refresh", leader: "dead"), on: tx)
            }
            let failed = try await c.transaction { tx in try await TrainingStore.trainingInterruptedFailMany(on: tx) }
            #expect(failed.bases == 1 && failed.versions == 1)
            // Still pending for the next leader; started_at says work began.
            let after = try await TrainingStore.snapshot(settings: settings, memoryProblem: nil, on: c).pendingRequests
            #expect(after.map(\.id) == ids)
            #expect(try await TovTestDatabase.count("tov.training_requests", on: c, where: "started_at IS NOT NULL") == 3)

            // Served once, all three by one piece of work.
            try await c.transaction { tx in try await TrainingStore.requestsServe(ids, by: "model version 9", on: tx) }
            #expect(try await TrainingStore.snapshot(settings: settings, memoryProblem: nil, on: c).pendingRequests.isEmpty)
            #expect(try await TovTestDatabase.count("tov.training_requests", on: c, where: "served_by = 'model version 9'") == 3)
        }
    }

    // MARK: - Defect 14: claims are first in, first out

    @Test func rescoringJobsAreNotStarvedByNewerRows() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let old = try await TovTestDatabase.insertCandidates(5, on: c, prefix: "old")
            // The old rows were validated; a refresh enqueued their rescoring; then new rows arrive.
            try await c.execute("DELETE FROM tov.jobs")
            try await c.execute("""
                INSERT INTO tov.jobs (candidate_id, model_version, enqueued_at)
                SELECT id, 7, now() - interval '1 minute' FROM unnest($1::bigint[]) id
                """, [old])
            try await TovTestDatabase.insertCandidates(50, on: c, prefix: "new")
            let claimed = try await c.query(Queries.jobClaimMany, [5, 60.0, "probe", "{}", 1 << 20])
            #expect(try claimed.map { try $0.get(Int32.self, "model_version") } == [7, 7, 7, 7, 7])
        }
    }

    /// A process killed from outside right after it starts must not charge the same row on every
    /// restart: the retry with the fewest tries alone goes first, then the fewest claims, however old
    /// another one is.
    @Test func theRetryWithTheFewestTriesAloneIsTakenFirst() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let ids = try await TovTestDatabase.insertCandidates(3, on: c)
            // ids[0]: old, tried alone once; ids[1]: claimed 4 times, never alone; ids[2]: claimed twice.
            try await c.execute("""
                UPDATE tov.jobs SET attempts = CASE candidate_id WHEN $1 THEN 2 WHEN $2 THEN 4 ELSE 2 END,
                    tried_alone = CASE WHEN candidate_id = $1 THEN 1 ELSE 0 END,
                    enqueued_at = CASE WHEN candidate_id = $1 THEN now() - interval '1 minute' ELSE now() END,
                    lease_until = now() - interval '1 second'
                """, [ids[0], ids[1]])
            var order: [Int64] = []
            for _ in 0..<3 {
                let claimed = try await c.query(Queries.jobClaimMany, [0, 60.0, "probe", "{}", 1 << 20])
                order += try claimed.map { try $0.get(Int64.self, "candidate_id") }
            }
            #expect(order == [ids[2], ids[1], ids[0]])
        }
    }

    // MARK: - Defect 6: no rate where there is only a level

    @Test func aWaitForRowsShowsNoRateUntilRowsArrive() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute("UPDATE tov.leader SET instance = 'probe', holder = 'probe#1', epoch = 1, lease_until = now() + interval '1 hour'")
            let activity = { (done: Int) in
                TrainingStore.ActivitySetParams(activity: "waiting for rows", reason: nil, detail: nil, done: done, total: 4096,
                                                unit: "rows", epoch: 1)
            }
            try await TrainingStore.activitySet(activity(3000), on: c)
            // The wait has lasted a minute with 3,000 rows ready and none added.
            try await c.execute("UPDATE tov.leader_activity SET started_at = now() - interval '60 seconds'")
            let rate = { try await c.query("SELECT activity_rate, activity_eta_seconds FROM tov.status").first! }
            #expect(try await rate().getOptional(Double.self, "activity_rate") == nil)
            #expect(try await rate().getOptional(Double.self, "activity_eta_seconds") == nil)
            // 600 rows validated since: 10 rows/s over the minute.
            try await TrainingStore.activitySet(activity(3600), on: c)
            let measured = try await rate().getOptional(Double.self, "activity_rate") ?? 0
            #expect(abs(measured - 10) < 0.5)
        }
    }

    // MARK: - Defect 13: SIGTERM during base training

    @Test func sigtermWhileABaseModelTrainsStopsTheTrainerWithoutStartingAnother() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
            try await TovTestDatabase.insertCandidates(40, on: c)
            try await c.execute("INSERT INTO tov.training_requests (kind) VALUES ('rebase')")
            // Each training phase lasts at least 3 s, so the signal lands while θ0 trains.
            let daemon = try TovdProcess(Self.daemonArguments, conninfo: conninfo, environment: ["TOVD_FAULT_PHASE_DELAY_MS": "3000"])
            #expect(try await TovTestDatabase.eventually {
                try await TovTestDatabase.count("tov.base_models", on: c, where: "status = 'training'") == 1
            }, "\(daemon.log.suffix(2000))")
            daemon.terminate()
            #expect(await daemon.waitForExit() == 0)
            // One base model, interrupted; the request is still pending for the next leader.
            #expect(try await TovTestDatabase.count("tov.base_models", on: c) == 1, "\(daemon.log.suffix(3000))")
            #expect(try await TovTestDatabase.count("tov.training_requests", on: c, where: "served_at IS NULL") == 1)
        }
    }
}
